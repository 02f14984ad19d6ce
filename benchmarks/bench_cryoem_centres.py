"""How the shipped picker's centre and threshold settings were chosen: on its own training micrographs.

Runs the shipped cryo-EM picker over the micrographs it trained and
validated on (``train_micrographs`` + ``val_micrographs`` of its checkpoint:
never the held-out ones) and prints, against the CryoPPP labels:

1. centres: median error, median offset (dx, dy) and scatter about that
   offset of the map centroid (with and without the measured offset), of
   picks re-centred on the image (:mod:`deepscope.cryoem.recentre`, from the
   picks and from the labels themselves);
2. F1 pooled over those micrographs and on the validation micrograph alone,
   over thresholds, NMS distances and edge margins;
3. the re-centred correlation of true and false picks, and F1 when it is
   used as a second score.

    python benchmarks/bench_cryoem_centres.py
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cryoem" / "empiar10017"
DIAMETER = 108.0


def offsets(picks: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """``(n, 2)`` pick minus label of every matched pick (within half a diameter)."""
    from deepscope.cryoem.evaluate import match_picks

    pairs = match_picks(picks, truth, DIAMETER / 2)["pairs"]
    return picks[["x", "y"]].to_numpy()[pairs[:, 0]] - truth[["x", "y"]].to_numpy()[pairs[:, 1]]


def centre_row(name: str, found: list[np.ndarray]) -> dict:
    found = np.concatenate(found)
    median = np.median(found, axis=0)
    return {"centres": name, "median_error_px": np.median(np.hypot(*found.T)), "dx": median[0], "dy": median[1],
            "scatter_px": np.median(np.hypot(*(found - median).T)), "n": len(found)}


def f1(counts) -> float:
    tp, fp, fn = np.sum(counts, axis=0)
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main():
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.cryoem.evaluate import match_picks
    from deepscope.cryoem.picking import find_picks, refine_centres
    from deepscope.cryoem.pick_sets import load_pick_set
    from deepscope.cryoem.predictor import REFINE_FRACTION, Picker
    from deepscope.cryoem.preprocess import load_for_picking, to_micrograph_frame
    from deepscope.cryoem.recentre import load_for_recentring, recentre_picks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    picker = Picker.from_checkpoint(args.model)
    meta = load_checkpoint(picker.checkpoint)["meta"]
    stems, validation = meta["train_micrographs"] + meta["val_micrographs"], meta["val_micrographs"]
    truth = load_pick_set(DATA / "particles", None, "truth")
    wd = picker.working_diameter
    maps, halves, scales, widths = {}, {}, {}, {}
    for stem in stems:
        path = DATA / "micrographs" / f"{stem}.jpg"
        image, scales[stem], (_, widths[stem]) = load_for_picking(path, DIAMETER, wd)
        maps[stem] = picker.maps(image)
        halves[stem] = load_for_recentring(path, DIAMETER)

    def map_picks(stem, threshold, nms, edge):
        particle, regions = maps[stem]
        picks = find_picks(particle, regions, wd, threshold, nms, edge)
        return refine_centres(particle, picks, REFINE_FRACTION * wd)

    def on_half(picks, stem):
        # pixels of the half-size image per micrograph pixel
        half = halves[stem].shape[1] / widths[stem]
        moved = recentre_picks(halves[stem], picks.assign(x=(picks["x"] + 0.5) * half - 0.5,
                                                          y=(picks["y"] + 0.5) * half - 0.5), DIAMETER * half)
        return moved.assign(x=(moved["x"] + 0.5) / half - 0.5, y=(moved["y"] + 0.5) / half - 0.5)

    found = {k: [] for k in ("map", "map - offset", "recentred", "labels recentred")}
    kept = {}
    for stem in stems:
        picks = map_picks(stem, picker.threshold, picker.nms_fraction, picker.edge_fraction)
        plain = to_micrograph_frame(picks, scales[stem])
        corrected = to_micrograph_frame(picks.assign(x=picks["x"] - picker.centre_offset[0],
                                                     y=picks["y"] - picker.centre_offset[1]), scales[stem])
        kept[stem] = on_half(plain, stem)
        found["map"].append(offsets(plain, truth[stem]))
        found["map - offset"].append(offsets(corrected, truth[stem]))
        found["recentred"].append(offsets(kept[stem], truth[stem]))
        found["labels recentred"].append(offsets(on_half(truth[stem], stem), truth[stem]))
    rows = [centre_row(name, values) for name, values in found.items()]
    print(f"centres on {len(stems)} training + validation micrographs, threshold {picker.threshold:g}")
    print(pd.DataFrame(rows).round(2).to_string(index=False), flush=True)

    grid = []
    for nms in (0.4, 0.5, 0.6, 0.7):
        for edge in (1.0, 1.2, 1.4):
            candidates = {s: to_micrograph_frame(map_picks(s, 0.2, nms, edge), scales[s]) for s in stems}
            for threshold in np.round(np.arange(0.25, 0.66, 0.05), 2):
                counts = {}
                for s in stems:
                    result = match_picks(candidates[s][candidates[s]["score"] >= threshold], truth[s], DIAMETER / 2)
                    counts[s] = (result["tp"], result["fp"], result["fn"])
                grid.append({"threshold": threshold, "nms": nms, "edge": edge, "f1_pooled": f1(list(counts.values())),
                             "f1_validation": f1([counts[s] for s in validation])})
    grid = pd.DataFrame(grid).sort_values("f1_pooled", ascending=False)
    print("\nF1 by threshold, NMS (d) and edge margin (d), best pooled first")
    print(grid.head(12).round(4).to_string(index=False))
    stored = grid[(grid["nms"] == picker.nms_fraction) & (grid["edge"] == picker.edge_fraction)]
    print(f"\nat NMS {picker.nms_fraction:g} d, edge {picker.edge_fraction:g} d")
    print(stored.sort_values("threshold").round(4).to_string(index=False), flush=True)

    true_cc, false_cc, counts = [], [], {c: [] for c in (0.0, 0.3, 0.35, 0.4)}
    for stem in stems:
        picks = kept[stem].reset_index(drop=True)
        pairs = match_picks(picks, truth[stem], DIAMETER / 2)["pairs"]
        matched = np.zeros(len(picks), bool)
        matched[pairs[:, 0]] = True
        true_cc.append(picks["correlation"][matched])
        false_cc.append(picks["correlation"][~matched])
        for cut in counts:
            result = match_picks(picks[picks["correlation"] >= cut], truth[stem], DIAMETER / 2)
            counts[cut].append((result["tp"], result["fp"], result["fn"]))
    quartiles = [np.percentile(np.concatenate(v), [25, 50, 75]).round(3) for v in (true_cc, false_cc)]
    print(f"\nre-centred correlation quartiles: true picks {quartiles[0]}, false picks {quartiles[1]}")
    print("F1 with a correlation cut: " + ", ".join(f"{c:g}: {f1(v):.4f}" for c, v in counts.items()))


if __name__ == "__main__":
    main()
