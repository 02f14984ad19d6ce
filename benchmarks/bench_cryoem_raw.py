"""Container independence, raw-like robustness and centre error of the shipped cryo-EM picker.

Writes each micrograph's JPEG pixels as float32 MRC and 16-bit TIFF (the
same pixels, other containers), and as "raw-like" float32 MRC: the
micrograph standardised to zero mean and unit std plus white Gaussian noise
of std 1 and 3 (seeded). Picks every variant with default options and
prints pooled precision, recall, F1 and the median centre error of matched
picks, per variant.

    python benchmarks/bench_cryoem_raw.py --work /tmp/rawbench            # the 3 held-out micrographs
    python benchmarks/bench_cryoem_raw.py --work /tmp/rawbench --stems Falcon_2012_06_12-14_57_34_0 ...
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cryoem" / "empiar10017"
HELD_OUT = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_30_21_0", "Falcon_2012_06_12-16_44_07_0"]
VARIANTS = ("jpg", "mrc", "tif16", "noise1", "noise3")  # also any "noise<std>"


def write_variant(source: Path, variant: str, out: Path) -> Path:
    """One container or raw-like version of a JPEG micrograph."""
    from PIL import Image

    from deepscope.cryoem.io import write_mrc

    if variant == "jpg":
        return source
    pixels = np.asarray(Image.open(source).convert("L"), dtype=np.float32)
    path = out / f"{source.stem}.{'tif' if variant == 'tif16' else 'mrc'}"
    if path.exists():
        return path
    if variant == "mrc":
        write_mrc(pixels, path)
    elif variant == "tif16":
        # 16-bit detector counts: the same pixels on another scale
        Image.fromarray((pixels * 257).astype(np.uint16)).save(path)
    else:
        std = float(variant.removeprefix("noise"))
        rng = np.random.default_rng(sum(map(ord, source.stem)))
        standard = (pixels - pixels.mean()) / pixels.std()
        write_mrc((standard + rng.normal(0, std, standard.shape)).astype(np.float32), path)
    return path


def centre_offsets(picks: pd.DataFrame, truth: pd.DataFrame, radius: float) -> np.ndarray:
    """``(n, 2)`` pick minus true centre of every matched pick."""
    from deepscope.cryoem.evaluate import match_picks

    pairs = match_picks(picks, truth, radius)["pairs"]
    return picks[["x", "y"]].to_numpy()[pairs[:, 0]] - truth[["x", "y"]].to_numpy()[pairs[:, 1]]


def main():
    from deepscope.cryoem.evaluate import load_pick_set, match_picks
    from deepscope.cryoem.predictor import Picker
    from deepscope.cryoem.preprocess import load_for_picking

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="directory for the variant files")
    parser.add_argument("--stems", nargs="+", default=HELD_OUT)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--model", default=None)
    parser.add_argument("--enhance", default="auto")
    args = parser.parse_args()
    picker = Picker.from_checkpoint(args.model)
    truth = load_pick_set(DATA / "particles", None, "truth")
    diameter = 108.0
    rows = []
    for variant in args.variants:
        out = args.work / variant
        out.mkdir(parents=True, exist_ok=True)
        counts, offsets, seconds = np.zeros(3, int), [], []
        for stem in args.stems:
            path = write_variant(DATA / "micrographs" / f"{stem}.jpg", variant, out)
            start = time.perf_counter()
            image, scale, _ = load_for_picking(path, diameter, picker.working_diameter, args.enhance)
            picks = picker.pick(image, scale)
            seconds.append(time.perf_counter() - start)
            result = match_picks(picks, truth[stem], diameter / 2)
            counts += [result["tp"], result["fp"], result["fn"]]
            offsets.append(centre_offsets(picks, truth[stem], diameter / 2))
        tp, fp, fn = counts
        offsets = np.concatenate(offsets)
        rows.append({"variant": variant, "tp": tp, "fp": fp, "fn": fn, "precision": tp / max(tp + fp, 1),
                     "recall": tp / max(tp + fn, 1), "f1": 2 * tp / max(2 * tp + fp + fn, 1),
                     "median_centre_error_px": float(np.median(np.hypot(*offsets.T))),
                     "median_dx": float(np.median(offsets[:, 0])), "median_dy": float(np.median(offsets[:, 1])),
                     "s_per_micrograph": float(np.median(seconds))})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)


if __name__ == "__main__":
    main()
