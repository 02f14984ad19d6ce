"""Held-out stars as surveys deliver them: noisy, blurred, tilted, partial and moving, typed through ``spectra predict``'s path.

Each held-out library is predicted by a network that never saw it (``--loo``
DIR as in ``benchmarks/spectra_rv.py``, whose perturbations this uses:
``snr<S>``, ``res<R>``, ``tilt<a>``, ``cut<A>-<B>``, ``rv<V>``, ``vacuum`` and
their ``_`` combinations). Prints, per library and condition:

- ``typed``: the share given a type (a spectrum missing most MK features gets none);
- main-class accuracy, subclass MAE and luminosity-class accuracy of the typed rows;
- their mean ``confidence``, ``gap`` = mean confidence minus accuracy, and the
  expected calibration error (10 bins);
- ``flagged``: the share with any flag, and ``types_changed`` against the clean copy.

``--coverage`` adds main-class accuracy and confidence binned by the blue
classification window's covered share (every condition pooled); ``--snr-curve``
accuracy and ECE at S/N 3 ... 100. ``--out`` keeps every row.

usage:
  python benchmarks/spectra_survey.py --loo DIR [--libraries miles] [--conditions clean snr10 cut4500-9000 ...]
      [--coverage] [--snr-curve] [--out rows.parquet] [--threads 1]
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spectra_rv import (  # noqa: E402
    LIBRARIES, checkpoint, compare_to_clean, perturbed, read_library, summary, truth,
)
from deepscope.spectra.calibration import main_class_confidence  # noqa: E402
from deepscope.spectra.decoding import outputs_to_rows  # noqa: E402
from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS  # noqa: E402

CONDITIONS = ("clean", "snr5", "snr10", "snr20", "res500", "res1500", "tilt0.3", "cut4500-9000", "cut4000-9000",
              "cut4200-9000", "cut4350-9000", "cut3600-4620", "rv300", "vacuum")
SNR_CURVE = (3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100)
COVERAGE_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.999, 1.01)


def predict_condition(predictor, library, spectra, types, condition, number):
    """One row per spectrum that could be gridded, with its blue coverage and S/N as measured."""
    rng = np.random.default_rng([LIBRARIES.index(library) if library in LIBRARIES else 9, 100 + number])
    copies = [perturbed(s, condition, rng) for s in spectra]
    good, items, _ = predictor.prepare_many([c for c, _ in copies], [str(i) for i in range(len(copies))])
    if not items:
        return []
    features = predictor.features(items)
    rows = predictor.assess_features(features)
    # What the network says whether or not a type is given: the coverage curve is drawn from it.
    outputs = predictor.outputs(features.x)
    network = [row["main_class"] for row in outputs_to_rows(outputs)]
    sure = main_class_confidence(outputs[:, :N_T_BINS], [MAIN_CLASSES.index(m) for m in network],
                                 predictor.meta.get("temperature", 1.0))
    return [{"library": library, "condition": condition, "star": i, "true_sptype": types[i],
             "injected_rv": copies[i][1], "blue_cover": float(cover), "snr": float(snr), **row,
             "network_main": main, "network_confidence": float(p)}
            for i, row, cover, snr, main, p in zip(good, rows, features.blue_cover, features.snr, network, sure)]


def ece(confidence, correct, n_bins=10):
    from deepscope.spectra.calibration import expected_calibration_error

    return expected_calibration_error(np.asarray(confidence, float), np.asarray(correct, bool), n_bins) \
        if len(confidence) else np.nan


def figures(part):
    """Typed share and the typed rows' figures for one set of predictions."""
    typed = part[part["sptype"].fillna("") != ""]
    out = {"n": len(part), "typed": len(typed) / max(len(part), 1)}
    if len(typed):
        correct = typed["main_class"] == typed["true_main"]
        out.update({k: v for k, v in summary(typed).items() if k in ("main_acc", "sub_mae", "lum_acc")})
        out.update(confidence=typed["confidence"].mean(), gap=typed["confidence"].mean() - correct.mean(),
                   ece=ece(typed["confidence"], correct))
    out.update(flagged=(part["flag"].fillna("") != "").mean(), types_changed=part["changed"].mean())
    return out


def coverage_table(table):
    """The network's main-class accuracy and mean confidence (typed or not) in bins of the blue window's covered share."""
    rows = table.assign(correct=table["network_main"] == table["true_main"],
                        bin=pd.cut(table["blue_cover"], COVERAGE_BINS, right=False))
    out = rows.groupby("bin", observed=True).agg(n=("correct", "size"), main_acc=("correct", "mean"),
                                                  confidence=("network_confidence", "mean"))
    return out.assign(gap=out["confidence"] - out["main_acc"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loo", type=Path, required=True)
    parser.add_argument("--libraries", nargs="+", default=["miles"])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    parser.add_argument("--coverage", action="store_true", help="accuracy binned by blue-window coverage")
    parser.add_argument("--snr-curve", action="store_true", help="accuracy and ECE against S/N")
    parser.add_argument("--out", type=Path, help="Parquet file for every row")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from deepscope.spectra.predictor import SpectraPredictor

    torch.set_num_threads(args.threads)
    conditions = list(dict.fromkeys(["clean", *args.conditions, *(f"snr{s}" for s in SNR_CURVE
                                                                   if args.snr_curve)]))
    tables = []
    for library in args.libraries:
        predictor = SpectraPredictor.from_checkpoint(checkpoint(args.loo, library))
        spectra, types = read_library(library)
        rows = [row for number, condition in enumerate(conditions)
                for row in predict_condition(predictor, library, spectra, types, condition, number)]
        tables.append(compare_to_clean(truth(pd.DataFrame(rows))))
    table = pd.concat(tables, ignore_index=True)
    if args.out:
        table.to_parquet(args.out)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"held out: {', '.join(args.libraries)}; runs under {args.loo}; load average {os.getloadavg()[0]:.1f}")
    for library, part in [*table.groupby("library", sort=False), *([("pooled", table)] if len(tables) > 1 else [])]:
        print(f"\n{library}:\n" + pd.DataFrame({c: figures(p) for c, p in part.groupby("condition", sort=False)})
              .T.round(3).to_string())
    if args.coverage:
        print("\nby blue-window coverage (every condition):\n" + coverage_table(table).round(3).to_string())


if __name__ == "__main__":
    main()
