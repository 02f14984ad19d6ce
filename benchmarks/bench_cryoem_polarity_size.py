"""Polarity and particle size read from the pixels: what `cryoem pick --polarity auto` and `--diameter auto` do.

On the shipped picker's held-back EMPIAR-10017 micrographs (the ones its
checkpoint does not list as trained or tuned on), one-to-one matching within
half a diameter:

- polarity: F1 of the JPEGs and of inverted float32 MRC copies (particles
  bright), with --polarity dark (what picking did before polarity was read)
  and auto; and the decision on every 10017 and ribosome micrograph, as they
  are and inverted;
- size: the estimate (`particle_size.estimate_micrograph_size`, one
  micrograph at a time) on every 10017 micrograph (true 108 px), 2x-binned
  copies (54 px), the ribosome set (56 px) and `cryoem simulate`
  micrographs of 5A1A at 4 and 2.5 A/px (45.6 and 72.9 px, SNR 0.05),
  its seconds per micrograph;
  whether picking the binned copies with the unbinned 108 warns; F1 of
  --diameter auto against the true diameter on the held-back micrographs,
  as they are and binned.

Prints tables and a JSON line. One torch thread by default.

  python benchmarks/bench_cryoem_polarity_size.py [--threads 1] [--parts polarity size] [--no-simulated]
"""

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from deepscope.cryoem.evaluate import match_picks, summarise_counts
from deepscope.cryoem.io import read_coordinates, read_micrograph, write_mrc
from deepscope.cryoem.particle_size import estimate_micrograph_size, resolve_diameter
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.preprocess import load_for_picking
from deepscope.errors import DiameterWarning

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem"
BETA_GAL = SHARED / "empiar10017"
RIBOSOME = SHARED / "ribosome80s_empiar10028"


def f1(picker, items, diameter, polarity="auto", truth_scale=1.0):
    """Pooled precision/recall/F1 of ``picker`` over [(path, truth)], truth scaled by ``truth_scale``."""
    counts = np.zeros(3, dtype=int)
    for path, truth in items:
        image, scale, _ = load_for_picking(path, diameter, picker.working_diameter, polarity=polarity)
        picks = picker.pick(image, scale)
        scaled = truth.assign(x=truth["x"] * truth_scale, y=truth["y"] * truth_scale)
        result = match_picks(picks, scaled, 108.0 * truth_scale / 2)
        counts += [result["tp"], result["fp"], result["fn"]]
    return summarise_counts(*counts)


def decision(picker, path, diameter):
    """The polarity auto decides for one micrograph (dark images come back as they were read)."""
    dark, _, _ = load_for_picking(path, diameter, picker.working_diameter, polarity="dark")
    auto, _, _ = load_for_picking(path, diameter, picker.working_diameter, polarity="auto")
    return "dark" if np.array_equal(dark, auto) else "bright"


def polarity_part(picker, results, stems, held_back, truth, work):
    """F1 as read and inverted with --polarity dark and auto; the auto decision on every micrograph."""
    inverted = {}
    for s in stems:
        inverted[s] = work / f"{s}.inverted.mrc"
        write_mrc(255 - read_micrograph(BETA_GAL / "micrographs" / f"{s}.jpg"), inverted[s])
    ribosomes = sorted((RIBOSOME / "micrographs").glob("*.png"))
    inverted_ribosomes = []
    for path in ribosomes:
        inverted_ribosomes.append(work / f"{path.stem}.inverted.png")
        Image.fromarray(255 - np.asarray(Image.open(path).convert("L"))).save(inverted_ribosomes[-1])
    normal = [(BETA_GAL / "micrographs" / f"{s}.jpg", truth[s]) for s in held_back]
    flipped = [(inverted[s], truth[s]) for s in held_back]
    rows = [{"micrographs": name, "polarity": polarity, **f1(picker, items, 108.0, polarity)}
            for name, items in (("JPEG", normal), ("inverted MRC", flipped)) for polarity in ("dark", "auto")]
    results["polarity_f1"] = rows
    print(f"# polarity: {len(held_back)} held-back EMPIAR-10017 micrographs, --diameter 108")
    print(pd.DataFrame(rows).drop(columns=["tp", "fp", "fn"]).to_string(index=False, float_format="{:.3f}".format))
    decided = {
        "10017": [decision(picker, BETA_GAL / "micrographs" / f"{s}.jpg", 108.0) for s in stems],
        "10017 inverted": [decision(picker, inverted[s], 108.0) for s in stems],
        "ribosome": [decision(picker, p, 56.0) for p in ribosomes],
        "ribosome inverted": [decision(picker, p, 56.0) for p in inverted_ribosomes],
    }
    results["polarity_decisions"] = {k: {d: v.count(d) for d in ("dark", "bright")} for k, v in decided.items()}
    print("# --polarity auto decisions:", results["polarity_decisions"])


def size_part(picker, results, stems, held_back, truth, work, simulated):
    """The estimate's error and time, the warning on binned micrographs, F1 of --diameter auto."""
    binned = {}
    for s in stems:
        binned[s] = work / f"{s}.bin2.png"
        Image.open(BETA_GAL / "micrographs" / f"{s}.jpg").convert("L").resize(
            (2048, 2048), Image.Resampling.BOX).save(binned[s])
    sets = {"10017 (108 px)": ([BETA_GAL / "micrographs" / f"{s}.jpg" for s in stems], 108.0),
            "10017 binned 2x (54 px)": ([binned[s] for s in stems], 54.0),
            "ribosome (56 px)": (sorted((RIBOSOME / "micrographs").glob("*.png")), 56.0)}
    if simulated:
        from deepscope.cryoem.synthetic import write_simulated_micrographs

        for pixel_size in (4.0, 2.5):
            folder = work / f"sim{pixel_size}"
            rows, diameter = write_simulated_micrographs(SHARED / "structures" / "5a1a.cif", folder, count=3,
                                                         n_particles=80, pixel_size=pixel_size, snr=0.05, seed=2)
            sets[f"simulated 5A1A ({diameter:.1f} px)"] = ([Path(r["micrograph"]) for r in rows], diameter)
    rows = []
    for name, (paths, true) in sets.items():
        ratios, seconds = [], []
        for path in paths:
            start = time.perf_counter()
            found = estimate_micrograph_size([path])
            seconds.append(time.perf_counter() - start)
            ratios.append(found.diameter / true)
        ratios = np.array(ratios)
        rows.append({"micrographs": name, "n": len(paths), "median ratio": np.median(ratios),
                     "min ratio": ratios.min(), "max ratio": ratios.max(),
                     "within 20%": int((np.abs(ratios - 1) <= 0.2).sum()),
                     "s per micrograph": float(np.median(seconds))})
    results["size_estimate"] = rows
    print("# size estimate, one micrograph at a time: estimate / true diameter")
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.3f}".format))
    warned = 0
    for s in stems:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resolve_diameter([binned[s]], 108.0)
        warned += any(issubclass(w.category, DiameterWarning) for w in caught)
    results["binned_with_108_warns"] = f"{warned}/{len(stems)}"
    print(f"# binned 2x micrographs given --diameter 108: warned on {warned}/{len(stems)}")
    normal = [(BETA_GAL / "micrographs" / f"{s}.jpg", truth[s]) for s in held_back]
    rows = []
    for name, items, true, truth_scale in (("JPEG", normal, 108.0, 1.0),
                                           ("binned 2x", [(binned[s], truth[s]) for s in held_back], 54.0, 0.5)):
        auto = resolve_diameter([p for p, _ in items], "auto")
        for label, diameter in (("true", true), ("auto", auto), ("108 (unbinned)", 108.0)):
            if label == "108 (unbinned)" and true == 108.0:
                continue
            rows.append({"micrographs": name, "diameter": f"{label} {diameter:.1f}",
                         **f1(picker, items, diameter, truth_scale=truth_scale)})
    results["auto_f1"] = rows
    print("# F1 by the diameter picked with (held-back micrographs)")
    print(pd.DataFrame(rows).drop(columns=["tp", "fp", "fn"]).to_string(index=False, float_format="{:.3f}".format))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", nargs="+", choices=["polarity", "size"], default=["polarity", "size"])
    parser.add_argument("--no-simulated", action="store_true", help="leave the simulated micrographs out")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    picker = Picker.from_checkpoint()
    stems = sorted(p.stem for p in (BETA_GAL / "micrographs").glob("*.jpg"))
    held_back = [s for s in stems if s not in picker.seen_micrographs]
    truth = {s: read_coordinates(BETA_GAL / "particles" / f"{s}.csv") for s in stems}
    results = {"held_back": held_back}
    with tempfile.TemporaryDirectory() as tmp:
        if "polarity" in args.parts:
            polarity_part(picker, results, stems, held_back, truth, Path(tmp))
        if "size" in args.parts:
            size_part(picker, results, stems, held_back, truth, Path(tmp), not args.no_simulated)
    print(f"# load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores, "
          f"torch threads {args.threads}")
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
