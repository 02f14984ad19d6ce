"""Zero-label adaptation (`cryoem selftrain`) against the picker it starts from, on the 80S ribosome set.

The ribosome micrographs (EMPIAR-10028, 56 px; the shipped picker never saw a
ribosome; the labels miss many particles, so recall is the figure to trust and
precision is pessimistic): selftrain runs on the first --train micrographs by
name, without their labels; every round's picker is then scored against the
labels on the last --test micrographs (never seen, not even unlabelled) and on
the --train ones it adapted to (fair for a method that uses no labels: a user
runs it on the micrographs they want picked). The labels choose nothing: the
rounds and the final picker are selftrain's own label-free decisions. One torch
thread. Prints a table and a JSON line. --micrographs, --truth and --diameter
run it on another data set instead (a simulated new shape: `cryoem simulate
ring ...`, truth in its coords/).

  python benchmarks/bench_cryoem_selftrain.py [--train 6] [--test 4] [--rounds 3] [--epochs 3] \\
      [--candidates 0.5] [--init NAME_OR_PATH] [--work /tmp/selftrainbench] \\
      [--micrographs DIR --truth DIR --diameter PX]
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.files import collect_inputs
from deepscope.cryoem.coordinates import coordinate_files_by_stem
from deepscope.cryoem.evaluate import match_picks, summarise_counts
from deepscope.cryoem.io import MICROGRAPH_SUFFIXES, read_coordinates
from deepscope.cryoem.picking import blob_picks
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.preprocess import load_for_picking, to_micrograph_frame
from deepscope.cryoem.selftrain import GENERAL_PICKER, SelftrainOptions, selftrain
from deepscope.cryoem.train import WORKING_DIAMETER

RIBOSOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem" / "ribosome80s_empiar10028"
DIAMETER = 56.0


class BlobPicker:
    """The blob detector of `--init blob`'s round 0, at the shipped default picker's working scale."""

    working_diameter = WORKING_DIAMETER

    def pick(self, image, scale):
        return to_micrograph_frame(blob_picks(image, self.working_diameter), scale)


def score(picker, micrographs, truth, diameter):
    counts = np.zeros(3, dtype=int)
    for path in micrographs:
        image, scale, _ = load_for_picking(path, diameter, picker.working_diameter)
        result = match_picks(picker.pick(image, scale), read_coordinates(truth[path.stem]), diameter / 2)
        counts += [result["tp"], result["fp"], result["fn"]]
    return summarise_counts(*counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", default=None, help=f"starting picker, or blob (default: selftrain's, {GENERAL_PICKER})")
    parser.add_argument("--train", type=int, default=6)
    parser.add_argument("--test", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--candidates", type=float, default=SelftrainOptions.candidates)
    parser.add_argument("--work", default="/tmp/selftrainbench")
    parser.add_argument("--micrographs", type=Path, default=RIBOSOME / "micrographs",
                        help="another data set's micrographs (default: the ribosome set's)")
    parser.add_argument("--truth", type=Path, default=RIBOSOME / "particles", help="and their coordinate files")
    parser.add_argument("--diameter", type=float, default=DIAMETER)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    micrographs = collect_inputs([args.micrographs], MICROGRAPH_SUFFIXES)
    truth = coordinate_files_by_stem(args.truth, "truth")
    adapt, test = micrographs[:args.train], micrographs[-args.test:]
    if set(adapt) & set(test):
        raise SystemExit(f"{args.train} selftrain micrographs overlap the {args.test} test ones")
    start = time.perf_counter()
    options = SelftrainOptions(rounds=args.rounds, epochs=args.epochs, candidates=args.candidates, threads=1)
    result = selftrain(adapt, args.diameter, Path(args.work) / "run", args.init, options, progress=False)
    seconds = time.perf_counter() - start
    rows = []
    for row in result.rounds.to_dict("records"):
        r = row["round"]
        model = (args.init or GENERAL_PICKER) if r == 0 else Path(args.work) / "run" / f"round_{r}" / "model"
        picker = BlobPicker() if model == "blob" else Picker.from_checkpoint(model)
        for split, mics in (("test", test), ("adapted", adapt)):
            rows.append({"round": r, "final": row["final"], "split": split, "picks_kept": row["kept"],
                         "kept_share": row["kept_share"], "round_seconds": row["seconds"],
                         **score(picker, mics, truth, args.diameter)})
    frame = pd.DataFrame(rows)
    print(f"# {args.micrographs}: selftrain on {', '.join(p.stem for p in adapt)} (no labels), "
          f"test {', '.join(p.stem for p in test)}; start {args.init or GENERAL_PICKER}, {args.epochs} epochs "
          f"per round, candidates at {args.candidates:g} x threshold; total {seconds:.0f} s; load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    print(frame.to_string(index=False, float_format="{:.3f}".format))
    print(json.dumps({"seconds": seconds, "rows": rows}, default=float))


if __name__ == "__main__":
    main()
