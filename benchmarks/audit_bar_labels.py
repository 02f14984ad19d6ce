"""Blind visual audit of the GZ2 bar labels: can a bar be seen in the cutout at all?

The bar model's weak point is bar recall. This script asks whether the
labels allow more: it draws a seeded sample of barred and unbarred galaxies
from the *validation* split (the same split training uses; never the test
split), shuffles them, and writes numbered montages without their labels.
A person marks each galaxy as "bar visible" or not, and as edge-on or not,
in a CSV; ``--calls`` then un-blinds the sample and prints the cross-table.

usage:
  python benchmarks/audit_bar_labels.py --out audit            # montages + hidden key
  python benchmarks/audit_bar_labels.py --out audit --calls benchmarks/bar_label_audit_calls.csv [--model RUN]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "galaxy" / "sdss_gz2_bars" / "labels.csv"
PER_CLASS, PER_MONTAGE, COLUMNS, TILE = 48, 48, 8, 160
# The order in which benchmarks/bar_label_audit_calls.csv was judged.
SHUFFLE_SEED = 3


def blind_sample(labels_path, per_class, seed):
    """Shuffled validation galaxies, ``per_class`` of each label, numbered from 0."""
    from deepscope.config import TrainConfig
    from deepscope.core.manifest import manifest_from_labels, split_train_val

    defaults = TrainConfig()
    manifest = manifest_from_labels(labels_path, "file", required=["barred"])
    _, val = split_train_val(manifest, defaults.val_fraction, defaults.seed, stratify="barred")
    picked = [val[val["barred"] == label].sample(per_class, random_state=seed) for label in (1, 0)]
    return pd.concat(picked).sample(frac=1, random_state=SHUFFLE_SEED).reset_index(drop=True)


def write_montages(sample, out_dir):
    """Numbered montages of the sample, ``PER_MONTAGE`` galaxies each, labels not shown."""
    from PIL import Image, ImageDraw

    paths = []
    for start in range(0, len(sample), PER_MONTAGE):
        tiles = []
        for index in range(start, min(start + PER_MONTAGE, len(sample))):
            tile = Image.open(sample["path"][index]).convert("RGB").resize((TILE, TILE), Image.LANCZOS)
            ImageDraw.Draw(tile).text((3, 3), str(index), fill=(255, 255, 255))
            tiles.append(np.asarray(tile))
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % COLUMNS)
        rows = [np.concatenate(tiles[r:r + COLUMNS], axis=1) for r in range(0, len(tiles), COLUMNS)]
        path = Path(out_dir) / f"montage_{start:03d}.png"
        Image.fromarray(np.concatenate(rows, axis=0)).save(path)
        paths.append(path)
    return paths


def unblind(sample, calls):
    """Cross-tables of the catalogue label against the visual calls."""
    joined = sample.join(calls.set_index("index"), how="inner")
    by_bar = pd.crosstab(joined["barred"], joined["bar_visible"], margins=True)
    by_edge = pd.crosstab(joined["barred"], joined["edge_on"], margins=True)
    return joined, by_bar, by_edge


def model_recall(joined, model):
    """The model's bar recall on the barred-labelled galaxies, by what the audit saw."""
    from deepscope.galaxy.dataset import load_cutouts
    from deepscope.galaxy.predictor import GalaxyPredictor

    predictor = GalaxyPredictor.from_checkpoint(model)
    images, _, failures = load_cutouts(list(joined["path"]), predictor.input_size, progress=False)
    if failures:
        raise SystemExit(f"{failures[0][0]}: {failures[0][1]}")
    joined = joined.assign(found=predictor.decide(predictor.probabilities(images)) == 1)
    barred = joined[joined["barred"] == 1]
    return barred.groupby(["bar_visible", "edge_on"])["found"].agg(recall="mean", n="count")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the montages and the key")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calls", type=Path,
                        help="CSV with index, bar_visible (0/1), edge_on (0/1) for the numbered galaxies")
    parser.add_argument("--model", help="also score this model (default: the shipped galaxy_bars)")
    args = parser.parse_args()

    sample = blind_sample(args.labels, args.per_class, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    sample[["file", "barred", "gz2_bar_fraction"]].to_csv(args.out / "key.csv", index_label="index")
    if args.calls is None:
        for path in write_montages(sample, args.out):
            print(path)
        print(f"mark each numbered galaxy in a CSV (index, bar_visible, edge_on), then rerun with --calls; "
              f"the labels are in {args.out / 'key.csv'}")
        return
    joined, by_bar, by_edge = unblind(sample, pd.read_csv(args.calls))
    print(f"{len(joined)} validation galaxies judged blind\n")
    print("catalogue label (rows) vs bar visible in the cutout (columns)")
    print(by_bar.to_string(), "\n")
    print("catalogue label (rows) vs edge-on disk (columns)")
    print(by_edge.to_string(), "\n")
    barred = joined[joined["barred"] == 1]
    print(f"barred-labelled galaxies with a visible bar: {barred['bar_visible'].mean():.2f}; "
          f"edge-on (no bar can be seen): {barred['edge_on'].mean():.2f}\n")
    print(f"bar recall of {args.model or 'the shipped galaxy_bars'} at its threshold, by what the audit saw")
    print(model_recall(joined, args.model).round(3).to_string())


if __name__ == "__main__":
    from deepscope.errors import DeepscopeError

    try:
        main()
    except DeepscopeError as exc:  # missing data or labels: one line, no traceback
        raise SystemExit(f"audit_bar_labels: error: {exc}") from None
