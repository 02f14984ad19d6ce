"""Galaxy bar model: end-to-end predict throughput, peak memory, training wall time.

Predict is timed exactly as users run it (file discovery, JPEG decoding
in reader processes, batching, the network, the CSV write) on real SDSS
cutouts from ../shared/data, repeated to reach --n files, once per engine
(``--engine torch``: the BatchNorm-folded channels-last torch path;
``onnx``: the shipped fp32 .onnx on ONNX Runtime, the default before int8;
``onnx-int8``: the int8 export, what the galaxy models run by default), interleaved
over --rounds. CPU seconds include the reader processes'.
Training is timed on the real training split for --train-epochs epochs.

--variants times the network alone on the decoded test split, for ways
of running the same shipped weights (eager, BatchNorm folded, channels-last,
TorchScript frozen, torch.compile, int8 static/dynamic quantisation, the
shipped ONNX exports, fp32 and int8, on ONNX Runtime), with
batch sizes and thread counts, interleaved so that a busy machine slows them
alike; each prints its ROC-AUC on the test split (the accuracy guard: within
0.005 of the shipped path) and how far its p_bar moves. It also times JPEG
decoding per read-thread count, and the load average beside each figure.

usage:
  python benchmarks/bench_galaxy.py --n 20000 --train-epochs 2
  python benchmarks/bench_galaxy.py --n 20000 --threads 1 --engines torch,onnx,onnx-int8 --rounds 3
  python benchmarks/bench_galaxy.py --n 0 --variants
  python benchmarks/bench_galaxy.py --n 20000 --engines onnx-int8 --rounds 3 --meta-off orientation,size_range
  python benchmarks/bench_galaxy.py --n 10000 --threads 1 --engines onnx-int8 --rounds 3 --meta-off bar_length

--meta-off KEYS also times each engine with those keys of the model's metadata ignored (as predict ran
before they were recorded: orientation, the canonical view; size_range, the scale_flag column; bar_length,
the bar length and position angle of the galaxies called barred),
interleaved with the model as shipped, so that both run in the same conditions.

Each predict line also gives the main process's wall time per cutout in three of its stages: the
classifier (``_probabilities``), the bar measures (``measure_bars``) and all of ``rows`` (both, the
canonical views, the size flag, the rows themselves). On a shared machine whose pace moves by 10-20%
from run to run, these say where a change went better than the end-to-end rate.
"""

import argparse
import contextlib
import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "galaxy" / "sdss_gz2_bars"


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds():
    """User + system CPU time so far of this process (all threads) and its finished children (the readers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_predict(n, threads, model, engine):
    from deepscope.core.batch.options import BatchOptions
    from deepscope.galaxy.predictor import PARTITION_SIZE, predict_galaxies

    sources = sorted((DATA / "images").glob("*.jpeg"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cutouts"
        folder.mkdir()
        # Symlinks reach n inputs without n copies; each is still opened and decoded.
        for i in range(n):
            os.symlink(sources[i % len(sources)], folder / f"g{i:07d}.jpeg")
        start, cpu = time.perf_counter(), cpu_seconds()
        options = BatchOptions(partition_size=PARTITION_SIZE, threads=threads, engine=engine, progress=False)
        with stage_timers() as stages:
            count = predict_galaxies([folder], Path(tmp) / "pred.csv", model=model, options=options)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return count, elapsed, cpu, stages


STAGES = ("_probabilities", "measure_bars", "rows")


@contextlib.contextmanager
def stage_timers():
    """Seconds spent in each of :data:`STAGES` (GalaxyPredictor methods) inside the block, in this process."""
    from deepscope.galaxy.predictor import GalaxyPredictor

    spent = dict.fromkeys(STAGES, 0.0)
    originals = {name: getattr(GalaxyPredictor, name) for name in STAGES}

    def timed(name, method):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return run

    for name, method in originals.items():
        setattr(GalaxyPredictor, name, timed(name, method))
    try:
        yield spent
    finally:
        for name, method in originals.items():
            setattr(GalaxyPredictor, name, method)


@contextlib.contextmanager
def meta_ignored(keys):
    """Predictors made inside the block ignore these keys of their checkpoint's metadata."""
    from deepscope.galaxy.predictor import GalaxyPredictor

    original = GalaxyPredictor.__init__

    def init(self, model, meta, *args, **kwargs):
        original(self, model, {k: v for k, v in meta.items() if k not in keys}, *args, **kwargs)

    GalaxyPredictor.__init__ = init
    try:
        yield
    finally:
        GalaxyPredictor.__init__ = original


def _load_average():
    return f"load {os.getloadavg()[0]:.1f}"


def _variants(predictor, calibration, compile_too=False):
    """name -> (callable on a float32 NCHW tensor returning logits), all from the same weights."""
    import copy

    import torch

    from deepscope.core.speed import fold_batchnorm, prepare_for_inference

    eager = copy.deepcopy(predictor.model).eval()
    folded = fold_batchnorm(copy.deepcopy(predictor.model).eval())
    channels_last = prepare_for_inference(copy.deepcopy(predictor.model))  # the torch engine's path
    example = torch.from_numpy(calibration[:64]).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        frozen = torch.jit.freeze(torch.jit.trace(copy.deepcopy(channels_last), example))
    variants = {
        "eager (as trained, NCHW)": (eager, False),
        "BN folded, NCHW": (folded, False),
        "BN folded + channels-last (shipped path)": (channels_last, True),
        "+ TorchScript trace + freeze": (frozen, True),
        "+ int8 dynamic (Linear only)": (torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(channels_last), {torch.nn.Linear}, dtype=torch.qint8), True),
    }
    try:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        # Calibrated on training cutouts only: the test split only measures.
        prepared = prepare_fx(copy.deepcopy(folded), get_default_qconfig_mapping("x86"), (example,))
        with torch.inference_mode():
            for start in range(0, len(calibration), 256):
                prepared(torch.from_numpy(calibration[start:start + 256]))
        variants["int8 static (FX, x86), NCHW"] = (convert_fx(prepared), False)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what failed and goes on
        print(f"int8 static: not measured ({type(exc).__name__}: {exc})")
    variants.update(_onnx_variants(predictor))
    if not compile_too:
        return variants
    try:
        compiled = torch.compile(copy.deepcopy(channels_last))
        with torch.inference_mode():
            compiled(example)
        variants["+ torch.compile (inductor)"] = (compiled, True)
    except Exception as exc:  # noqa: BLE001
        print(f"torch.compile: not measured ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    return variants


def _onnx_variants(predictor):
    """The shipped .onnx and .int8.onnx exports on ONNX Runtime."""
    import torch

    from deepscope.core.onnx_engine import onnx_network
    from deepscope.registry import shipped_entry

    entry = shipped_entry(predictor.source, "galaxy")
    return {"ONNX Runtime fp32 (.onnx, --engine onnx)": (onnx_network(entry, engine="onnx"), False),
            "ONNX Runtime int8 (.int8.onnx, the default)": (onnx_network(entry, engine="onnx-int8"), False)}


def bench_variants(threads, rounds=3, compile_too=False):
    """Network-only throughput and test-split ROC-AUC of each way of running the shipped weights."""
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.metrics import roc_auc_score

    from deepscope.galaxy.dataset import load_cutouts
    from deepscope.galaxy.predictor import GalaxyPredictor

    torch.set_num_threads(threads)
    labels = pd.read_csv(DATA / "labels.csv")
    test, train = labels[labels.split == "test"], labels[labels.split == "train"]
    predictor = GalaxyPredictor.from_checkpoint()
    size = predictor.input_size
    images, _, _ = load_cutouts([DATA / f for f in test.file], size, progress=False)
    calibration, _, _ = load_cutouts([DATA / f for f in train.file.sample(1024, random_state=0)], size,
                                     progress=False)
    y = test.barred.to_numpy()
    variants = _variants(predictor, calibration, compile_too)

    def run(model, last, batch_size):
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(images[start:start + batch_size])
                if last:
                    x = x.contiguous(memory_format=torch.channels_last)
                out.append(torch.softmax(model(x), dim=1)[:, 1].numpy())
        return np.concatenate(out)

    reference = run(variants["BN folded + channels-last (shipped path)"][0], True, 512)
    decisions = predictor.decide(np.column_stack([1 - reference, reference]))
    print(f"network only, {len(images)} test cutouts, {threads} torch threads; median of {rounds} interleaved rounds")
    for batch_size in (128, 512):
        times = {name: [] for name in variants}
        for _ in range(rounds):
            for name, (model, last) in variants.items():
                start = time.perf_counter()
                run(model, last, batch_size)
                times[name].append(time.perf_counter() - start)
        for name, (model, last) in variants.items():
            p = run(model, last, batch_size)
            rate = len(images) / np.median(times[name])
            print(f"  batch {batch_size:4d}  {name:42s} {rate:7.0f} galaxies/s  ROC-AUC {roc_auc_score(y, p):.4f}  "
                  f"max |dp_bar| {np.abs(p - reference).max():.1e}  "
                  f"decisions changed {int((predictor.decide(np.column_stack([1 - p, p])) != decisions).sum())}"
                  f"/{len(p)}  ({_load_average()})")


def bench_decode(read_threads_options=(1, 2, 4)):
    """Decoding throughput (JPEG read + resize + float conversion) per reading-thread count."""
    from deepscope.galaxy.dataset import load_cutouts

    files = sorted((DATA / "images").glob("*.jpeg"))[:2048]
    for workers in read_threads_options:
        start = time.perf_counter()
        load_cutouts(files, 64, workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        print(f"decode: {len(files)} cutouts with {workers} threads: {len(files) / elapsed:.0f} galaxies/s "
              f"({_load_average()})")


def bench_train(epochs, threads):
    from deepscope.galaxy.train import DEFAULT_CONFIG, train_galaxy

    config = dataclasses.replace(DEFAULT_CONFIG, epochs=epochs, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = train_galaxy(DATA / "labels.csv", Path(tmp) / "run", config=config, progress=False)
        return time.perf_counter() - start, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="cutouts to predict")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--model", help="model (default: shipped galaxy_bars)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved predict runs per engine (median)")
    parser.add_argument("--engines", default="torch,onnx,onnx-int8", help="--engine values to time predict with")
    parser.add_argument("--meta-off", default="", metavar="KEYS",
                        help="also time each engine with these metadata keys ignored (comma-separated)")
    parser.add_argument("--train-epochs", type=int, default=0, help="also time this many training epochs")
    parser.add_argument("--variants", action="store_true",
                        help="also time ways of running the network, and decoding, on the test split")
    parser.add_argument("--compile", action="store_true",
                        help="with --variants, also torch.compile (needs a C++ compiler; minutes to compile)")
    args = parser.parse_args()

    import numpy as np

    print(f"machine: {os.cpu_count()} cores; torch threads {args.threads}; {_load_average()}")
    if args.n:
        engines = args.engines.split(",")
        off = [key for key in args.meta_off.split(",") if key]
        settings = [(engine, ()) for engine in engines] + [(engine, tuple(off)) for engine in engines if off]
        runs = {setting: [] for setting in settings}
        for _ in range(args.rounds):
            for engine, ignored in settings:
                with meta_ignored(ignored):
                    runs[engine, ignored].append(bench_predict(args.n, args.threads, args.model, engine))
        for (engine, ignored), results in runs.items():
            if ignored:
                engine = f"{engine} (meta {', '.join(ignored)} ignored)"
            n, elapsed, cpu, _ = sorted(results, key=lambda r: r[1])[len(results) // 2]
            # On a shared machine the wall-clock rate measures the neighbours too; the CPU
            # seconds spent say what the two cores would give if they were ours alone.
            print(f"predict, engine {engine}: {n} cutouts in {elapsed:.2f} s = {n / elapsed:.0f} galaxies/s end to "
                  f"end (decode + network + CSV); {cpu:.1f} CPU s = {n / cpu:.0f} galaxies per CPU second; "
                  f"peak RSS {peak_rss_mb():.0f} MB ({_load_average()})")
            per_cutout = {name: [1e6 * r[3][name] / r[0] for r in results] for name in STAGES}
            print("  us per cutout (median of rounds): " + ", ".join(
                f"{name} {np.median(times):.0f} ({' '.join(f'{t:.0f}' for t in times)})"
                for name, times in per_cutout.items()))
    if args.variants:
        bench_decode()
        bench_variants(args.threads, compile_too=args.compile)
    if args.train_epochs:
        wall, summary = bench_train(args.train_epochs, args.threads)
        print(f"train: {args.train_epochs} epochs on {summary['n_train']} cutouts in {wall:.1f} s "
              f"({wall / args.train_epochs:.1f} s/epoch incl. validation; reading included)")


if __name__ == "__main__":
    main()
