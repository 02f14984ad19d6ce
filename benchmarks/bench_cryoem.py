"""Cryo-EM picking: seconds per 4096x4096 micrograph and F1, ours beside Topaz.

Runs a picker on the six EMPIAR-10017 micrographs that also have
crYOLO/Topaz/DeepPicker picks from REPIC, on 2 CPU threads, timing each
micrograph end to end (decode, downsample, U-Net, peak finding, STAR write),
from the 8-bit JPEG and from a float32 MRC copy (what a raw pipeline and Topaz
read). Timings use the first --model (default: the shipped one), with each
--engine in turn, round by round. F1 and region IoU are scored only on
micrographs a model never saw: give the two cross-validation folds (`--model
runs/cryoem_foldA --model runs/cryoem_foldB`) and each micrograph is scored by
the fold that left it out; the shipped model is fold A, so alone it scores the
three fold A left out. With --topaz PATH (the `topaz` executable of a separate
environment with topaz-em), Topaz's pretrained resnet16 model runs on the same
MRC files on the CPU, timed the same way, and both are scored against the
CryoPPP truth (one-to-one within half a diameter).

  python benchmarks/bench_cryoem.py [--topaz /tmp/topaz-venv/bin/topaz] [--model RUN_DIR]...
      [--engine onnx onnx-int8] [--rounds 3]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepscope.cryoem.io import read_coordinates, read_micrograph, write_coordinates, write_mrc
from deepscope.cryoem.preprocess import load_for_picking
from deepscope.cryoem.evaluate import match_picks, summarise_counts
from deepscope.cryoem.predictor import Picker

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem" / "empiar10017"
TEST = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_17_31_0", "Falcon_2012_06_12-15_30_21_0",
        "Falcon_2012_06_12-16_26_22_0", "Falcon_2012_06_12-16_44_07_0", "Falcon_2012_06_12-16_51_03_0"]
DIAMETER = 108.0


def score(pick_sets, truth):
    counts = np.zeros(3, dtype=int)
    for stem, picks in pick_sets.items():
        result = match_picks(picks, truth[stem], DIAMETER / 2)
        counts += [result["tp"], result["fp"], result["fn"]]
    return summarise_counts(*counts)


def run_ours(picker, files, out_dir):
    seconds, picks = [], {}
    for path in files:
        start = time.perf_counter()
        image, scale, _ = load_for_picking(path, DIAMETER, picker.working_diameter)
        table = picker.pick(image, scale)
        write_coordinates(table, out_dir / f"{path.stem}.star")
        seconds.append(time.perf_counter() - start)
        picks[path.stem] = table
    return seconds, picks


def run_topaz(topaz, mrc_files, work, downsample=8):
    # topaz's documented flow: downsample + normalise, then extract with the
    # pretrained resnet16 model, radius in downsampled pixels, coordinates
    # scaled back by the same factor (8 for 10017's 108 px: 13.5 px particles)
    pre, out = work / "topaz_pre", work / "topaz_picks.txt"
    start = time.perf_counter()
    subprocess.run([topaz, "preprocess", "-s", str(downsample), "-d", "-1", "-o", str(pre), *map(str, mrc_files)],
                   check=True, capture_output=True)
    subprocess.run([topaz, "extract", "-m", "resnet16", "-r", "7", "-x", str(downsample), "-d", "-1", "-o", str(out),
                    *sorted(map(str, pre.glob("*.mrc")))], check=True, capture_output=True)
    total = time.perf_counter() - start
    # each topaz command pays a fixed start-up (importing a CUDA build of
    # torch); measure it so the per-micrograph figure can exclude it
    startup = 0.0
    for command in ("preprocess", "extract"):
        begin = time.perf_counter()
        subprocess.run([topaz, command, "--help"], check=True, capture_output=True)
        startup += time.perf_counter() - begin
    seconds = {"total": total / len(mrc_files), "startup": startup,
               "net": max(total - startup, 0.0) / len(mrc_files)}
    table = pd.read_csv(out, sep="\t")
    picks = {stem: pd.DataFrame({"x": g["x_coord"].astype(float), "y": g["y_coord"].astype(float),
                                 "score": g["score"].astype(float)})
             for stem, g in table.groupby("image_name")}
    return seconds, picks


def held_out_scorers(pickers, stems):
    """Each micrograph's scorer: the first picker that neither trained nor tuned on it.

    Micrographs every picker has seen are left out.
    """
    scorers = {}
    for stem in stems:
        unseen_by = [p for p in pickers if stem not in p.seen_micrographs]
        if unseen_by:
            scorers[stem] = unseen_by[0]
    return scorers


def region_iou(picker_of):
    """Per-class IoU of the region head against CASSPER's labels (working scale).

    ``picker_of`` maps each micrograph stem to the picker that scores it.
    """
    from deepscope.cryoem.io import REGION_CLASSES
    from deepscope.cryoem.train import load_training_item

    inter, union = np.zeros(4), np.zeros(4)
    for stem, picker in picker_of.items():
        labels = DATA / "cassper_labels" / f"{stem}.png"
        item = load_training_item(DATA / "micrographs" / f"{stem}.jpg", DATA / "particles" / f"{stem}.csv",
                                  DIAMETER, picker.working_diameter, labels=labels, labels_flip_y=True)
        _, regions = picker.maps(item["image"])
        predicted, known = regions.argmax(axis=0), item["regions"] != 255
        for k in range(4):
            a, b = (predicted == k) & known, item["regions"] == k
            inter[k] += (a & b).sum()
            union[k] += (a | b).sum()
    return {f"iou_{name}": (inter[k] / union[k] if union[k] else float("nan"))
            for k, name in enumerate(REGION_CLASSES)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append",
                        help="checkpoint or run dir, repeatable (default: shipped); the first is timed")
    parser.add_argument("--topaz", help="topaz executable in its own environment")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", nargs="+", default=["auto"],
                        help="engines to time the first model with, interleaved (auto, torch, onnx, onnx-int8)")
    parser.add_argument("--rounds", type=int, default=1, help="timed passes over the micrographs per engine")
    parser.add_argument("--device", default="cpu", help="where our picker runs: cpu, cuda or cuda:N")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pickers = [Picker.from_checkpoint(m, args.device) for m in (args.model or [None])]
    picker = pickers[0]
    scorer = held_out_scorers(pickers, TEST)
    truth = {s: read_coordinates(DATA / "particles" / f"{s}.csv") for s in TEST}
    jpegs = [DATA / "micrographs" / f"{s}.jpg" for s in TEST]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mrcs = []
        for path in jpegs:
            mrcs.append(work / "mrc" / f"{path.stem}.mrc")
            mrcs[-1].parent.mkdir(exist_ok=True)
            write_mrc(read_micrograph(path), mrcs[-1])
        # each engine times the first model, the engines interleaved round by round so the load hits them alike
        timed_pickers = {engine: Picker.from_checkpoint(args.model[0] if args.model else None, args.device,
                                                        engine=engine) for engine in args.engine}
        seconds, timed = {}, {}
        for engine, timed_picker in timed_pickers.items():
            run_ours(timed_picker, jpegs[:1], work)  # warm-up: first-call allocations
        for _ in range(args.rounds):
            for engine, timed_picker in timed_pickers.items():
                for label, files in (("jpeg", jpegs), ("mrc", mrcs)):
                    taken, timed[engine, label] = run_ours(timed_picker, files, work)
                    seconds.setdefault((engine, label), []).extend(taken)
        for (engine, label), taken in seconds.items():
            results[f"deepscope {engine} ({label} input)"] = {"s_per_micrograph": float(np.median(taken))}
        # The MRC holds the JPEG's pixels, so its picks are the same (see
        # bench_cryoem_raw.py); the JPEG picks are the ones scored. The
        # timed picks serve where the timed model is the scorer; the other
        # models' picks are made once, whatever the number of engines.
        others = {stem: run_ours(scoring, [DATA / "micrographs" / f"{stem}.jpg"], work)[1][stem]
                  for stem, scoring in scorer.items() if scoring is not picker}
        for engine in args.engine:
            held_out = {stem: others[stem] if stem in others else timed[engine, "jpeg"][stem] for stem in scorer}
            if held_out:
                results[f"deepscope {engine} (jpeg input)"].update(score(held_out, {s: truth[s] for s in held_out}))
        if args.topaz:
            if not shutil.which(args.topaz):
                raise SystemExit(f"{args.topaz}: not found")
            seconds, picks = run_topaz(args.topaz, mrcs, work)
            timing = {"s_per_micrograph": seconds["net"], "s_per_micrograph_with_startup": seconds["total"]}
            # topaz scores are logits: 0 is its own "probability 0.5" cut
            kept = {s: p[p["score"] >= 0.0] for s, p in picks.items()}
            results["topaz resnet16 (score >= 0)"] = {**timing, **score(kept, truth)}
            best = max(((t, score({s: p[p["score"] >= t] for s, p in picks.items()}, truth))
                        for t in np.arange(-6, 6.01, 0.5)), key=lambda r: r[1]["f1"])
            results[f"topaz resnet16 (score >= {best[0]:g}, best on the test set: optimistic)"] = {
                **timing, **best[1]}
    unseen = [s for s in TEST if s not in scorer]
    if unseen:
        print(f"# not scored, every model trained or tuned on them: {', '.join(unseen)}")
    regional = {s: p for s, p in scorer.items()
                if p.target != "disks" and (DATA / "cassper_labels" / f"{s}.png").is_file()}
    if regional:
        print(f"# region head vs CASSPER labels on {len(regional)} held-out micrographs: "
              + ", ".join(f"{k} {v:.3f}" for k, v in region_iou(regional).items()))
    # the machine is shared: the load average says how contended the timings were
    print(f"# load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    print(f"# {len(TEST)} held-out EMPIAR-10017 micrographs (4096x4096), torch threads {args.threads}, "
          f"--device {args.device}: "
          f"{', '.join(TEST)}")
    frame = pd.DataFrame(results).T
    print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
