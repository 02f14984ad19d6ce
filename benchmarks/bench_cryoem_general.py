"""How general a picker is: EMPIAR-10017 held out, the ribosome set, simulated micrographs of other shapes.

For each --model (shipped name, run directory or checkpoint; default the
shipped default), default options unless --augment / --threshold say
otherwise, one-to-one matching within half a diameter:

- EMPIAR-10017's 3 held-out micrographs (the shipped picker's test split,
  docs/cryoem.md), 108 px: precision, recall, F1, median centre error; with
  --containers also their float32 MRC, 16-bit TIFF and inverted-contrast
  copies (the inverted ones through --polarity auto);
- the 80S ribosome set (EMPIAR-10028, 10 micrographs, 56 px; --ribosome
  STEM... scores only those, e.g. 312_10028 ... 315_10028, the four that
  selftrain benchmarks never adapt to): recall is the figure to trust, since
  many particles are unlabelled (DATA.md);
- each --sim DIR (a `cryoem simulate` output: micrograph_NNN.mrc,
  coords/, simulation.yaml with the diameter): F1.

Micrographs a model trained or tuned on are skipped and named (its
checkpoint's train/val lists). With --topaz PATH (the `topaz` of an
environment made by benchmarks/make_topaz_env.sh), Topaz's pretrained
resnet16 picks every set too (`topaz preprocess` down-sampled so that the
particles are about 14 px, as bench_cryoem.py's 8x for 10017, `extract -r
7`), scored at its default threshold (-6) and at score 0 (its probability
0.5). Prints one table and a JSON line.

  python benchmarks/bench_cryoem_general.py [--model NAME_OR_RUN]... [--sim DIR]... [--containers] [--augment N] \
      [--ribosome STEM...] [--topaz PATH]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from deepscope.cryoem.evaluate import centre_errors, match_picks, summarise_counts
from deepscope.cryoem.io import read_coordinates, read_micrograph, write_mrc
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.preprocess import load_for_picking

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem"
BETA_GAL = SHARED / "empiar10017"
RIBOSOME = SHARED / "ribosome80s_empiar10028"
HELD_OUT = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_30_21_0", "Falcon_2012_06_12-16_44_07_0"]


def pooled(pairs, diameter):
    """Counts and median centre error pooled over ``pairs`` = [(picks, truth table)], matched within a radius."""
    counts, errors = np.zeros(3, dtype=int), [np.zeros(0)]
    for picks, truth in pairs:
        result = match_picks(picks, truth, diameter / 2)
        counts += [result["tp"], result["fp"], result["fn"]]
        errors.append(centre_errors(picks, truth, result["pairs"]))
    errors = np.concatenate(errors)
    return {**summarise_counts(*counts), "centre_px": float(np.median(errors)) if len(errors) else np.nan,
            "n": len(pairs)}


def score(picker, items, diameter, threshold=None):
    """:func:`pooled` scores of ``picker`` over ``items`` = [(micrograph path, truth table)], and its time."""
    pairs, seconds = [], []
    for path, truth in items:
        start = time.perf_counter()
        image, scale, _ = load_for_picking(path, diameter, picker.working_diameter)
        pairs.append((picker.pick(image, scale, threshold), truth))
        seconds.append(time.perf_counter() - start)
    return {**pooled(pairs, diameter), "s_per_micrograph": float(np.median(seconds))}


def unseen(picker, items, label):
    kept = [(p, t) for p, t in items if Path(p).stem not in picker.seen_micrographs]
    if len(kept) < len(items):
        print(f"# {label}: {len(items) - len(kept)} micrograph(s) skipped, seen in training")
    return kept


def beta_gal_items(work, containers):
    truth = {s: read_coordinates(BETA_GAL / "particles" / f"{s}.csv") for s in HELD_OUT}
    sets = {"10017 JPEG": [(BETA_GAL / "micrographs" / f"{s}.jpg", truth[s]) for s in HELD_OUT]}
    if containers:
        from PIL import Image

        for kind in ("mrc", "tif", "inverted.mrc"):
            sets[f"10017 {kind}"] = []
        for s in HELD_OUT:
            pixels = read_micrograph(BETA_GAL / "micrographs" / f"{s}.jpg")
            write_mrc(pixels, work / f"{s}.mrc")
            Image.fromarray(pixels.astype(np.uint16) * 257).save(work / f"{s}.tif")
            write_mrc(255 - pixels, work / f"{s}.inverted.mrc")
            for kind in ("mrc", "tif", "inverted.mrc"):
                sets[f"10017 {kind}"].append((work / f"{s}.{kind}", truth[s]))
    return sets


def topaz_rows(topaz, sets, work):
    """Topaz's pretrained resnet16 on every set, at its default threshold and at score 0."""
    from bench_cryoem import run_topaz

    rows = []
    for index, (name, (items, diameter)) in enumerate(sets.items()):
        folder = work / f"topaz_{index}"
        folder.mkdir()
        mrcs = []
        for path, _ in items:  # Topaz reads MRC; every container gives these same pixels (docs/cryoem.md)
            mrcs.append(folder / f"{Path(path).name.split('.')[0]}.mrc")
            write_mrc(read_micrograph(path).astype(np.float32), mrcs[-1])
        _, picks = run_topaz(topaz, mrcs, folder, downsample=max(1, round(diameter / 14)))
        none = pd.DataFrame({"x": [], "y": [], "score": []})
        for cut in (-6.0, 0.0):
            kept = [picks.get(mrc.stem, none) for mrc in mrcs]
            pairs = [(table[table["score"] >= cut], truth) for table, (_, truth) in zip(kept, items)]
            rows.append({"model": f"topaz resnet16 (score >= {cut:g})", "set": name, **pooled(pairs, diameter)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="shipped name, run dir or checkpoint (repeatable)")
    parser.add_argument("--sim", action="append", default=[], help="a `cryoem simulate` output directory")
    parser.add_argument("--containers", action="store_true", help="also MRC, TIFF and inverted copies of 10017")
    parser.add_argument("--augment", type=int, help="test-time views (default: each model's)")
    parser.add_argument("--threshold", type=float, help="pick threshold (default: each model's)")
    parser.add_argument("--no-ribosome", action="store_true")
    parser.add_argument("--ribosome", nargs="+", metavar="STEM", help="score only these ribosome micrographs")
    parser.add_argument("--topaz", help="topaz executable in its own environment (benchmarks/make_topaz_env.sh)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", default="auto", choices=["auto", "torch", "onnx", "onnx-int8"],
                        help="what runs the networks (default auto: a shipped model's CPU export)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {name: (items, 108.0) for name, items in beta_gal_items(Path(tmp), args.containers).items()}
        if not args.no_ribosome:
            chosen = [p for p in sorted((RIBOSOME / "micrographs").glob("*.png"))
                      if args.ribosome is None or p.stem in args.ribosome]
            sets["ribosome recall"] = ([(p, read_coordinates(RIBOSOME / "particles" / f"{p.stem}.csv"))
                                        for p in chosen], 56.0)
        for folder in map(Path, args.sim):
            settings = yaml.safe_load((folder / "simulation.yaml").read_text())
            sets[f"sim {folder.name}"] = ([(p, read_coordinates(folder / "coords" / f"{p.stem}.star"))
                                          for p in sorted(folder.glob("*.mrc"))], float(settings["diameter_px"]))
        for model in args.model or [None]:
            picker = Picker.from_checkpoint(model, engine=args.engine)
            if args.augment:
                picker.augment = args.augment
            for name, (items, diameter) in sets.items():
                items = unseen(picker, items, f"{model or 'default'} / {name}")
                if items:
                    rows.append({"model": model or "default", "set": name,
                                 **score(picker, items, diameter, args.threshold)})
        if args.topaz:
            rows += topaz_rows(args.topaz, sets, Path(tmp))
    frame = pd.DataFrame(rows)
    print(f"# load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores; "
          f"views {args.augment or 'model'}, threshold {args.threshold or 'model'}")
    print(frame.drop(columns=["tp", "fp", "fn"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
