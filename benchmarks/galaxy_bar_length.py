"""Train, ship and measure the bar-length network that `galaxy predict` runs on the galaxies it calls barred.

The labels are the bars Galaxy Zoo volunteers drew (Hoyle et al. 2011; ``length_avg``, arcsec, the mean of
at least three drawings, ``length_stdev`` their spread), matched on the sky to the ``sdss_gz2_bars``
cutouts (2 arcsec): 584 of the train split, 132 of the test split. Training uses the train split only, a
seeded fifth of it held back for validation (early stopping, choices); the test split is scored by
``measure`` alone.

usage:
  python benchmarks/galaxy_bar_length.py train --out /tmp/bar_length.pt      # prints validation figures
  python benchmarks/galaxy_bar_length.py attach /tmp/bar_length.pt [--name galaxy_bars_rescaled]  # into its meta
  python scripts/export_onnx.py galaxy_bars                                  # exports record the new digest
  python benchmarks/galaxy_bar_length.py measure --out /tmp/bar_length_eval  # test split, once
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "galaxy"
LABELS = DATA / "sdss_gz2_bars" / "labels.csv"
HOYLE = DATA / "external_bar_labels" / "hoyle2011_bar_lengths.csv"
VALIDATION_SHARE = 0.2
# The network answers in tens of arcsec: outputs near 1, as a freshly initialised last layer gives.
OUTPUT_SCALE = 10.0


def hoyle_cutouts(split: str):
    """The cutouts of one split with a Hoyle bar: ``uint8 (N, 3, 64, 64)`` pixels and the matched table."""
    import pandas as pd

    from deepscope.galaxy.bar_evidence import match_catalogue
    from deepscope.galaxy.io import read_galaxy_image
    from deepscope.galaxy.preprocess import to_model_pixels

    labels = pd.read_csv(LABELS)
    labels = labels[labels["split"] == split].reset_index(drop=True)
    matched = match_catalogue(labels["ra"], labels["dec"], HOYLE, ("length_avg", "length_stdev", "bar_meas"))
    table = pd.concat([labels, matched], axis=1)
    table = table[table["length_avg"].notna()].reset_index(drop=True)
    pixels = np.stack([to_model_pixels(read_galaxy_image(LABELS.parent / f), 64) for f in table["file"]])
    return pixels, table


def _split(n: int, seed: int):
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(VALIDATION_SHARE * n))
    return order[n_val:], order[:n_val]


def _baselines(pixels, lengths, fit, val):
    """Validation median absolute error of the median length and of a length proportional to the galaxy's size."""
    from deepscope.galaxy.apparent_size import bright_fraction

    size = np.sqrt(bright_fraction(pixels))
    slope, intercept = np.polyfit(size[fit], lengths[fit], 1)
    return {"median length": float(np.median(np.abs(lengths[val] - np.median(lengths[fit])))),
            "linear in sqrt(bright_fraction)": float(np.median(np.abs(lengths[val] - (slope * size[val] + intercept))))}


def _averaged(states):
    """The mean of several state dicts (integer entries, BatchNorm's batch counts, from the last)."""
    return {key: sum(s[key] for s in states) / len(states) if states[-1][key].is_floating_point() else states[-1][key]
            for key in states[-1]}


def train(out: Path, arch: str, width: int, epochs: int, lr: float, views: int, seed: int, average: int = 0,
          input_size: int = 64) -> dict:
    import torch

    from deepscope.core.checkpoint import model_from_checkpoint
    from deepscope.galaxy.bar_measure import BarLengthModel, binned
    from deepscope.galaxy.field import SDSS_CUTOUT_FIELD
    from deepscope.galaxy.orientation import apply_views, canonical_view_index, dihedral_view
    from deepscope.registry import create_model

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pixels, table = hoyle_cutouts("train")
    lengths = table["length_avg"].to_numpy(np.float32)
    fit, val = _split(len(pixels), seed)
    canonical = apply_views(pixels, canonical_view_index(pixels))
    kwargs = {"n_classes": 1, "width": width}
    net = create_model(arch, **kwargs)
    meta = {"target": "length_avg", "unit": "arcsec", "field": SDSS_CUTOUT_FIELD, "output_scale": OUTPUT_SCALE,
            "views": views, "input_size": input_size, "orientation": "canonical",
            "trained_on": f"Hoyle et al. (2011) drawn bar lengths of {len(fit)} sdss_gz2_bars train-split "
                          f"galaxies ({len(val)} more held back for validation, seed {seed})"}
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    best = {"val_median_abs_error": np.inf}
    states = []
    for epoch in range(epochs):
        start = time.time()
        net.train()
        order = rng.permutation(fit)
        for i in range(0, len(order), 32):
            chosen = order[i:i + 32]
            # Any of the eight views of the canonical view: the model averages them when it answers.
            batch = np.stack([dihedral_view(canonical[j], v) for j, v in zip(chosen, rng.integers(0, 8, len(chosen)))])
            x = torch.from_numpy(binned(batch, input_size))
            loss = torch.nn.functional.smooth_l1_loss(net(x)[:, 0] * OUTPUT_SCALE, torch.from_numpy(lengths[chosen]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        states = (states + [copy.deepcopy(net.state_dict())])[-max(average, 1):]
        # With --average K, the mean of the last K epochs' weights (a smoother optimum than any one epoch).
        state = _averaged(states) if average else states[-1]
        record = {"model": arch, "model_kwargs": kwargs, "state_dict": state, "meta": meta}
        model = BarLengthModel(model_from_checkpoint(copy.deepcopy(record)), meta)
        error = np.abs(model.lengths(pixels[val]) - lengths[val])
        print(f"epoch {epoch}: validation median |error| {np.median(error):.3f} arcsec, mean {error.mean():.3f} "
              f"({time.time() - start:.1f} s)", flush=True)
        if np.median(error) < best["val_median_abs_error"] and len(states) == max(average, 1):
            best = {"val_median_abs_error": float(np.median(error)), "val_mean_abs_error": float(error.mean()),
                    "epoch": epoch, "record": record}
    record = best.pop("record")
    figures = {**best, "n_fit": int(len(fit)), "n_val": int(len(val)),
               "val_median_length_stdev": float(np.median(table["length_stdev"].to_numpy()[val])),
               "baselines": _baselines(pixels, lengths, fit, val)}
    record["meta"] = {**meta, "validation": figures}
    torch.save(record, out)
    print(json.dumps(figures, indent=2))
    return figures


def attach(path: Path, name: str = "galaxy_bars") -> None:
    """Put a trained length network into a shipped bar model's checkpoint meta and record its new digest."""
    import torch

    from deepscope.core.checkpoint import update_checkpoint_meta
    from deepscope.core.digest import sha256
    from deepscope.registry import SUMS_NAME, weights_dir

    record = torch.load(path, map_location="cpu", weights_only=True)
    shipped = weights_dir() / f"{name}.pt"
    update_checkpoint_meta(shipped, bar_length=record)
    sums_path = weights_dir() / SUMS_NAME
    sums = json.loads(sums_path.read_text())
    sums[shipped.name] = sha256(shipped)
    sums_path.write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
    print(f"{shipped}: meta['bar_length'] set; now run scripts/export_onnx.py {name}")


def measure(out: Path) -> dict:
    """The shipped length network and position angles on the test split's Hoyle galaxies."""
    import pandas as pd
    from scipy import ndimage

    from deepscope.galaxy.apparent_size import bright_fraction
    from deepscope.galaxy.bar_measure import bar_position_angles
    from deepscope.galaxy.predictor import GalaxyPredictor

    out.mkdir(parents=True, exist_ok=True)
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    model = predictor.bar_length
    train_pixels, train_table = hoyle_cutouts("train")
    pixels, table = hoyle_cutouts("test")
    truth, spread = table["length_avg"].to_numpy(), table["length_stdev"].to_numpy()
    lengths = model.lengths(pixels)
    barred = predictor.decide(predictor.probabilities(pixels)) == 1
    train_lengths = train_table["length_avg"].to_numpy()
    size, train_size = np.sqrt(bright_fraction(pixels)), np.sqrt(bright_fraction(train_pixels))
    slope, intercept = np.polyfit(train_size, train_lengths, 1)
    error = np.abs(lengths - truth)
    figures = {
        "n": int(len(truth)), "n_called_barred": int(barred.sum()),
        "median_abs_error": float(np.median(error)), "mean_abs_error": float(error.mean()),
        "median_abs_error_called_barred": float(np.median(error[barred])),
        "volunteers_median_length_stdev": float(np.median(spread)),
        "within_volunteers_stdev": float(np.mean(error <= spread)),
        "median_relative_error": float(np.median(error / truth)),
        "baseline_median_length": float(np.median(np.abs(truth - np.median(train_lengths)))),
        "baseline_linear_in_size": float(np.median(np.abs(truth - (slope * size + intercept)))),
        "pearson_r": float(np.corrcoef(lengths, truth)[0, 1]),
    }
    # Position angle: no drawn angles exist, so turn each cutout by known angles and see the angle follow.
    length_px = lengths / model.arcsec_per_pixel
    angles = bar_position_angles(pixels, length_px)
    shifts = {}
    for turn in (15, 30, 45, 60, 90):
        turned = np.stack([ndimage.rotate(p.astype(np.float32), turn, axes=(2, 1), reshape=False, order=1)
                           for p in pixels])
        moved = (bar_position_angles(turned, length_px) - angles - turn + 90) % 180 - 90
        shifts[turn] = {"median_abs_deg": float(np.median(np.abs(moved))),
                        "p90_abs_deg": float(np.percentile(np.abs(moved), 90)),
                        "within_10_deg": float(np.mean(np.abs(moved) <= 10))}
    figures["pa_rotation_consistency"] = shifts
    figures["pa_synthetic"] = synthetic_position_angle_errors()
    pd.DataFrame({"file": table["file"], "length_avg": truth, "length_stdev": spread, "bar_length_arcsec": lengths,
                  "bar_pa_deg": angles, "called_barred": barred}).to_csv(out / "test_lengths.csv", index=False)
    _montage(pixels, lengths / model.arcsec_per_pixel, angles, truth / model.arcsec_per_pixel, out / "montage.png")
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


def synthetic_position_angle_errors(n: int = 200, seed: int = 1) -> dict:
    """Position-angle error on rendered bulge + inclined disc + bar galaxies of known angles (true lengths given)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "galaxy"))
    from synthetic_galaxies import render_galaxy

    from deepscope.galaxy.bar_measure import bar_position_angles

    rng = np.random.default_rng(seed)
    errors = []
    for k in range(n):
        bar_angle, disc_angle = rng.uniform(0, 180, 2)
        axis_ratio, length = rng.uniform(0.5, 1.0), rng.uniform(16, 40)
        galaxy = render_galaxy(size=64, r_dev=5.0, barred=True, bar_length=length, bar_angle=bar_angle,
                               position_angle=disc_angle, axis_ratio=axis_ratio, seed=k)
        measured = bar_position_angles(galaxy.rgb().transpose(2, 0, 1)[None], np.array([length]))[0]
        # render_galaxy's angles turn from +x towards +row (down the image); ours from up, counter-clockwise.
        errors.append((measured - (-bar_angle - 90) % 180 + 90) % 180 - 90)
    errors = np.abs(errors)
    return {"n": n, "median_abs_deg": float(np.median(errors)), "p90_abs_deg": float(np.percentile(errors, 90))}


def _montage(pixels, length_px, angles, truth_px, path, count=24):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepscope.galaxy.explain import draw_bar

    fig, axes = plt.subplots(4, count // 4, figsize=(2 * count // 4, 8.4), dpi=80)
    for ax, i in zip(axes.ravel(), range(count)):
        ax.imshow(pixels[i].transpose(1, 2, 0))
        draw_bar(ax, length_px[i], angles[i], pixels.shape[-1])
        ax.set_title(f"{length_px[i] * 0.3:.1f}\" / drawn {truth_px[i] * 0.3:.1f}\"", fontsize=7)
        ax.axis("off")
    fig.suptitle("test split: measured bar (line) and its length, against the volunteers' mean length")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train on the train split's Hoyle galaxies, print validation figures")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--arch", default="barnet_fast")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--views", type=int, default=8, choices=(1, 2, 4, 8))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--average", type=int, default=0, metavar="K", help="average the weights of the last K epochs")
    p.add_argument("--input-size", type=int, default=64, help="side the network reads (64 / k: k x k bins)")
    p = sub.add_parser("attach", help="put a trained length network into a shipped bar model's meta")
    p.add_argument("path", type=Path)
    p.add_argument("--name", default="galaxy_bars", help="the shipped bar model (default galaxy_bars)")
    p = sub.add_parser("measure", help="the test split's figures, a montage and the per-galaxy table")
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    if args.command == "train":
        train(args.out, args.arch, args.width, args.epochs, args.lr, args.views, args.seed, args.average,
              args.input_size)
    elif args.command == "attach":
        attach(args.path, args.name)
    else:
        measure(args.out)


if __name__ == "__main__":
    main()
