"""Galaxy bar decisions under rotation, mirroring and zoom, with and without canonical views; scale_flag rates.

On a labels table's split (default: the test split of ``sdss_gz2_bars``, the shipped ``galaxy_bars``
model's held-out split), with the engine ``galaxy predict`` runs by default, for the model as given
and with its canonical orientation forced off and on (:mod:`deepscope.galaxy.orientation`):
ROC-AUC, size-matched accuracy, Hoyle-drawn bars found (as ``galaxy evaluate --hoyle`` counts them),
the share of decisions changed by turning each cutout 90/180/270 degrees and by its mirror images
(and, without canonical views, the spread of those figures over the eight fixed views: their noise),
and by zooming it 0.67x and 1.5x (or the --zoom factors; the field extended into faded sky, as a wider cutout of a
smaller galaxy shows it), with Hoyle recall and size-matched unbarred specificity at each zoom; and
how often ``scale_flag`` (the model's ``meta["size_range"]``) fires as-is and at each zoom. A model with a
``meta["canonical_scale"]`` (``galaxy train --canonical-scale``) rescales every cutout, as cut and zoomed, itself;
``--canonical-scale`` gives one that has none a canonical scale at inference only (the train split's median
bright fraction, the threshold re-tuned on the train split).

``--cost`` instead times ``GalaxyPredictor.rows`` (what ``galaxy predict`` runs in its main process on
decoded cutouts: canonical scale and views, the network, scale_flag) on the decoded split, in CPU seconds on
one thread, with the model's metadata as given and with ``orientation``, ``size_range`` and ``canonical_scale`` ignored,
interleaved over rounds so that a busy machine slows both alike.

``--size-range`` instead measures the apparent sizes of the train split's cutouts
(:func:`deepscope.galaxy.apparent_size.bright_fraction`): the range to record in the model's meta.

usage:
  python benchmarks/galaxy_invariance.py [--model NAME_OR_RUN] [--zoom 0.67 0.95 1.05 1.5] \\
      [--canonical-scale 0.6 1.6]
  python benchmarks/galaxy_invariance.py --size-range
  python benchmarks/galaxy_invariance.py --cost
"""

import argparse
from pathlib import Path

import numpy as np

from deepscope.galaxy.zoom import zoom_cutouts

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "galaxy"
LABELS = DATA / "sdss_gz2_bars" / "labels.csv"
HOYLE = DATA / "external_bar_labels" / "hoyle2011_bar_lengths.csv"
ZOOMS = (0.67, 1.5)


def load_split(split):
    """(rows, float32 images, bright-pixel sizes) of one split of the bar labels table."""
    from deepscope.core.manifest import manifest_from_labels
    from deepscope.galaxy.dataset import load_cutouts

    rows = manifest_from_labels(LABELS, "file", required=["barred"])
    rows = rows[rows["split"] == split].reset_index(drop=True)
    images, sizes, failures = load_cutouts(list(rows["path"]), 64, progress=False)
    assert not failures, failures
    return rows, images, sizes


def measure_size_range():
    from deepscope.galaxy.apparent_size import bright_fraction, trained_size_range

    _, images, _ = load_split("train")
    fractions = bright_fraction(images)
    print(f"train split: {len(fractions)} cutouts; bright fraction percentiles:")
    for q in (0.5, 1, 5, 50, 95, 99, 99.5):
        print(f"  {q:>4}%: {np.percentile(fractions, q):.4f}")
    print(f"meta size_range: {trained_size_range(fractions)}")


def measure(split, model, engine, zooms=ZOOMS, scale_range=None):
    from deepscope.core.metrics import binary_summary
    from deepscope.galaxy.apparent_size import bright_fraction, size_matched_indices
    from deepscope.galaxy.bar_evidence import external_evidence
    from deepscope.galaxy.crossmatch import sample_positions
    from deepscope.galaxy.orientation import dihedral_view
    from deepscope.galaxy.predictor import GalaxyPredictor

    predictor = GalaxyPredictor.from_checkpoint(model, engine=engine)
    rows, images, sizes = load_split(split)
    y = rows["barred"].to_numpy(int)
    positions = sample_positions(rows, str(LABELS))
    matched = size_matched_indices(sizes, y, seed=0)
    zoomed = {z: zoom_cutouts(images, z) for z in zooms}

    def p_bar(batch):
        return np.concatenate([predictor.probabilities(batch[i:i + 512])[:, 1] for i in range(0, len(batch), 512)])

    if scale_range is not None:
        from deepscope.galaxy.train import balanced_threshold

        # the target and the threshold come from the train split, never from the split measured
        train_rows, train_images, _ = load_split("train")
        target = float(np.median(bright_fraction(train_images)))
        predictor.canonical_scale = {"bright_fraction": target, "zoom_range": list(scale_range)}
        predictor.threshold = balanced_threshold(train_rows["barred"].to_numpy(int), p_bar(train_images))
        print(f"canonical scale at inference only: bright fraction {target:.4f} (the train split's median), zooms "
              f"within {scale_range}; threshold {predictor.threshold:.3f} (balanced accuracy on the train split)")
    print(f"{split} split: {len(y)} galaxies; model {model}, engine {predictor.engine}, "
          f"meta orientation {'canonical' if predictor.canonical else 'as-is'}, "
          f"size_range {predictor.size_range}, canonical_scale {predictor.canonical_scale}")

    def hoyle(decision, p):
        h = external_evidence(*positions, y, decision.astype(int), p, sizes, hoyle=HOYLE, seed=0)["hoyle"]
        return h["confirmed_recall"], h["control_specificity"]

    changed = {}  # zoom -> decisions changed by it, with the model's own orientation setting
    own = predictor.canonical
    for canonical in (False, True):
        predictor.canonical = canonical
        p = p_bar(images)
        d = p >= predictor.threshold
        recall, specificity = hoyle(d, p)
        print(f"\ncanonical views {'on' if canonical else 'off'}:")
        print(f"  ROC-AUC {binary_summary(y, p, predictor.threshold)['roc_auc']:.4f}, accuracy {np.mean(d == y):.4f}, "
              f"size-matched accuracy {np.mean(d[matched] == y[matched]):.4f} (n {len(matched)}), "
              f"Hoyle recall {recall:.4f}, size-matched unbarred specificity {specificity:.4f}")
        names = {1: "rot90", 2: "rot180", 3: "rot270", 4: "mirror", 5: "mirror+rot90", 6: "mirror+rot180",
                 7: "mirror+rot270"}
        flips = {name: np.mean((p_bar(np.ascontiguousarray(dihedral_view(images, v))) >= predictor.threshold) != d)
                 for v, name in names.items()}
        print("  decisions changed: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in flips.items()))
        if not canonical:
            # The noise the canonical view's figures should be judged against: the same figures for each
            # fixed view of every cutout (the canonical view is one of them, chosen per cutout).
            spread = []
            for v in range(8):
                pv = p_bar(np.ascontiguousarray(dihedral_view(images, v)))
                dv = pv >= predictor.threshold
                spread.append((binary_summary(y, pv, predictor.threshold)["roc_auc"],
                               np.mean(dv[matched] == y[matched]), hoyle(dv, pv)[0]))
            low, high = np.min(spread, axis=0), np.max(spread, axis=0)
            print(f"  each fixed view of every cutout (8 views), min-max: ROC-AUC {low[0]:.4f}-{high[0]:.4f}, "
                  f"size-matched accuracy {low[1]:.4f}-{high[1]:.4f}, Hoyle recall {low[2]:.4f}-{high[2]:.4f}")
        for z, x in zoomed.items():
            pz = p_bar(x)
            dz = pz >= predictor.threshold
            recall, specificity = hoyle(dz, pz)
            if canonical == own:
                changed[z] = dz != d
            print(f"  zoom {z}x: decisions changed {100 * np.mean(dz != d):.2f}%, Hoyle recall {recall:.4f}, "
                  f"size-matched unbarred specificity {specificity:.4f}, mean p_bar change {np.mean(pz - p):+.3f}")
    if predictor.size_range is not None:
        print("\nscale_flag (small / large):")
        for name, x in {"as-is": images, **{f"zoom {z}x": v for z, v in zoomed.items()}}.items():
            # as galaxy predict sets it (for a model with a canonical scale, the size after the zoom)
            flags = np.array([row["scale_flag"] for i in range(0, len(x), 512)
                              for row in predictor.rows(list(x[i:i + 512]))])
            line = (f"  {name}: {100 * np.mean(flags != ''):.1f}% flagged ({100 * np.mean(flags == 'small'):.1f}% "
                    f"small, {100 * np.mean(flags == 'large'):.1f}% large)")
            z = float(name.split()[-1][:-1]) if name != "as-is" else None
            if z in changed and (flags != "").any():
                flagged = flags != ""
                line += (f"; decisions changed by the zoom: {100 * changed[z][flagged].mean():.1f}% of flagged, "
                         f"{100 * changed[z][~flagged].mean():.1f}% of unflagged")
            print(line)


def measure_cost(split, model, engine, rounds=7):
    import time

    from deepscope.galaxy.predictor import GalaxyPredictor

    _, images, _ = load_split(split)
    pixels = list(np.rint(images * 255).astype(np.uint8))  # as the reader processes hand them over
    shipped = GalaxyPredictor.from_checkpoint(model, engine=engine)
    plain = GalaxyPredictor.from_checkpoint(model, engine=engine)
    plain.canonical, plain.size_range, plain.canonical_scale = False, None, None
    times = {"as shipped": [], "orientation, size_range and canonical_scale ignored": []}
    for _ in range(rounds):
        for name, predictor in zip(times, (shipped, plain)):
            start = time.process_time()
            for i in range(0, len(pixels), 1024):
                predictor.rows(pixels[i:i + 1024])
            times[name].append(time.process_time() - start)
    for name, spent in times.items():
        per = 1e6 * np.median(spent) / len(pixels)
        print(f"rows(), {name}: {per:.1f} us CPU per cutout (median of {rounds}; engine {shipped.engine}, 1 thread)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="test", help="split of the labels table to measure")
    parser.add_argument("--model", default="galaxy_bars")
    parser.add_argument("--zoom", nargs="+", type=float, default=list(ZOOMS), help="zoom factors to measure")
    parser.add_argument("--engine", default="auto", help="as galaxy predict --engine")
    parser.add_argument("--canonical-scale", nargs=2, type=float, metavar=("SMALLEST", "LARGEST"),
                        help="rescale every cutout (as cut and zoomed) to the train split's median bright fraction, "
                             "zooms clipped to this range, and re-tune the threshold on the train split")
    parser.add_argument("--size-range", action="store_true", help="measure the train split's apparent sizes")
    parser.add_argument("--cost", action="store_true", help="time GalaxyPredictor.rows with and without the meta")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    if args.size_range:
        measure_size_range()
    elif args.cost:
        measure_cost(args.split, args.model, args.engine)
    else:
        measure(args.split, args.model, args.engine, tuple(args.zoom), args.canonical_scale)


if __name__ == "__main__":
    main()
