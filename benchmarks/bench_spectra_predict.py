"""Spectra predict throughput: network only, preprocessing, and files end to end.

Prints spectra per second for (1) the shipped network (or --model) on
already prepared spectra, on each engine (torch: the BatchNorm-folded
network; onnx: the shipped .onnx on ONNX Runtime, see
deepscope.core.onnx_engine), interleaved over --rounds, with the largest
difference between their outputs, (2) reading and preparing files, (3) the
whole `deepscope spectra predict` path on real files (the default engine).
With --int8, also quantises the shipped fp32 export to int8 in a temporary
folder, as scripts/export_onnx.py does for the galaxy models (ONNX Runtime
static QDQ, per-channel int8 weights, uint8 activations, calibrated on 512
spectra of the five labelled libraries the shipped model was trained on),
and prints its pace against fp32's (CPU ms per spectrum, one thread) and
how many of the shared-library spectra change type, main class and
luminosity class. Measured figures, not asserts.

usage:
  python benchmarks/bench_spectra_predict.py [--model RUN_DIR] [--files DIR] [--threads 2] [--int8]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # onnx_tools: the int8 recipe

DEFAULT_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra" / "miles"
SHARED_SPECTRA = DEFAULT_FILES.parent
LABELLED = ("miles", "mkclass", "pickles", "kesseli2017", "sdss")  # the shipped model's training libraries
CALIBRATION_SPECTRA = 512


def network_inputs(predictor, folder):
    """Every readable spectrum of a library folder as the network input."""
    from deepscope.core.files import collect_inputs
    from deepscope.spectra.io.files import DIRECTORY_SUFFIXES
    from deepscope.spectra.preparation.continuum import normalise

    items = [item for item in predictor.load_many(collect_inputs([folder], DIRECTORY_SUFFIXES))
             if not isinstance(item, Exception)]
    return normalise(np.stack([item.flux for item in items]), np.stack([item.mask for item in items]), predictor.grid)


def int8_comparison(predictor):
    """Quantise the shipped export to int8 in a temporary folder; print its pace and changed answers against fp32."""
    import tempfile

    from onnx_tools import quantise_int8

    from deepscope.core.onnx_engine import OnnxNetwork
    from deepscope.registry import shipped_entry
    from deepscope.spectra.decoding import outputs_to_rows

    inputs = {folder.name: network_inputs(predictor, folder) for folder in sorted(SHARED_SPECTRA.iterdir())
              if folder.is_dir()}
    labelled = np.concatenate([inputs[name] for name in LABELLED if name in inputs])
    chosen = np.random.default_rng(0).choice(len(labelled), min(CALIBRATION_SPECTRA, len(labelled)), replace=False)
    calibration = labelled[np.sort(chosen)]
    fp32_path = shipped_entry("spectra_mk", "spectra").export_path("onnx")
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = Path(tmp) / "spectra_mk.int8.onnx"
        quantise_int8(fp32_path, int8_path, calibration)
        networks = {"fp32": OnnxNetwork(fp32_path, threads=1), "int8": OnnxNetwork(int8_path, threads=1)}
        x = np.concatenate(list(inputs.values()))
        outputs = {name: np.concatenate([net.run(x[k:k + 512]) for k in range(0, len(x), 512)])
                   for name, net in networks.items()}
        timed = np.tile(x, (max(1, -(-4096 // len(x))), 1, 1))[:4096]
        for name, net in networks.items():
            best = min(_cpu_seconds(lambda: [net.run(timed[k:k + 512]) for k in range(0, len(timed), 512)])
                       for _ in range(3))
            print(f"network only, {name} on ONNX Runtime, one thread: {best / len(timed) * 1e3:.3f} CPU ms per spectrum")
    rows = {name: outputs_to_rows(out) for name, out in outputs.items()}
    changed = {column: sum(a[column] != b[column] for a, b in zip(rows["fp32"], rows["int8"]))
               for column in ("sptype", "main_class", "lum_class")}
    print(f"int8 against fp32 on the {len(x)} shared-library spectra: " +
          ", ".join(f"{column} changes on {count}" for column, count in changed.items()))


def _cpu_seconds(step):
    start = time.process_time()
    step()
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint or run directory (default: shipped)")
    parser.add_argument("--files", default=str(DEFAULT_FILES), help="directory of spectra for the file benchmarks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=20000, help="spectra for the network-only benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved network-only timings per engine (median)")
    parser.add_argument("--int8", action="store_true", help="also measure an int8 quantisation of the shipped export")
    args = parser.parse_args()

    import os
    import tempfile

    import torch

    from deepscope.core.files import collect_inputs
    from deepscope.errors import ModelError
    from deepscope.core.batch.options import BatchOptions
    from deepscope.spectra.predictor import PARTITION_SIZE, SpectraPredictor, predict_spectra
    from deepscope.spectra.io.files import DIRECTORY_SUFFIXES
    from deepscope.spectra.preparation.labelled import load_prepared

    torch.set_num_threads(args.threads)
    engines = {}
    for engine in ("torch", "onnx"):
        try:
            engines[engine] = SpectraPredictor.from_checkpoint(args.model, engine=engine)
        except ModelError as exc:  # a user-trained --model has no export
            print(f"network only, {engine}: not measured ({exc})")
    predictor = engines["torch"]
    grid = predictor.grid
    x = np.random.default_rng(0).normal(0, 0.1, (args.n, 2, grid.n)).astype(np.float32)
    x[:, 1] = 1.0
    seconds = {engine: [] for engine in engines}
    outputs = {engine: each.outputs(x[:1024]) for engine, each in engines.items()}  # also a warm-up
    for _ in range(args.rounds):
        for engine, each in engines.items():
            start = time.perf_counter()
            each.outputs(x, batch_size=1024)
            seconds[engine].append(time.perf_counter() - start)
    for engine in engines:
        print(f"network only, {engine} ({type(predictor.model).__name__}, {grid.n} points, {args.threads} threads): "
              f"{args.n / np.median(seconds[engine]):,.0f} spectra/s (load {os.getloadavg()[0]:.1f})")
    if len(outputs) == 2:
        print(f"max |onnx - torch| output: {np.abs(outputs['onnx'] - outputs['torch']).max():.1e}")

    if args.int8 and args.model is None:
        int8_comparison(engines["torch"])
    elif args.int8:
        print("int8: not measured (it quantises the shipped export; drop --model)")

    paths = collect_inputs([args.files], DIRECTORY_SUFFIXES)
    start = time.perf_counter()
    prepared, _, _ = load_prepared(paths, grid, predictor.min_coverage, workers=args.threads)
    seconds = time.perf_counter() - start
    print(f"read + prepare {len(paths)} files from {args.files}: {len(paths) / seconds:,.0f} spectra/s")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        options = BatchOptions(partition_size=PARTITION_SIZE, read_threads=args.threads, threads=args.threads,
                               progress=False)
        predict_spectra([args.files], Path(tmp) / "pred.csv", model=args.model, options=options)
        seconds = time.perf_counter() - start
    print(f"deepscope spectra predict end to end: {len(paths) / seconds:,.0f} spectra/s")


if __name__ == "__main__":
    main()
