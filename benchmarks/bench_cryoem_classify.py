"""Cryo-EM 2D classification: junk fraction per picker, and seconds per micrograph's worth of particles.

Classifies, with `deepscope cryoem classify`'s defaults, the particles of each
pick set on the same EMPIAR-10017 micrographs, one set at a time (as each
picker's particles would be classified in practice), and prints one table:
the fraction of each set's picks in junk classes beside its truth-matched
false-pick fraction (one-to-one within half a diameter). The sets are the
CryoPPP truth, random coordinates (uniform, a diameter from the edges, as
many as the truth on each micrograph), deepscope's picks (the shipped model,
run here), and the published crYOLO, Topaz, DeepPicker (REPIC), CASSPER and
Gautomatch picks.

--split test (default) uses the six micrographs that have every peer's
picks; --split calibration uses four others, on which the junk rule's
thresholds were chosen (truth vs random only), so the test figures are not
tuned on. Times are CPU seconds of this process (torch on 2 threads) and
wall seconds, per micrograph's worth of particles, for extraction (JPEG
decode, boxes, Fourier crop, normalisation) and classification.

  python benchmarks/bench_cryoem_classify.py [--split test|calibration] [--out DIR] [--device cpu]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepscope.cli.main import main as deepscope
from deepscope.cryoem.classify2d.run import classify_pick_sets, write_classify_outputs
from deepscope.cryoem.io import read_coordinates, write_coordinates
from deepscope.cryoem.pick_sets import gather_pick_sets

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem" / "empiar10017"
PREFIX = "Falcon_2012_06_12-"
SPLITS = {
    "test": ["14_33_35", "15_17_31", "15_30_21", "16_26_22", "16_44_07", "16_51_03"],
    "calibration": ["14_57_34", "15_07_41", "15_14_01", "15_27_22"],
}
PEERS = {"crYOLO": "crYOLO_repic", "Topaz": "topaz_repic", "DeepPicker": "deeppicker_repic",
         "CASSPER": "cassper", "Gautomatch": "gautomatch"}
DIAMETER = 108.0
HEIGHT = 4096


def prepare(work, stems, with_peers, seed=0):
    """Micrograph links, truth and random coordinates (and our picks) for the given stems."""
    rng = np.random.default_rng(seed)
    for folder in ("mics", "truth", "random"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        (work / "mics" / f"{stem}.jpg").symlink_to(DATA / "micrographs" / f"{stem}.jpg")
        truth = read_coordinates(DATA / "particles" / f"{stem}.csv")
        write_coordinates(truth, work / "truth" / f"{stem}.star")
        random = pd.DataFrame({"x": rng.uniform(DIAMETER, HEIGHT - DIAMETER, len(truth)),
                               "y": rng.uniform(DIAMETER, HEIGHT - DIAMETER, len(truth))})
        write_coordinates(random, work / "random" / f"{stem}.star")
    specs = {"truth": f"truth={work / 'truth'}", "random": f"random={work / 'random'}"}
    if with_peers:
        assert deepscope(["-q", "cryoem", "pick", str(work / "mics"), "--diameter", str(DIAMETER),
                          "--out", str(work / "deepscope"), "--threads", "2"]) == 0
        specs["deepscope"] = f"deepscope={work / 'deepscope'}"
        for name, folder in PEERS.items():
            peer = work / "peers" / name
            peer.mkdir(parents=True)
            for stem in stems:  # only the micrographs of this split
                source = next((DATA / "peer_picks" / folder).glob(f"{stem}.*"))
                (peer / source.name).symlink_to(source)
            specs[name] = f"{name}={peer},flip-y={HEIGHT}"
    return specs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="test")
    parser.add_argument("--out", type=Path, help="keep each set's classify outputs here")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(2)
    stems = [f"{PREFIX}{s}_0" for s in SPLITS[args.split]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        specs = prepare(work, stems, with_peers=args.split == "test")
        truth = gather_pick_sets([specs["truth"]])[0]
        rows = []
        for name, spec in specs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            result = classify_pick_sets(gather_pick_sets([spec]), work / "mics", DIAMETER, truth=truth,
                                        device=args.device, progress=False)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if args.out:
                write_classify_outputs(result, args.out / name)
            row = result.accounting.iloc[0].to_dict()
            row.update(classes=len(result.classes), junk_classes=int(result.classes["junk"].sum()),
                       cpu_s_per_micrograph=cpu / len(stems), wall_s_per_micrograph=wall / len(stems))
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1, float_format="%.3f"),
                  flush=True)
    print(f"\n# {args.split} split, {len(stems)} micrographs: {', '.join(SPLITS[args.split])}")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
