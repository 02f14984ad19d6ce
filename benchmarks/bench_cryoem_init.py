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

  python benchmarks/bench_cryoem_init.py [--labelled 1 2 5] [--epochs 3] [--scratch] [--work /tmp/initbench]
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


def score(picker, micrographs):
    counts = np.zeros(3, dtype=int)
    for path in micrographs:
        image, scale, _ = load_for_picking(path, DIAMETER, picker.working_diameter)
        result = match_picks(picker.pick(image, scale), read_coordinates(RIBOSOME / "particles" / f"{path.stem}.csv"),
                             DIAMETER / 2)
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
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    micrographs = sorted((RIBOSOME / "micrographs").glob("*.png"))
    test = micrographs[-args.test:]
    init = load_initial_picker(args.init)
    rows = [{"labelled": 0, "seconds": 0.0, **score(Picker.from_checkpoint(args.init), test)}]
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
            shutil.copy(RIBOSOME / "particles" / f"{path.stem}.csv", coords)
        start = time.perf_counter()
        train_picker(used, coords, DIAMETER, Path(args.work) / f"n{n}", config,
                     working_diameter=init.working_diameter, val_names=[used[-1].stem],
                     patches_per_epoch=args.patches, init=None if args.scratch else init, progress=False)
        seconds = time.perf_counter() - start
        rows.append({"labelled": n, "seconds": seconds,
                     **score(Picker.from_checkpoint(Path(args.work) / f"n{n}"), test)})
    frame = pd.DataFrame(rows)
    print(f"# ribosome: trained on the first N, validated on the next, scored on {', '.join(p.stem for p in test)}; "
          f"{'from random weights' if args.scratch else '--init ' + args.init}, {args.epochs} epochs of {args.patches} patches; load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    print(frame.to_string(index=False, float_format="{:.3f}".format))
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
