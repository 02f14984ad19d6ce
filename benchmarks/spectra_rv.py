"""Radial velocity on held-out stars: moved, measured, undone and typed through the whole ``spectra predict`` path.

Each labelled library is predicted by a network that never saw it (``--loo``
DIR holds one run directory or checkpoint per held-out library: ``DIR/<library>``,
``DIR/<library>/spectra_cnn`` or ``DIR/<library>/best.pt``), carrying the
radial-velocity templates of its own training libraries. Every spectrum, as
read, is perturbed (``CONDITIONS``; a fixed seed per library and condition)
and then read, moved to rest, gridded, normalised, typed and flagged as
``spectra predict`` does it:

- ``rv<V>``: moved by +V or -V km/s (random sign); ``rvu<V>``: uniform in -V..V;
- ``snr<S>``: Gaussian noise to a S/N of S per input pixel (the median flux
  over the grid's range over the noise); ``rv300_snr<S>`` both;
- ``vacuum``: vacuum wavelengths read as air (an 84 km/s shift);
- ``cut<A>-<B>``: only the pixels from A to B Angstrom kept; ``res<R>``:
  blurred to a resolving power R; ``tilt<a>``: flux times exp(+-a u), u from
  -1 at the blue end to 1 at the red end.

Prints, per held-out library and pooled: main-class accuracy, subclass MAE
and luminosity-class accuracy, the share of full types changed against the
unperturbed spectra, the share flagged (any reason) and newly flagged; then
the radial-velocity errors for FGKM and OBA stars (catalogue class):
against the injected velocity, and against it plus the velocity measured on
the unperturbed spectrum (the star's own residual motion). ``--no-rv`` types
every spectrum as read (the templates ignored): what the network does
without the step.

usage:
  python benchmarks/spectra_rv.py --loo DIR [--libraries mkclass] [--conditions clean rv50 rv300 ...]
      [--no-rv] [--out rows.parquet] [--threads 1]
"""

import argparse
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra"
LIBRARIES = ("miles", "mkclass", "pickles", "kesseli2017")
C_KMS = 299792.458
CONDITIONS = ("clean", "rv50", "rv300", "rvu300", "rv1000", "snr20", "snr10", "rv300_snr20", "rv300_snr10", "vacuum")


def checkpoint(loo: Path, library: str) -> Path:
    """The checkpoint trained without ``library``."""
    for candidate in (loo / library / "spectra_cnn", loo / "runs" / library / "spectra_cnn", loo / library):
        if (candidate / "best.pt").exists():
            return candidate / "best.pt"
    msg = f"no run for {library} under {loo}"
    raise SystemExit(msg)


def to_vacuum(air):
    """Air to vacuum wavelengths (Angstrom), inverting deepscope's to_air by fixed-point steps."""
    from deepscope.spectra.preparation.grid import to_air

    vacuum = air * 1.00028
    for _ in range(4):
        vacuum = vacuum * air / to_air(vacuum)
    return vacuum


def perturbed(spectrum, condition, rng):
    """``(spectrum, injected_rv)``: one copy of a spectrum as read, perturbed as ``condition`` says."""
    from deepscope.spectra.io.spectrum import Spectrum
    from deepscope.spectra.preparation.grid import air_wave

    wave, flux, valid = air_wave(spectrum), spectrum.flux.copy(), spectrum.valid.copy()
    rv = 0.0
    for part in condition.split("_"):
        if part.startswith("rvu"):
            rv = rng.uniform(-float(part[3:]), float(part[3:]))
        elif part.startswith("rv"):
            rv = float(part[2:]) * rng.choice([-1.0, 1.0])
        elif part == "vacuum":
            wave = to_vacuum(wave)  # the numbers are vacuum, read as air
        elif part.startswith("snr"):
            inside = valid & (wave > 3850.0) & (wave < 5550.0)
            level = np.median(np.abs(flux[inside])) if inside.any() else np.median(np.abs(flux[valid]))
            flux = flux + rng.normal(0.0, level / float(part[3:]), flux.size)
        elif part.startswith("cut"):
            low, high = (float(edge) for edge in part[3:].split("-"))
            valid = valid & (wave >= low) & (wave <= high)
        elif part.startswith("res"):
            # Gaussian line spread of FWHM lambda / R, on the spectrum's own (median) pixel spacing.
            from deepscope.spectra.preparation.continuum import smooth

            step = np.median(np.diff(wave))
            fwhm = np.median(wave) / float(part[3:]) / step
            if fwhm > 1.0:
                flux = smooth(np.where(valid, flux, 0.0), valid, fwhm)
        elif part.startswith("tilt"):
            # A flux calibration off by a factor exp(+-a u) across the spectrum (u from -1 to 1).
            u = (wave - wave.mean()) / (wave.max() - wave.mean())
            flux = flux * np.exp(float(part[4:]) * rng.choice([-1.0, 1.0]) * u)
        elif part != "clean":
            msg = f"unknown condition part {part!r}"
            raise SystemExit(msg)
    if rv:
        wave = wave * (1.0 + rv / C_KMS)
    return Spectrum(wave, np.where(valid, flux, 0.0), valid, "air"), rv


def read_library(library):
    """The labelled spectra of a library that exist on disk, and their catalogue types."""
    from deepscope.spectra.io.files import read_spectrum, spectra_manifest
    from deepscope.spectra.mktype import parse_mk

    manifest = spectra_manifest([DATA / library / "labels.csv"])
    spectra, types = [], []
    for path, sptype in zip(manifest["path"], manifest["sptype"]):
        if parse_mk(sptype) is None or not Path(path).exists():
            continue
        spectra.append(read_spectrum(path))
        types.append(sptype)
    return spectra, types


def predict_library(predictor, library, conditions):
    """One row per spectrum and condition."""
    spectra, types = read_library(library)
    rows = []
    for number, condition in enumerate(conditions):
        rng = np.random.default_rng([LIBRARIES.index(library) if library in LIBRARIES else 9, number])
        copies = [perturbed(s, condition, rng) for s in spectra]
        good, items, _ = predictor.prepare_many([c for c, _ in copies], [str(i) for i in range(len(copies))])
        for i, row in zip(good, predictor.assess(items)):
            rows.append({"library": library, "condition": condition, "star": i, "true_sptype": types[i],
                         "injected_rv": copies[i][1], **row})
    return pd.DataFrame(rows)


def truth(table):
    """Catalogue main class, temperature index and luminosity class of every row."""
    from deepscope.spectra.mktype import parse_mk

    parsed = {s: parse_mk(s) for s in table["true_sptype"].unique()}
    table["true_main"] = table["true_sptype"].map(lambda s: parsed[s].main_class)
    table["true_t"] = table["true_sptype"].map(lambda s: parsed[s].temperature_index)
    table["true_lum"] = table["true_sptype"].map(lambda s: parsed[s].lum_class)
    return table


def _lum_options(true_lum):
    from deepscope.spectra.mktype import LUM_NAMES

    return {LUM_NAMES[math.floor(true_lum)], LUM_NAMES[math.ceil(true_lum)]}


def summary(table):
    """One row of figures for a set of predictions (one condition, one or all libraries)."""
    correct = table["main_class"] == table["true_main"]
    t_rows = table.dropna(subset=["true_t"])
    err = (np.round(2 * t_rows["temperature_index"].clip(0, 69.5)) / 2 - t_rows["true_t"]).abs()
    lum = table.dropna(subset=["true_lum"])
    lum_ok = [row.lum_class in _lum_options(row.true_lum) for row in lum.itertuples()]
    flagged = table["flag"].fillna("") != ""
    return {"n": len(table), "main_acc": correct.mean(), "sub_mae": err.mean(),
            "lum_acc": np.mean(lum_ok) if lum_ok else math.nan, "types_changed": table["changed"].mean(),
            "flagged": flagged.mean(), "newly_flagged": table["newly_flagged"].mean(),
            "no_rv": table["flag"].fillna("").str.contains("no_rv").mean(),
            "ood": table["flag"].fillna("").str.contains("out_of_distribution").mean()}


def compare_to_clean(table):
    """Mark rows whose full type or flag differs from the same star's unperturbed prediction."""
    clean = table[table["condition"] == "clean"].set_index(["library", "star"])
    key = pd.MultiIndex.from_frame(table[["library", "star"]])
    clean_flag = clean["flag"].fillna("").reindex(key).to_numpy()
    table["changed"] = table["sptype"].to_numpy() != clean["sptype"].reindex(key).to_numpy()
    table["newly_flagged"] = (table["flag"].fillna("").to_numpy() != "") & (clean_flag == "")
    table["clean_rv"] = clean["rv_kms"].reindex(key).to_numpy()
    return table


def velocity_table(table):
    """|RV error| for FGKM and OBA stars (catalogue class) per condition."""
    rows = []
    for condition, part in table.groupby("condition", sort=False):
        late = part["true_main"].isin(["F", "G", "K", "M"])
        for name, sel in (("FGKM", late), ("OBA", ~late)):
            one = part[sel]
            absolute = (one["rv_kms"] - one["injected_rv"]).abs()
            relative = (one["rv_kms"] - one["injected_rv"] - one["clean_rv"]).abs()
            rows.append({"condition": condition, "class": name, "n": len(one), "measured": one["rv_kms"].notna().mean(),
                         "median_abs_err": absolute.median(), "median_err_vs_clean": relative.median(),
                         "p90_err_vs_clean": relative.quantile(0.9), "median_reported_err": one["rv_err_kms"].median(),
                         "within_2_sigma": (relative <= 2 * one["rv_err_kms"]).mean()})
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loo", type=Path, required=True)
    parser.add_argument("--libraries", nargs="+", default=["mkclass"])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    parser.add_argument("--no-rv", action="store_true", help="type every spectrum as read (templates ignored)")
    parser.add_argument("--out", type=Path, help="Parquet file for every row")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from deepscope.spectra.predictor import SpectraPredictor

    torch.set_num_threads(args.threads)
    conditions = list(dict.fromkeys(["clean", *args.conditions]))
    tables = []
    for library in args.libraries:
        predictor = SpectraPredictor.from_checkpoint(checkpoint(args.loo, library))
        if predictor.velocity is None and not args.no_rv:
            raise SystemExit(f"{checkpoint(args.loo, library)} has no radial-velocity templates")
        if args.no_rv:
            predictor.velocity = None
        tables.append(compare_to_clean(truth(predict_library(predictor, library, conditions))))
    table = pd.concat(tables, ignore_index=True)
    if args.out:
        table.to_parquet(args.out)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"held out: {', '.join(args.libraries)}; runs under {args.loo}; radial velocity "
          f"{'ignored' if args.no_rv else 'measured'}; load average {os.getloadavg()[0]:.1f}")
    for library, part in [*table.groupby("library", sort=False), *([("pooled", table)] if len(tables) > 1 else [])]:
        figures = pd.DataFrame({c: summary(p) for c, p in part.groupby("condition", sort=False)}).T
        print(f"\n{library}:\n{figures.round(3)}")
    if not args.no_rv:
        print("\nradial velocity (km/s):\n" + velocity_table(table).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
