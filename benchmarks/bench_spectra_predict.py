"""Spectra predict throughput: network only, preprocessing, and files end to end.

Prints spectra per second for (1) the shipped network (or --model) on
already prepared spectra, on each engine (torch: the BatchNorm-folded
network; onnx: the shipped .onnx on ONNX Runtime, see
deepscope.core.onnx_engine), interleaved over --rounds, with the largest
difference between their outputs, (2) reading and preparing files, (3) the
whole `deepscope spectra predict` path on real files (the default engine).
Measured figures, not asserts.

usage:
  python benchmarks/bench_spectra_predict.py [--model RUN_DIR] [--files DIR] [--threads 2]
"""

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra" / "miles"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint or run directory (default: shipped)")
    parser.add_argument("--files", default=str(DEFAULT_FILES), help="directory of spectra for the file benchmarks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=20000, help="spectra for the network-only benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved network-only timings per engine (median)")
    args = parser.parse_args()

    import os
    import tempfile

    import torch

    from deepscope.core.files import collect_inputs
    from deepscope.core.onnx_engine import ENGINE_VARIABLE
    from deepscope.errors import ModelError
    from deepscope.core.options import BatchOptions
    from deepscope.spectra.predictor import PARTITION_SIZE, SpectraPredictor, predict_spectra
    from deepscope.spectra.prepare import DIRECTORY_SUFFIXES, load_prepared

    torch.set_num_threads(args.threads)
    engines = {}
    for engine in ("torch", "onnx"):
        os.environ[ENGINE_VARIABLE] = engine
        try:
            engines[engine] = SpectraPredictor.from_checkpoint(args.model)
        except ModelError as exc:  # a user-trained --model has no export
            print(f"network only, {engine}: not measured ({exc})")
    os.environ.pop(ENGINE_VARIABLE)
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
