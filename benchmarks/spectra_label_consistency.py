"""How reproducible are a library's own MK types? An in-library ceiling.

Leave-one-library-out scores mix two things: how well a method reads a
spectrum, and how well two libraries' type systems agree. This benchmark
measures the second for one labelled library (MILES by default) with no
other library involved, by 5-fold cross-validation inside it:

1. the default 1-D CNN trained on four folds of the library, scored on the fifth;
2. chi-square template matching against the same four folds;
3. no spectrum at all: the type predicted from the library's own published
   physical parameters (Teff, log g, [Fe/H]; MILES v9.1) by k nearest
   neighbours. If a star's physics predicts its catalogue type only this
   well, the catalogue types themselves scatter about that much.

Every figure is out-of-fold: no star is scored by anything that saw its type.

usage:
  python benchmarks/spectra_label_consistency.py [--labels LABELS_CSV] [--folds 5] [--out DIR]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra" / "miles" / "labels.csv"


def fold_indices(n, folds, seed=0):
    """Shuffled fold number for each of ``n`` items."""
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


def out_of_fold(fold, predict_fold):
    """Prediction rows, each from ``predict_fold(train, test)`` for its own fold.

    ``predict_fold`` gets the index arrays of the other folds and of this
    one, and returns one prediction row per ``test`` index.
    """
    rows = [None] * len(fold)
    for k in np.unique(fold):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        for i, row in zip(test, predict_fold(train, test)):
            rows[i] = row
    return pd.DataFrame(rows)


def out_of_fold_network(x, sptypes, fold, run_root):
    """CNN predictions, each spectrum scored by the model trained without its fold."""
    from deepscope.spectra.predictor import SpectraPredictor
    from deepscope.spectra.train import DEFAULT_CONFIG, train_classifier

    def predict_fold(train, test):
        run_dir = Path(run_root) / f"fold{fold[test[0]]}"
        train_classifier(x[train], [sptypes[i] for i in train], run_dir, DEFAULT_CONFIG, progress=False)
        return SpectraPredictor.from_checkpoint(run_dir).classify(x[test])

    return out_of_fold(fold, predict_fold)


def out_of_fold_templates(x, sptypes, fold):
    """Template-matching predictions against the other folds' spectra."""
    from deepscope.spectra.templates import TemplateMatcher

    def predict_fold(train, test):
        return TemplateMatcher(x[train, 0], x[train, 1] > 0, [sptypes[i] for i in train]).predict(x[test])

    return out_of_fold(fold, predict_fold)


def out_of_fold_parameters(table, fold, neighbours=7):
    """Types predicted from (log Teff, log g, [Fe/H]) by distance-weighted k-NN.

    Only the temperature index is predicted (the main class follows from
    it); rows without a parameter or a subclass are left as NaN.
    """
    from sklearn.neighbors import KNeighborsRegressor

    from deepscope.spectra.mktype import index_to_parts, parse_mk

    features = np.column_stack([
        # 0.01 dex in Teff weighs like 0.2 dex in log g: types follow Teff first.
        20 * np.log10(pd.to_numeric(table["teff"], errors="coerce")),
        pd.to_numeric(table["logg"], errors="coerce"),
        pd.to_numeric(table["feh"], errors="coerce").fillna(0.0),
    ])
    mk = [parse_mk(s) if isinstance(s, str) else None for s in table["sptype"]]
    t = np.array([m.temperature_index if m is not None and m.subclass is not None else np.nan for m in mk])
    usable = np.isfinite(features[:, :2]).all(1) & np.isfinite(t)
    predicted = np.full(len(table), np.nan)
    for k in np.unique(fold):
        train = usable & (fold != k)
        test = usable & (fold == k)
        model = KNeighborsRegressor(neighbours, weights="distance").fit(features[train], t[train])
        predicted[test] = model.predict(features[test])
    main = [index_to_parts(p)[0] if np.isfinite(p) else None for p in predicted]
    return predicted, main, t, mk


def parameter_scores(predicted, main, t, mk):
    """Main-class accuracy, subclass MAE and within-one fraction of the k-NN types."""
    ok = np.isfinite(predicted)
    err = np.abs(np.round(2 * predicted[ok]) / 2 - t[ok])
    truth = [m.main_class for m, keep in zip(mk, ok) if keep]
    guess = [g for g, keep in zip(main, ok) if keep]
    return {"n": int(ok.sum()), "main_class_accuracy": float(np.mean([a == b for a, b in zip(truth, guess)])),
            "subclass_mae": float(err.mean()), "within_one_subclass": float((err <= 1).mean())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default=str(DEFAULT_LABELS), help="labels.csv of one library")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", help="directory for the fold models (default: a temporary one)")
    args = parser.parse_args()

    from deepscope.spectra.io.files import spectra_manifest
    from deepscope.spectra.evaluate import score_predictions
    from deepscope.spectra.preparation.labelled import load_prepared

    manifest = spectra_manifest([args.labels])
    x, good, failures = load_prepared(list(manifest["path"]))
    manifest = manifest.iloc[good].reset_index(drop=True)
    sptypes = list(manifest["sptype"])
    fold = fold_indices(len(x), args.folds)
    print(f"{args.labels}: {len(x)} spectra read ({len(failures)} unreadable), {args.folds}-fold, seed 0")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        network = out_of_fold_network(x, sptypes, fold, args.out or tmp)
    for method, predicted in [("spectra_cnn (in-library)", network),
                              ("template matching (in-library)", out_of_fold_templates(x, sptypes, fold))]:
        metrics, _ = score_predictions(sptypes, predicted)
        results.append({"method": method, **metrics})
    if {"teff", "logg"} <= set(manifest.columns):
        results.append({"method": "k-NN on the catalogue's Teff, log g, [Fe/H]",
                        **parameter_scores(*out_of_fold_parameters(manifest, fold))})
    table = pd.DataFrame(results)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
