"""Peak memory of ``cryoem extract`` writing a particle stack of about 1 GiB.

Writes ``--micrographs`` float32 MRC micrographs of noise (2048 x 2048 px) with
random particle centres, as many as make a stack of ``--gib`` GiB at
``--size`` px, then runs ``deepscope cryoem extract`` on them in a child
process and prints the stack's size, the particle count, the child's peak
resident memory (``ru_maxrss``) and its wall time.

    python benchmarks/bench_cryoem_extract.py --work /tmp/extractbench
"""

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_inputs(work: Path, micrographs: int, particles: int, shape: int, box: int, seed: int) -> None:
    """``work/mics/m<i>.mrc`` (noise) and ``work/coords/m<i>.star`` (random centres a half box from the edges)."""
    from deepscope.cryoem.io import write_coordinates, write_mrc

    rng = np.random.default_rng(seed)
    (work / "mics").mkdir(parents=True, exist_ok=True)
    (work / "coords").mkdir(exist_ok=True)
    per = -(-particles // micrographs)
    for index in range(micrographs):
        image = rng.normal(size=(shape, shape)).astype(np.float32)
        write_mrc(image, work / "mics" / f"m{index}.mrc", pixel_size=1.5)
        centres = rng.uniform(box, shape - box, size=(per, 2))
        write_coordinates(pd.DataFrame({"x": centres[:, 0], "y": centres[:, 1]}), work / "coords" / f"m{index}.star")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/extractbench"), help="scratch directory")
    parser.add_argument("--gib", type=float, default=1.0, help="stack size in GiB (default 1)")
    parser.add_argument("--micrographs", type=int, default=8, help="micrographs (default 8)")
    parser.add_argument("--box", type=int, default=160, help="box in micrograph px (default 160)")
    parser.add_argument("--size", type=int, default=128, help="particle image side after cropping (default 128)")
    args = parser.parse_args()

    particles = int(args.gib * 2**30 // (args.size * args.size * 4))
    write_inputs(args.work, args.micrographs, particles, 2048, args.box, seed=0)
    out = args.work / "out" / "particles.mrcs"
    command = [sys.executable, "-m", "deepscope", "-q", "cryoem", "extract", str(args.work / "coords"),
               "--micrographs", str(args.work / "mics"), "--diameter", str(args.box * 2 // 3), "--box", str(args.box),
               "--size", str(args.size), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    print(f"stack {out.stat().st_size / 2**30:.3f} GiB, {particles} particles of {args.size} px "
          f"from {args.micrographs} micrographs of 2048 x 2048 px (box {args.box})")
    print(f"peak resident memory {peak:.3f} GiB ({peak * 1024:.0f} MiB), wall {wall:.1f} s")


if __name__ == "__main__":
    main()
