"""Galaxy bar model: end-to-end predict throughput, peak memory, training wall time.

Predict is timed exactly as users run it (file discovery, JPEG decoding,
batching, the network, the CSV write) on real SDSS cutouts from
../shared/data, repeated to reach --n files. Training is timed on the real
training split for --train-epochs epochs.

usage:
  python benchmarks/bench_galaxy.py --n 20000 --train-epochs 2
"""

import argparse
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


def bench_predict(n, threads, model):
    from deepscope.core.options import BatchOptions
    from deepscope.galaxy.predictor import PARTITION_SIZE, predict_galaxies

    sources = sorted((DATA / "images").glob("*.jpeg"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cutouts"
        folder.mkdir()
        # Symlinks reach n inputs without n copies; each is still opened and decoded.
        for i in range(n):
            os.symlink(sources[i % len(sources)], folder / f"g{i:07d}.jpeg")
        start = time.perf_counter()
        options = BatchOptions(partition_size=PARTITION_SIZE, threads=threads, progress=False)
        count = predict_galaxies([folder], Path(tmp) / "pred.csv", model=model, options=options)
        elapsed = time.perf_counter() - start
    return count, elapsed


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
    parser.add_argument("--train-epochs", type=int, default=0, help="also time this many training epochs")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; torch threads {args.threads}")
    n, elapsed = bench_predict(args.n, args.threads, args.model)
    print(f"predict: {n} cutouts in {elapsed:.2f} s = {n / elapsed:.0f} galaxies/s end to end "
          f"(decode + network + CSV); peak RSS {peak_rss_mb():.0f} MB")
    if args.train_epochs:
        wall, summary = bench_train(args.train_epochs, args.threads)
        print(f"train: {args.train_epochs} epochs on {summary['n_train']} cutouts in {wall:.1f} s "
              f"({wall / args.train_epochs:.1f} s/epoch incl. validation; reading included)")


if __name__ == "__main__":
    main()
