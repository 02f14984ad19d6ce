"""Container independence, raw-like robustness and centre error of the shipped cryo-EM picker.

Writes each micrograph's JPEG pixels as float32 MRC and 16-bit TIFF (the
same pixels, other containers), and as "raw-like" float32 MRC: the
micrograph standardised to zero mean and unit std plus white Gaussian noise
of std 1 and 3 (seeded). Picks every variant with default options and
prints pooled precision, recall, F1 and the median centre error of matched
picks, per variant.

    python benchmarks/bench_cryoem_raw.py --work /tmp/rawbench            # the 3 held-out micrographs
    python benchmarks/bench_cryoem_raw.py --work /tmp/rawbench --stems Falcon_2012_06_12-14_57_34_0 ...
    python benchmarks/bench_cryoem_raw.py --work /tmp/rawbench --simulated   # cryoem simulate, 4 SNRs
    python benchmarks/bench_cryoem_raw.py --work /tmp/rawbench --recentre    # picks re-centred on the image

``--simulated`` instead scores the shipped picker (default options) on
micrographs simulated from 5A1A (beta-galactosidase, the same protein) at
several SNRs, 1024 px at 4 A/px, 80 particles each, 2 seeds per SNR, with
each ``--enhance`` setting. ``--recentre`` re-centres every pick on the
micrograph read at a quarter of its size (:mod:`deepscope.cryoem.recentre`) instead of
subtracting the model's measured offset; the time per micrograph then
includes that read.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cryoem" / "empiar10017"
HELD_OUT = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_30_21_0", "Falcon_2012_06_12-16_44_07_0"]
VARIANTS = ("jpg", "mrc", "tif16", "noise1", "noise3")  # also any "noise<std>"


def _is_noise_variant(variant: str) -> bool:
    """``noise<std>`` with a number for the std."""
    try:
        return variant.startswith("noise") and float(variant.removeprefix("noise")) >= 0
    except ValueError:
        return False


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


def pick_file(picker, path: Path, diameter: float, enhance: str, recentre: bool) -> pd.DataFrame:
    """Pick one micrograph as ``cryoem pick`` does, optionally re-centred on the image."""
    from deepscope.cryoem.preprocess import load_for_picking
    from deepscope.cryoem.recentre import load_for_recentring

    image, scale, _ = load_for_picking(path, diameter, picker.working_diameter, enhance)
    micrograph = load_for_recentring(path, diameter) if recentre else None
    return picker.pick(image, scale, micrograph=micrograph)


def score_simulated(picker, work: Path, snrs=(0.03, 0.1, 0.3, 1.0), seeds=(0, 1), recentre=False):
    """F1 and centre error of the picker on simulated micrographs, per SNR and enhance setting."""
    from deepscope.cryoem.evaluate import centre_errors, match_picks
    from deepscope.cryoem.io import write_mrc
    from deepscope.cryoem.synthetic import read_structure, simulate_micrograph

    structure = read_structure(DATA.parent / "structures" / "5a1a.cif")
    work.mkdir(parents=True, exist_ok=True)
    for snr in snrs:
        sims = []
        for seed in seeds:
            image, truth, diameter = simulate_micrograph(structure, (1024, 1024), 80, 4.0, snr=snr, seed=seed)
            path = work / f"snr{snr:g}_seed{seed}.mrc"
            write_mrc(image, path, 4.0)
            sims.append((path, truth, diameter))
        for enhance in ("auto", "off", "on"):
            counts, errors = np.zeros(3, int), []
            for path, truth, diameter in sims:
                picks = pick_file(picker, path, diameter, enhance, recentre)
                result = match_picks(picks, truth, diameter / 2)
                counts += [result["tp"], result["fp"], result["fn"]]
                errors.append(centre_errors(picks, truth, result["pairs"]))
            tp, fp, fn = counts
            errors = np.concatenate(errors)
            print(f"snr {snr:g}\tenhance {enhance}\tF1 {2 * tp / max(2 * tp + fp + fn, 1):.3f}\t"
                  f"precision {tp / max(tp + fp, 1):.3f}\trecall {tp / max(tp + fn, 1):.3f}\t"
                  f"median centre error {np.median(errors) if len(errors) else float('nan'):.2f} px "
                  f"(diameter {diameter:.1f} px)", flush=True)


def main():
    from deepscope.cryoem.evaluate import match_picks
    from deepscope.cryoem.pick_sets import load_pick_set
    from deepscope.cryoem.predictor import Picker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="directory for the variant files")
    parser.add_argument("--stems", nargs="+", default=HELD_OUT)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"{VARIANTS} or noise<std>")
    parser.add_argument("--model", default=None)
    parser.add_argument("--enhance", default="auto")
    parser.add_argument("--threshold", type=float, default=None, help="instead of the model's")
    parser.add_argument("--simulated", action="store_true", help="score simulated micrographs instead")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="simulation seeds")
    parser.add_argument("--recentre", action="store_true", help="re-centre the picks on the micrograph")
    args = parser.parse_args()
    for variant in args.variants:  # before the model loads and any file is written
        if variant not in VARIANTS and not _is_noise_variant(variant):
            parser.error(f"--variants {variant}: choose from {', '.join(VARIANTS)} or noise<std>, e.g. noise2.5")
    picker = Picker.from_checkpoint(args.model)
    picker.threshold = args.threshold or picker.threshold
    if args.simulated:
        score_simulated(picker, args.work / "simulated", seeds=args.seeds, recentre=args.recentre)
        return
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
            picks = pick_file(picker, path, diameter, args.enhance, args.recentre)
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
