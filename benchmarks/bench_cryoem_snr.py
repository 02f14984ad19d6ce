"""Picking F1 at known SNR, on micrographs simulated from beta-galactosidase.

Simulates raw micrographs (5a1a, random orientations, CTF, Gaussian noise)
at several SNRs, trains one binary-disk U-Net on a mix of them (with the
automatic contrast enhancement that raw MRC input gets), and scores it on
separately simulated micrographs (different seeds) at each SNR, beside the
no-learning baseline of picking the peaks of the contrast-enhanced image.

  python benchmarks/bench_cryoem_snr.py [--epochs 6] [--threads 2]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepscope.config import TrainConfig
from deepscope.cryoem.io import write_coordinates, write_mrc
from deepscope.cryoem.preprocess import load_for_picking
from deepscope.cryoem.synthetic import read_structure, simulate_micrograph
from deepscope.cryoem.evaluate import match_picks, summarise_counts
from deepscope.cryoem.picking import find_picks
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.train import train_picker

STRUCTURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryoem" / "structures" / "5a1a.cif"
SNRS = (0.01, 0.03, 0.1, 0.3)
SIZE, PIXEL, PARTICLES = 1024, 4.0, 80


def simulate(structure, folder, snr, seed):
    image, particles, diameter = simulate_micrograph(structure, (SIZE, SIZE), PARTICLES, PIXEL, snr=snr, seed=seed)
    stem = f"snr{snr:g}_seed{seed}"
    write_mrc(image, folder / "mics" / f"{stem}.mrc", PIXEL)
    write_coordinates(particles, folder / "coords" / f"{stem}.star")
    return stem, particles, diameter


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-per-snr", type=int, default=2)
    parser.add_argument("--test-per-snr", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    structure = read_structure(STRUCTURE)
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = Path(tmp) / "train", Path(tmp) / "test"
        for folder in (train_dir, test_dir):
            (folder / "mics").mkdir(parents=True)
            (folder / "coords").mkdir()
        val = []
        for snr in SNRS:
            for k in range(args.train_per_snr + 1):
                stem, _, diameter = simulate(structure, train_dir, snr, seed=k)
                if k == args.train_per_snr:
                    val.append(stem)
        tests = {snr: [simulate(structure, test_dir, snr, seed=1000 + k) for k in range(args.test_per_snr)]
                 for snr in SNRS}
        working = 13.5
        config = TrainConfig(model="cryoem_unet", model_kwargs={"width": 16, "depth": 3}, epochs=args.epochs,
                             batch_size=16, lr=2e-3, patience=3, threads=args.threads)
        result = train_picker(sorted((train_dir / "mics").glob("*.mrc")), train_dir / "coords", diameter,
                              Path(tmp) / "run", config, target="disks", val_names=val, working_diameter=working,
                              patches_per_epoch=192, enhance="on")
        picker = Picker.from_checkpoint(Path(tmp) / "run")
        rows = []
        for snr, items in tests.items():
            ours, baseline = np.zeros(3, int), np.zeros(3, int)
            for stem, truth, _ in items:
                image, scale, _ = load_for_picking(test_dir / "mics" / f"{stem}.mrc", diameter, working, "on")
                picks = picker.pick(image, scale)
                r = match_picks(picks, truth, diameter / 2)
                ours += [r["tp"], r["fp"], r["fn"]]
                # baseline: particles are dark under defocus (the CTF is negative
                # at low frequency), so the darkest blobs of the enhanced image,
                # as many as there are true particles (an oracle count)
                peaks = find_picks(-image, None, working, -np.inf, 1.0).head(len(truth))
                peaks[["x", "y"]] = (peaks[["x", "y"]] + 0.5) / scale - 0.5
                r = match_picks(peaks, truth, diameter / 2)
                baseline += [r["tp"], r["fp"], r["fn"]]
            rows.append({"snr": snr, "deepscope_f1": summarise_counts(*ours)["f1"],
                         "peaks_of_enhanced_image_f1": summarise_counts(*baseline)["f1"]})
    print(f"# diameter {diameter:.1f} px at {PIXEL} A/px, {SIZE}x{SIZE} px, {PARTICLES} particles; trained on "
          f"{args.train_per_snr} micrographs per SNR (validation F1 {result['tuning']['f1']:.3f}), "
          f"tested on {args.test_per_snr} other ones per SNR")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
