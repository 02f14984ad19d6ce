"""Train the bar network on cutouts in a canonical scale: every galaxy rescaled to one apparent size.

``benchmarks/galaxy_invariance.py --canonical-scale`` rescales each cutout so that its bright fraction
(its isophotal area, which a zoom scales by the zoom squared) is the train split's median, at inference
only. This trains on cutouts rescaled the same way (training and validation rows; the usual turns, mirror
images and +-10% zooms on top), so the network never learns the size it is asked to ignore; the
checkpoint then runs with the same flag. The shipped model's settings otherwise (70 epochs, barnet,
seed 0, size-balanced loss).

  python experiments/galaxy_scale/train_canonical_scale.py --out runs/bars_canonical_scale [--threads 2]
  python benchmarks/galaxy_invariance.py --model runs/bars_canonical_scale --canonical-scale 0.6 1.6
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from galaxy_invariance import LABELS, canonical_scale  # noqa: E402

from deepscope.galaxy.apparent_size import bright_fraction, size_balancing_weights  # noqa: E402
from deepscope.galaxy.dataset import CutoutDataset  # noqa: E402
from deepscope.galaxy.train import DEFAULT_CONFIG, fit_galaxy, read_training_data  # noqa: E402

SCALE_RANGE = (0.6, 1.6)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=70)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    config = dataclasses.replace(DEFAULT_CONFIG, epochs=args.epochs, patience=args.epochs, threads=args.threads)
    data = read_training_data(LABELS, args.out, config=config)
    target = float(np.median(bright_fraction(data.train_images)))
    images = canonical_scale(data.train_images, target, SCALE_RANGE)
    val_images = canonical_scale(data.val_set.images.numpy(), target, SCALE_RANGE)
    data = dataclasses.replace(data, train_images=images,
                               val_set=CutoutDataset(val_images, data.val_set.labels.numpy()))
    # the loss balances the classes in each bin of the galaxies' size as cut, as galaxy train does
    weights = size_balancing_weights(data.train_sizes, data.train_labels)
    train_set = CutoutDataset(images, data.train_labels, weights, augment=True)
    summary = fit_galaxy(data, train_set, args.out, config,
                         extra={"canonical_scale": {"bright_fraction": target, "zoom_range": list(SCALE_RANGE)}})
    print({k: summary[k] for k in ("best_val_score", "best_epoch", "threshold")})


if __name__ == "__main__":
    main()
