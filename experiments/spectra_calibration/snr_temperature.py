"""Which temperature calibrates held-out stars across noise levels: each fold's own, one fitted, or one per S/N?

For each library held out (``--loo DIR`` as in ``benchmarks/spectra_rv.py``: a
run per library trained without it), its spectra clean and with Gaussian noise
at S/N 5 ... 30 per input pixel are typed through ``spectra predict``'s path;
the typed rows keep the temperature head's log-probabilities. Three ways to
turn them into ``confidence`` are scored on each library with temperatures
fitted (Brier score) on the *other* libraries' rows only (cross-fitted):

- ``fold``: the run's own temperature (fitted on its validation spectra at train time);
- ``one``: one temperature fitted on the other libraries' clean and noisy rows;
- ``snr``: ``T = a (1 + b / snr)``, ``snr`` the S/N as read (``low_snr``'s DER_SNR);
- ``snr2``: ``T = a (1 + b / snr**2)``: the same, with the noise's effect held to the lowest S/N.
- ``fold_snr2``: ``T = T_fold (1 + b / snr**2)``: the run's own temperature for clean spectra, only the
  S/N term fitted on the other libraries (what a shipped model, fitted on its own validation split, would add).
- ``clean``: one temperature fitted on the other libraries' clean rows only (how ``spectra_mk``'s was fitted);
- ``clean_snr2``: ``T = T_clean (1 + b / snr**2)``: that temperature, and the S/N term fitted on the other
  libraries' rows with it held.

Prints the expected calibration error (10 bins) per library and condition, then
pooled over the libraries. Results: docs/spectra.md, "Confidence across noise levels".

  python experiments/spectra_calibration/snr_temperature.py --loo DIR [--libraries mkclass miles pickles kesseli2017]
      [--cache FILE.pkl]   # the typed rows: written once, read on later runs
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from spectra_rv import LIBRARIES, checkpoint, perturbed, read_library  # noqa: E402

CONDITIONS = ("clean", "snr5", "snr8", "snr10", "snr15", "snr20", "snr30")
FORMS = ("fold", "one", "snr", "snr2", "fold_snr2", "clean", "clean_snr2")


def typed_rows(loo: Path, library: str) -> pd.DataFrame:
    """Every typed row of one held-out library in every condition, with its log-probabilities."""
    from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS, parse_mk
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint(checkpoint(loo, library))
    spectra, types = read_library(library)
    rows = []
    for number, condition in enumerate(CONDITIONS):
        # the noise draws of benchmarks/spectra_survey.py
        rng = np.random.default_rng([LIBRARIES.index(library) if library in LIBRARIES else 9, 100 + number])
        copies = [perturbed(s, condition, rng) for s in spectra]
        good, items, _ = predictor.prepare_many([c for c, _ in copies], [str(i) for i in range(len(copies))])
        features = predictor.features(items)
        outputs = predictor.outputs(features.x)
        for i, row, snr, out in zip(good, predictor.assess_features(features), features.snr, outputs):
            if row.get("sptype"):
                rows.append({"library": library, "condition": condition, "snr": float(snr),
                             "fold_temperature": predictor.meta.get("temperature", 1.0),
                             "predicted": MAIN_CLASSES.index(row["main_class"]),
                             "true": MAIN_CLASSES.index(parse_mk(types[i]).main_class),
                             "log_p": out[:N_T_BINS].astype(np.float64)})
    return pd.DataFrame(rows)


class Calibrations:
    """The three temperatures' confidences of a table of typed rows."""

    def __init__(self, table: pd.DataFrame):
        self.log_p = np.stack(table["log_p"].to_numpy())
        self.predicted, self.true = table["predicted"].to_numpy(), table["true"].to_numpy()
        self.correct = self.predicted == self.true
        # no S/N readable (a noiseless model spectrum) counts as very high
        self.snr = np.clip(np.nan_to_num(table["snr"].to_numpy(), nan=1000.0), 1.0, 1000.0)
        self.fold_temperature = table["fold_temperature"].to_numpy()
        self.clean = table["condition"].to_numpy() == "clean"

    def temperatures(self, params, form, rows):
        """Each row's temperature under ``form`` with ``params`` (log scale)."""
        snr = self.snr[rows]
        if form in ("fold_snr2", "clean_snr2"):
            base = self.fold_temperature[rows] if form == "fold_snr2" else np.exp(params[1])
            return base * (1 + np.exp(params[0]) / snr**2)
        scale = np.exp(params[0])
        if form in ("snr", "snr2"):
            return scale * (1 + np.exp(params[1]) / snr ** (1 if form == "snr" else 2))
        return np.full(len(snr), scale)

    def confidence(self, rows, temperature):
        from deepscope.spectra.calibration import main_class_confidence

        # one temperature per row: a column, so it divides each row's log-probabilities
        return main_class_confidence(self.log_p[rows], self.predicted[rows], temperature[:, None])

    def fit(self, rows, form):
        """Brier-optimal parameters of ``form`` on ``rows`` (log scale, as :meth:`temperatures` takes them)."""
        from scipy.optimize import minimize

        from deepscope.spectra.calibration import fit_temperature

        if form in ("one", "clean"):  # the package's own fit, as spectra_mk's temperature was fitted
            rows = rows[self.clean[rows]] if form == "clean" else rows
            return [np.log(fit_temperature(self.log_p[rows], self.true[rows], self.predicted[rows]))]
        # clean_snr2 fits its S/N term with the clean rows' temperature held
        held = [self.fit(rows, "clean")[0]] if form == "clean_snr2" else []

        def brier(params):
            sure = self.confidence(rows, self.temperatures([*params, *held], form, rows))
            return np.mean((sure - self.correct[rows]) ** 2)

        start = [np.log(2.0)] if form in ("fold_snr2", "clean_snr2") else [np.log(0.6), np.log(2.0)]
        return [*minimize(brier, start, method="Nelder-Mead").x, *held]

    def cross_fitted(self, libraries, form):
        """Each row's confidence with the temperature fitted on the other libraries' rows (``fold``: its own)."""
        sure, fitted = np.zeros(len(libraries)), {}
        for library in np.unique(libraries):
            held = np.flatnonzero(libraries == library)
            if form == "fold":
                temperature = self.fold_temperature[held]
            else:
                params = self.fit(np.flatnonzero(libraries != library), form)
                temperature, fitted[library] = self.temperatures(params, form, held), np.exp(params)
            sure[held] = self.confidence(held, temperature)
        return sure, fitted


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loo", type=Path, required=True)
    parser.add_argument("--libraries", nargs="+", default=["mkclass", "miles", "pickles", "kesseli2017"])
    parser.add_argument("--cache", type=Path, help="pickle of the typed rows: read if it exists, else written")
    args = parser.parse_args()
    from deepscope.spectra.calibration import expected_calibration_error

    if args.cache is not None and args.cache.is_file():
        table = pd.read_pickle(args.cache)
        table = table[table["library"].isin(args.libraries)].reset_index(drop=True)
    else:
        table = pd.concat([typed_rows(args.loo, library) for library in args.libraries], ignore_index=True)
        if args.cache is not None:
            table.to_pickle(args.cache)
    calibrations = Calibrations(table)
    libraries, conditions = table["library"].to_numpy(), table["condition"].to_numpy()
    scores = []
    for form in FORMS:
        sure, fitted = calibrations.cross_fitted(libraries, form)
        if fitted:
            print(f"{form}: parameters fitted without each library: "
                  + ", ".join(f"{k} {np.round(v, 3).tolist()}" for k, v in fitted.items()))
        for library in [*args.libraries, "pooled"]:
            for condition in CONDITIONS:
                rows = (conditions == condition) & ((libraries == library) | (library == "pooled"))
                scores.append({"library": library, "condition": condition, "form": form,
                               "ece": expected_calibration_error(sure[rows], calibrations.correct[rows], 10)})
    pd.set_option("display.width", 200)
    print(pd.DataFrame(scores).pivot_table(index=["library", "condition"], columns="form", values="ece",
                                           sort=False).round(3).to_string())


if __name__ == "__main__":
    main()
