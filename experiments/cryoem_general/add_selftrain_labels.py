"""Add a protein without labels to the general picker's training set: selftrain's kept picks, binned.

The issue behind ``cryoem_general`` asks for every real micrograph we hold in
its training, the ribosome set's included with its labels left out. This
takes a ``cryoem selftrain`` run on some of those micrographs (no labels
read: its kept picks are its own label-free decisions), bins the
micrographs by ``--bin`` so that their particles are near the training
set's 27 px, and writes them and the kept picks of the run's final round
beside ``make_training_set.py``'s output. The labelled particle files of
the protein are never opened.

  deepscope cryoem selftrain ribosome/micrographs/{061,062,063,064,065,311}_10028.png --diameter 56 \\
      --out /tmp/ribosome_self --threads 1
  python experiments/cryoem_general/add_selftrain_labels.py --run /tmp/ribosome_self \\
      --micrographs ../shared/data/cryoem/ribosome80s_empiar10028/micrographs --bin 2 --out /tmp/general
"""

import argparse
from pathlib import Path

import pandas as pd
from make_training_set import write_binned

from deepscope.cryoem.io import read_coordinates


def final_round(run: Path) -> Path:
    """The folder of the round a selftrain run chose as its final picker."""
    rounds = pd.read_csv(run / "rounds.csv")
    return run / f"round_{int(rounds.loc[rounds['final'] == 1, 'round'].iloc[0])}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished cryoem selftrain run directory")
    parser.add_argument("--micrographs", type=Path, required=True, help="folder holding the run's micrographs")
    parser.add_argument("--bin", type=int, required=True, help="binning factor (56 px ribosomes: 2 -> 28 px)")
    parser.add_argument("--out", type=Path, required=True, help="make_training_set.py's output folder")
    args = parser.parse_args()
    chosen = final_round(args.run)
    labels = sorted((chosen / "labels").glob("*.star"))
    n = 0
    for star in labels:
        picks = read_coordinates(star)
        write_binned(next(args.micrographs.glob(f"{star.stem}.*")), picks, args.bin, args.out)
        n += len(picks)
    print(f"{args.out}: {len(labels)} micrographs of {args.micrographs} binned {args.bin}x, {n} kept picks "
          f"of {chosen.name} of {args.run}")


if __name__ == "__main__":
    main()
