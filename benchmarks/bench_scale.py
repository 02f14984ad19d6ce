"""Galaxy predict at survey scale: in process vs a local Dask cluster, and 10k/100k/1M inputs.

Inputs are real SDSS cutouts from ../shared/data, replicated through a
Parquet catalogue (one row per galaxy, paths cycling over the real files):
every row is still opened, decoded and classified. Each run is the real
command in a fresh process (`deepscope galaxy predict --catalog ... --out
DIR/` writing Parquet parts), timed by wall clock; its peak memory is the
process's maximum resident set size from os.wait4. With --workers the Dask
workers are the command's grandchildren, so only the driver's memory is
reported for those rows.

usage:
  python benchmarks/bench_scale.py --compare 20000 --sizes 10000 100000 1000000
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "galaxy" / "sdss_gz2_bars" / "images"


def write_catalog(path, n):
    """A Parquet catalogue of ``n`` rows cycling over the real cutouts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources = [str(p) for p in sorted(DATA.glob("*.jpeg"))]
    with pq.ParquetWriter(path, pa.schema([("cutout", pa.string())])) as writer:
        for start in range(0, n, 100_000):
            rows = [sources[i % len(sources)] for i in range(start, min(n, start + 100_000))]
            writer.write_table(pa.table({"cutout": rows}))


def run_predict(catalog, out, extra=()):
    """Run the command; return (seconds, peak RSS in MB of the command's process)."""
    argv = [sys.executable, "-m", "deepscope", "-q", "galaxy", "predict", "--catalog", str(catalog),
            "--path-column", "cutout", "--out", str(out), *extra]
    start = time.perf_counter()
    process = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}")
    return seconds, usage.ru_maxrss / 1024


def count_rows(out):
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in Path(out).glob("part-*.parquet"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=int, default=20000, help="galaxies for in-process vs --workers 2 (0: skip)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                        help="input counts for the scaling table")
    parser.add_argument("--device", default="cpu", help="the command's --device (cpu, cuda or cuda:N)")
    args = parser.parse_args()
    device = ("--device", args.device)

    print(f"machine: {os.cpu_count()} cores, --device {args.device}; real cutouts from {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.compare:
            catalog = tmp / "compare.parquet"
            write_catalog(catalog, args.compare)
            print(f"\n{args.compare} galaxies   | seconds | galaxies/s | driver peak RSS MB")
            for label, extra in (("in process ", ()), ("--workers 2", ("--workers", "2"))):
                out = tmp / f"compare-{label.strip('- ')}"
                seconds, rss = run_predict(catalog, out, (*extra, *device))
                assert count_rows(out) == args.compare
                print(f"{label}       | {seconds:7.1f} | {args.compare / seconds:10.0f} | {rss:6.0f}")
        if args.sizes:
            print("\ninputs    | seconds | galaxies/s | peak RSS MB")
            for n in args.sizes:
                catalog = tmp / f"cat{n}.parquet"
                write_catalog(catalog, n)
                out = tmp / f"out{n}"
                seconds, rss = run_predict(catalog, out, device)
                assert count_rows(out) == n
                print(f"{n:>9} | {seconds:7.1f} | {n / seconds:10.0f} | {rss:6.0f}", flush=True)


if __name__ == "__main__":
    main()
