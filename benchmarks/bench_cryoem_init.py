"""Fine-tuning from a few labelled micrographs (`cryoem train --init`) against the picker it starts from.

The 80S ribosome set (EMPIAR-10028, 56 px; its labels miss many particles, so
recall is the figure to trust): the first N micrographs (sorted by name) train,
the next one validates (early stopping, threshold), the last --test ones
score, the same for every N. Each run starts from --init (default the shipped
`cryoem_empiar10017`, which never saw a ribosome) and trains --epochs epochs
of --patches patches; the row "0" is the starting picker itself. With
--scratch the same runs start from random weights instead (the particle
network alone, `cryoem_unet`, of the same width, depth and working scale:
what `cryoem train` trains without region labels). One torch thread. Prints a table and a JSON line.
--micrographs, --truth and --diameter run it on another data set instead (a
simulated new shape: `cryoem simulate ring ...`, truth in its coords/).

  python benchmarks/bench_cryoem_init.py [--labelled 1 2 5] [--epochs 3] [--scratch] [--work /tmp/initbench] \\
      [--micrographs DIR --truth DIR --diameter PX]
"""

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.config import TrainConfig
from deepscope.cryoem.evaluate import match_picks, summarise_counts
from deepscope.cryoem.io import read_coordinates
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.preprocess import load_for_picking
from deepscope.cryoem.train import load_initial_picker, train_picker

RIBOSOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem" / "ribosome80s_empiar10028"
DIAMETER = 56.0


def truth_file(truth_dir, stem):
    """The coordinate file of micrograph ``stem`` in ``truth_dir`` (any format)."""
    return next(p for p in sorted(Path(truth_dir).glob(f"{stem}.*")) if p.suffix in (".csv", ".star", ".box", ".cs"))


def score(picker, micrographs, truth_dir, diameter):
    counts = np.zeros(3, dtype=int)
    for path in micrographs:
        image, scale, _ = load_for_picking(path, diameter, picker.working_diameter)
        result = match_picks(picker.pick(image, scale), read_coordinates(truth_file(truth_dir, path.stem)),
                             diameter / 2)
        counts += [result["tp"], result["fp"], result["fn"]]
    return summarise_counts(*counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", default="cryoem_empiar10017")
    parser.add_argument("--labelled", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--patches", type=int, default=256)
    parser.add_argument("--test", type=int, default=4)
    parser.add_argument("--work", default="/tmp/initbench")
    parser.add_argument("--scratch", action="store_true", help="start from random weights, not --init's")
    parser.add_argument("--micrographs", type=Path, default=RIBOSOME / "micrographs", help="micrograph directory")
    parser.add_argument("--truth", type=Path, default=RIBOSOME / "particles", help="and their coordinate files")
    parser.add_argument("--diameter", type=float, default=DIAMETER)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    micrographs = sorted(p for p in args.micrographs.iterdir() if p.suffix in (".png", ".mrc", ".jpg", ".tif"))
    test = micrographs[-args.test:]
    init = load_initial_picker(args.init)
    rows = [{"labelled": 0, "seconds": 0.0,
             **score(Picker.from_checkpoint(args.init), test, args.truth, args.diameter)}]
    for n in args.labelled:
        used = micrographs[:n + 1]
        if set(used) & set(test):
            raise SystemExit(f"{n} + 1 micrographs overlap the {args.test} test ones")
        # from scratch without region labels: the particle network alone (cryoem train's default then)
        config = TrainConfig(model="cryoem_unet" if args.scratch else init.model, model_kwargs=dict(init.shape), epochs=args.epochs, batch_size=16,
                             lr=2e-3, patience=args.epochs, threads=1, seed=0)
        # train_picker pairs every coordinate file with a micrograph: only the used ones
        coords = Path(args.work) / f"coords{n}"
        coords.mkdir(parents=True, exist_ok=True)
        for path in used:
            shutil.copy(truth_file(args.truth, path.stem), coords)
        start = time.perf_counter()
        train_picker(used, coords, args.diameter, Path(args.work) / f"n{n}", config,
                     working_diameter=init.working_diameter, val_names=[used[-1].stem],
                     patches_per_epoch=args.patches, init=None if args.scratch else init, progress=False)
        seconds = time.perf_counter() - start
        rows.append({"labelled": n, "seconds": seconds,
                     **score(Picker.from_checkpoint(Path(args.work) / f"n{n}"), test, args.truth, args.diameter)})
    frame = pd.DataFrame(rows)
    print(f"# {args.micrographs}: trained on the first N, validated on the next, scored on {', '.join(p.stem for p in test)}; "
          f"{'from random weights' if args.scratch else '--init ' + args.init}, {args.epochs} epochs of {args.patches} patches; load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    print(frame.to_string(index=False, float_format="{:.3f}".format))
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
