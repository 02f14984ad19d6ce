"""Spectra predict throughput: network only, preprocessing, and files end to end.

Prints spectra per second for (1) the shipped network (or --model) on
already prepared spectra, (2) reading and preparing files, (3) the whole
`deepscope spectra predict` path on real files. Measured figures, not asserts.

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
    args = parser.parse_args()

    import tempfile

    import torch

    from deepscope.core.files import collect_inputs
    from deepscope.core.options import BatchOptions
    from deepscope.spectra.predictor import PARTITION_SIZE, SpectraPredictor, predict_spectra
    from deepscope.spectra.prepare import DIRECTORY_SUFFIXES, load_prepared

    torch.set_num_threads(args.threads)
    predictor = SpectraPredictor.from_checkpoint(args.model)
    grid = predictor.grid
    x = np.random.default_rng(0).normal(0, 0.1, (args.n, 2, grid.n)).astype(np.float32)
    x[:, 1] = 1.0
    predictor.outputs(x[:1024])  # warm-up
    start = time.perf_counter()
    predictor.outputs(x, batch_size=1024)
    seconds = time.perf_counter() - start
    print(f"network only ({type(predictor.model).__name__}, {grid.n} points, {args.threads} threads): "
          f"{args.n / seconds:,.0f} spectra/s")

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
