"""Does 2D classification put planted false picks in junk classes? EMPIAR-10017, truth plus planted picks.

Each micrograph's pick set is its CryoPPP truth with 20% of the centres
(chosen at random) replaced by planted false picks: the centre moved one
particle diameter, in a random direction, to a spot at least one diameter
from every true centre and one diameter inside the micrograph (background;
a centre without such a spot within 50 tries stays true). The set is
classified as `deepscope cryoem classify` does (extraction, alignment,
clustering, the class rule and the background test), one run over the
split's micrographs, and the table gives, per setting, the share of planted
picks called junk beside the share of true picks called junk. --plant carbon
replaces up to 20% of each micrograph's true centres by spots on carbon film
instead (CASSPER's carbon labels; micrographs without carbon get none).
--split calibration (14_57_34, 15_07_41, 15_14_01, 15_27_22) is where
settings are compared; --split test (the six micrographs with every peer's
picks) reports; --split ribosome plants into the 80S ribosome set (56 px;
its labels miss particles, so a planted pick can land on an unlabelled one).

  python benchmarks/bench_cryoem_planted.py [--split calibration|test|ribosome] [--size 48 64] [--classes 0 24]
      [--background-quantile 0 0.85] [--plant background|carbon] [--rounds 2] [--seed 0]
"""

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree

from deepscope.cryoem.classify2d.background import BACKGROUND_QUANTILE
from deepscope.cryoem.classify2d.run import IMAGE_SIZE, classify_pick_sets
from deepscope.cryoem.io import REGION_CLASSES, read_coordinates, read_region_labels, write_coordinates
from deepscope.cryoem.pick_sets import gather_pick_sets

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem"
DATA = SHARED / "empiar10017"
PREFIX = "Falcon_2012_06_12-"
SPLITS = {
    "test": ["14_33_35", "15_17_31", "15_30_21", "16_26_22", "16_44_07", "16_51_03"],
    "calibration": ["14_57_34", "15_07_41", "15_14_01", "15_27_22"],
}
DIAMETER = 108.0
SIDE = 4096
# --split ribosome: the second protein, every micrograph (labels incomplete: unlabelled particles can be planted on)
RIBOSOME = SHARED / "ribosome80s_empiar10028"
RIBOSOME_DIAMETER = 56.0
RIBOSOME_SIDE = 1024
PLANTED_SHARE = 0.2


def plant(truth, rng, diameter=DIAMETER, side=SIDE):
    """``truth`` with :data:`PLANTED_SHARE` of its centres moved one diameter into the background; the moved rows."""
    xy = truth[["x", "y"]].to_numpy(dtype=float).copy()
    moved = np.zeros(len(xy), dtype=bool)
    for index in rng.choice(len(xy), int(round(PLANTED_SHARE * len(xy))), replace=False):
        for angle in rng.uniform(0, 2 * np.pi, 50):
            spot = xy[index] + diameter * np.array([np.cos(angle), np.sin(angle)])
            inside = np.all((spot >= diameter) & (spot <= side - 1 - diameter))
            if inside and np.hypot(*(xy[~moved] - spot).T).min() >= diameter - 1e-6:
                xy[index], moved[index] = spot, True
                break
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}), moved


def plant_on_carbon(truth, labels_png, rng):
    """``truth`` with up to :data:`PLANTED_SHARE` of its rows replaced by spots on carbon film; the mask of those rows.

    Carbon is CASSPER's green class (``labels_png``, y-flipped relative to the
    JPEG: row ``4095 - y``); a spot keeps its whole box on the micrograph and
    lies at least one diameter from every true centre and every other spot.
    A micrograph with little carbon gets fewer spots (none without a label file).
    """
    xy = truth[["x", "y"]].to_numpy(dtype=float).copy()
    replaced = np.zeros(len(xy), dtype=bool)
    if not labels_png.exists():
        return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}), replaced
    rows, cols = np.nonzero(read_region_labels(labels_png) == REGION_CLASSES.index("carbon"))
    spots = np.column_stack([cols, SIDE - 1 - rows]).astype(float)
    spots = spots[np.all((spots >= DIAMETER) & (spots <= SIDE - 1 - DIAMETER), axis=1)]
    if len(spots):
        spots = spots[cKDTree(xy).query(spots)[0] >= DIAMETER]
    chosen = []
    for spot in spots[rng.permutation(len(spots))]:
        if len(chosen) == int(round(PLANTED_SHARE * len(xy))):
            break
        if not chosen or np.hypot(*(np.array(chosen) - spot).T).min() >= DIAMETER:
            chosen.append(spot)
    for index, spot in zip(rng.choice(len(xy), len(chosen), replace=False), chosen):
        xy[index], replaced[index] = spot, True
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}), replaced


def score_round(junk_rounds, planted, size, quantile, classes, junk_classes, rounds, seconds):
    """Shares of planted and of true picks that some round so far put in a junk class."""
    first = junk_rounds[0]
    junk = np.zeros(len(first), dtype=bool)
    for later in junk_rounds:
        thrown = later[later["junk"] == 1]
        key = set(zip(thrown["micrograph"], thrown["x"].round(2), thrown["y"].round(2)))
        junk |= np.array([k in key for k in zip(first["micrograph"], first["x"].round(2), first["y"].round(2))])
    is_planted = np.zeros(len(first), dtype=bool)
    for stem, group in planted.groupby("stem"):
        here = (first["micrograph"] == stem).to_numpy()
        xy = first.loc[here, ["x", "y"]].to_numpy()
        distance = np.hypot(xy[:, None, 0] - group["x"].to_numpy()[None],
                            xy[:, None, 1] - group["y"].to_numpy()[None]).min(axis=1)
        is_planted[np.flatnonzero(here)[distance < 1.0]] = True
    return {"size": size, "background_quantile": quantile, "rounds": rounds, "classes": classes,
            "junk_classes": junk_classes,
            "planted": int(is_planted.sum()), "planted_in_junk": junk[is_planted].mean(),
            "true_in_junk": junk[~is_planted].mean(), "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=[*sorted(SPLITS), "ribosome"], default="calibration")
    parser.add_argument("--size", type=int, nargs="+", default=[IMAGE_SIZE], help="classified image sides to compare")
    parser.add_argument("--background-quantile", type=float, nargs="+", default=[BACKGROUND_QUANTILE],
                        help="background quantiles to compare (0: classes alone)")
    parser.add_argument("--classes", type=int, nargs="+", default=[0], help="class counts (0: the default)")
    parser.add_argument("--rounds", type=int, default=1, help="classify what the previous round kept, this often")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plant", choices=["background", "carbon"], default="background",
                        help="where planted picks go: one diameter into the background, or on carbon film")
    args = parser.parse_args()
    if args.split == "ribosome" and args.plant == "carbon":
        parser.error("the ribosome set has no carbon labels: --plant carbon needs an EMPIAR-10017 split")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    if args.split == "ribosome":
        data, diameter, side = RIBOSOME, RIBOSOME_DIAMETER, RIBOSOME_SIDE
        files = sorted((data / "micrographs").glob("*.png"))
    else:
        data, diameter, side = DATA, DIAMETER, SIDE
        files = [data / "micrographs" / f"{PREFIX}{s}_0.jpg" for s in SPLITS[args.split]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mics").mkdir()
        (work / "picks").mkdir()
        planted = []
        for micrograph in files:
            stem = micrograph.stem
            (work / "mics" / micrograph.name).symlink_to(micrograph)
            truth = read_coordinates(data / "particles" / f"{stem}.csv")
            if args.plant == "carbon":
                picks, moved = plant_on_carbon(truth, data / "cassper_labels" / f"{stem}.png", rng)
            else:
                picks, moved = plant(truth, rng, diameter, side)
            write_coordinates(picks, work / "picks" / f"{stem}.star")
            planted.append(picks[moved].assign(stem=stem))
        planted = pd.concat(planted, ignore_index=True)
        for size, classes, quantile in itertools.product(args.size, args.classes, args.background_quantile):
            start = time.perf_counter()
            picks_dir, junk_rounds = work / "picks", []
            for round_index in range(args.rounds):
                result = classify_pick_sets(gather_pick_sets([f"planted={picks_dir}"]), work / "mics", diameter,
                                            n_classes=classes or None, size=size, background_quantile=quantile,
                                            seed=args.seed, progress=False)
                particles = result.particles
                junk_rounds.append(particles)
                # the next round classifies what this one kept, as a cryoSPARC user re-runs 2D classification
                picks_dir = work / f"kept{round_index}"
                picks_dir.mkdir(exist_ok=True)
                for stem, group in particles[particles["junk"] == 0].groupby("micrograph"):
                    write_coordinates(group[["x", "y"]], picks_dir / f"{stem}.star")
                rows.append(score_round(junk_rounds, planted, size, quantile, len(result.classes),
                                        int(result.classes["junk"].sum()), round_index + 1,
                                        time.perf_counter() - start))
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1, float_format="%.3f"),
                      flush=True)
    print(f"\n# {args.split} split: {', '.join(f.stem for f in files)}; up to {PLANTED_SHARE:.0%} planted "
          f"({args.plant}), seed {args.seed}")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
