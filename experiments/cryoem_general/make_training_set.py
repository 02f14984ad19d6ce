"""Build the general picker's training set: EMPIAR-10017 and simulated shapes, at one particle size.

``cryoem train`` takes one ``--diameter`` per run, so every micrograph is
written at the same particle diameter (27 px, twice the shipped pickers'
working diameter): the EMPIAR-10017 JPEGs binned 4x (108 -> 27 px), and
micrographs simulated with ``deepscope.cryoem.synthetic`` from the six
synthetic shapes, each particle's true size drawn within +-15% of 27 px (a
user's ``--diameter`` is a guess too), with varied SNR, defocus, ice,
carbon edges and aggregates (``Conditions``). The 80S ribosome set is never
read: it is the protein left out, on which the result is scored.

  python experiments/cryoem_general/make_training_set.py --out /tmp/general --per-shape 4

Writes OUT/micrographs/*.mrc, OUT/coords/*.star and OUT/recipe.yaml (every
simulated micrograph's settings).
"""

import argparse
from pathlib import Path

import numpy as np
import yaml

from deepscope.cryoem.io import read_coordinates, read_micrograph, write_coordinates, write_mrc
from deepscope.cryoem.synthetic import SHAPES, Conditions, simulate_micrograph, synthetic_structure

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "cryoem"
BETA_GAL = SHARED / "empiar10017"
# the shipped pickers' test micrographs (docs/cryoem.md): never trained on
HELD_OUT = ("Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_30_21_0", "Falcon_2012_06_12-16_44_07_0")
DIAMETER = 27.0
BIN = 4  # 10017's 108 px particles -> 27 px


def write_binned(micrograph, coordinates, factor, out):
    """Write ``micrograph`` binned ``factor`` x into OUT/micrographs and its ``coordinates`` table into OUT/coords."""
    pixels = read_micrograph(micrograph)
    rows, cols = (n - n % factor for n in pixels.shape)
    binned = pixels[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
    write_mrc(binned.astype(np.float32), out / "micrographs" / f"{micrograph.stem}.mrc")
    # a bin's centre: pixel i of the binned image covers i*factor .. i*factor+factor-1
    shift = (factor - 1) / 2
    centres = coordinates.assign(x=(coordinates["x"] - shift) / factor, y=(coordinates["y"] - shift) / factor)
    write_coordinates(centres[["x", "y"]], out / "coords" / f"{micrograph.stem}.star")


def write_beta_gal(out):
    """The 11 EMPIAR-10017 micrographs outside the test split, binned ``BIN`` x."""
    for jpeg in sorted((BETA_GAL / "micrographs").glob("*.jpg")):
        if jpeg.stem not in HELD_OUT:
            write_binned(jpeg, read_coordinates(BETA_GAL / "particles" / f"{jpeg.stem}.csv"), BIN, out)


def write_simulated(out, per_shape, size, seed):
    """``per_shape`` micrographs of each synthetic shape, conditions drawn at random; returns their settings."""
    rng = np.random.default_rng(seed)
    recipe = []
    for shape in SHAPES:
        for index in range(per_shape):
            diameter_A = float(rng.uniform(150, 400))
            true_px = DIAMETER * float(rng.uniform(0.85, 1.15))
            conditions = Conditions(ice=float(rng.uniform(0, 0.3)),
                                    carbon=0.0 if rng.random() < 0.5 else float(rng.uniform(0.1, 0.3)),
                                    aggregates=int(rng.integers(0, 5)))
            settings = {"shape": shape, "diameter_A": diameter_A, "pixel_size": diameter_A / true_px,
                        "snr": float(np.exp(rng.uniform(np.log(0.03), np.log(0.3)))),
                        "defocus": float(rng.uniform(8000, 30000)), "particles": int(rng.integers(40, 121)),
                        "seed": int(rng.integers(2**31)), **conditions.__dict__}
            image, particles, _ = simulate_micrograph(
                synthetic_structure(shape, diameter_A, seed=settings["seed"]), (size, size), settings["particles"],
                settings["pixel_size"], settings["defocus"], settings["snr"], seed=settings["seed"],
                conditions=conditions)
            stem = f"sim_{shape}_{index:02d}"
            write_mrc(image, out / "micrographs" / f"{stem}.mrc")
            write_coordinates(particles[["x", "y"]], out / "coords" / f"{stem}.star")
            recipe.append({"micrograph": stem, **settings})
    return recipe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-shape", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for folder in ("micrographs", "coords"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    write_beta_gal(args.out)
    recipe = write_simulated(args.out, args.per_shape, args.size, args.seed)
    (args.out / "recipe.yaml").write_text(yaml.safe_dump({"diameter_px": DIAMETER, "simulated": recipe},
                                                         sort_keys=False))
    print(f"{args.out}: 11 EMPIAR-10017 + {len(recipe)} simulated micrographs at {DIAMETER:g} px")


if __name__ == "__main__":
    main()
