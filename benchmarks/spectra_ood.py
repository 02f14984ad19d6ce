"""Flags and calibrated confidence for spectra predictions: what they catch, what they cost.

Measures, with networks that never saw what they score:

1. ordinary held-out stars: every labelled library predicted by the
   leave-one-library-out networks trained without it (``--loo``), and STELIB
   (unlabelled, never trained on) by the shipped model. Per library: the
   share flagged, by reason, and main-class accuracy of all and of the
   unflagged;
2. ten kinds of input that are not a normal star (:func:`deepscope.spectra.synthetic.make_oddity`),
   ``--instances`` of each from a fixed seed, through the shipped model: the
   share of each kind flagged;
3. each out-of-distribution detector alone (template mismatch, ensemble
   disagreement, the network's own top probability), its threshold set for
   at most 5% false flags on each of held-out MILES and Pickles (the
   development libraries) and reported on the others;
4. confidence calibration on the held-out predictions: the temperature
   fitted on the other libraries, expected calibration error per library
   and pooled, with reliability diagrams (``--out``);
5. main-class accuracy of held-out MILES stars with noise added to a given
   S/N, and how many of them ``low_snr`` flags (the threshold's reason).

One script, over the usual module length, because all five share the same
held-out predictions and the tables are read together.

``--loo`` is a directory holding one run directory per held-out library,
each with ``member<i>/best.pt`` (``deepscope spectra crossval --models
spectra_cnn --out loo`` writes them under ``loo/runs/<library>/spectra_cnn``:
pass ``--loo loo/runs``; nested folders are searched).

usage:
  python benchmarks/spectra_ood.py --loo DIR [--members N] [--out DIR] [--instances 30] [--skip-snr]
"""

import argparse
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra"
LIBRARIES = ("miles", "mkclass", "pickles", "kesseli2017")
DEV_LIBRARIES = ("miles", "pickles")  # thresholds are chosen here, as the shipped recipe was (docs/spectra.md)
FALSE_FLAG_TARGET = 0.05
SNR_LEVELS = (2.0, 3.0, 5.0, 8.0, 12.0, 20.0)


def markdown(table, index=True):
    """A table as GitHub markdown (no tabulate dependency)."""
    table = table.reset_index() if index else table
    cells = [[str(c) for c in table.columns]] + [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
                                                  for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "---|" * len(table.columns), *lines[1:]])


def read_one(path, grid, min_coverage):
    """Prepared array and raw scores of one file, or ``None`` when it cannot be read."""
    from deepscope.errors import DeepscopeError
    from deepscope.spectra.io.files import read_spectrum

    try:
        spectrum = read_spectrum(path)
    except DeepscopeError:
        return None
    return prepared_with_scores(spectrum, grid, min_coverage)


def prepared_with_scores(spectrum, grid, min_coverage):
    """``(prepared, snr, median_flux)`` of one spectrum, or ``None`` if it misses the grid."""
    from deepscope.errors import DeepscopeError
    from deepscope.spectra.flags import spectrum_scores_rows
    from deepscope.spectra.preparation.continuum import normalise
    from deepscope.spectra.preparation.grid import on_grid, to_air

    wave = to_air(spectrum.wave) if spectrum.medium == "vacuum" else spectrum.wave
    (snr,), (median_flux,) = spectrum_scores_rows(wave, spectrum.flux[None], spectrum.valid[None], grid.start,
                                                  grid.stop)
    try:
        x = normalise(*(a[None] for a in on_grid(spectrum, grid, min_coverage)), grid)[0]
    except DeepscopeError:
        return None
    return x, snr, median_flux


def stack(results):
    """Arrays of the readable results and their indices."""
    keep = [i for i, r in enumerate(results) if r is not None]
    if not keep:
        return np.zeros((0, 2, 580), np.float32), np.zeros(0), np.zeros(0), np.array(keep, int)
    x = np.stack([results[i][0] for i in keep])
    return x, np.array([results[i][1] for i in keep]), np.array([results[i][2] for i in keep]), np.array(keep)


def net_outputs(net, x, batch_size=512):
    """Raw outputs ``(N, 76)`` of one network on prepared spectra, on the CPU."""
    import torch

    with torch.inference_mode():
        return np.concatenate([net(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))).numpy()
                               for i in range(0, len(x), batch_size)])


def member_outputs(nets, x):
    """``(members, N, 76)`` raw outputs of each member network."""
    return np.stack([net_outputs(net, x) for net in nets])


def ensemble_outputs(outputs):
    """Head-wise log mean probability, as ``SpectraEnsemble.forward`` computes it."""
    from scipy.special import log_softmax, logsumexp

    from deepscope.spectra.mktype import N_T_BINS

    log_p = np.concatenate([log_softmax(outputs[..., :N_T_BINS], -1), log_softmax(outputs[..., N_T_BINS:], -1)], -1)
    return logsumexp(log_p, 0) - math.log(len(outputs))


def max_probability(t_log_p):
    """The network's own certainty: the largest main-class probability, ``(N,)``."""
    from deepscope.spectra.calibration import main_class_mass

    return main_class_mass(t_log_p).max(axis=-1)


def ensemble_disagreement(member_t_log_p):
    """Jensen-Shannon divergence of the members' main-class distributions (nats).

    Members trained from different seeds agree on what resembles their
    training data and tend to disagree elsewhere.

    Parameters
    ----------
    member_t_log_p : numpy.ndarray
        ``(members, N, 70)`` temperature-head logits of each member.

    Returns
    -------
    numpy.ndarray
        ``(N,)``; 0 when all members agree (and for a single member).

    Examples
    --------
    >>> same = np.zeros((3, 1, 70))
    >>> float(ensemble_disagreement(same)[0])
    0.0
    """
    from deepscope.spectra.calibration import main_class_mass

    p = main_class_mass(member_t_log_p)
    mean = p.mean(axis=0)
    tiny = 1e-12
    return (p * (np.log(p + tiny) - np.log(mean + tiny)[None])).sum(axis=-1).mean(axis=0)


def score_spectra(nets, matcher, x, snr, median_flux, grid):
    """Per-spectrum predictions and every score, plus the ensemble's temperature-head log-probabilities."""
    from deepscope.spectra import flags
    from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS
    from deepscope.spectra.decoding import outputs_to_rows

    members = member_outputs(nets, x)
    ensemble = ensemble_outputs(members)
    rows = pd.DataFrame(outputs_to_rows(ensemble))
    mismatch = flags.template_mismatch(x, matcher.chi2(x).min(axis=1))
    blue = flags.blue_coverage(x[:, 1], grid.wave)
    table = pd.DataFrame({
        "pred_sptype": rows["sptype"], "pred_main": rows["main_class"].map(MAIN_CLASSES.index),
        "snr": snr, "median_flux": median_flux, "blue_coverage": blue, "mismatch": mismatch,
        "disagreement": ensemble_disagreement(members[..., :N_T_BINS]),
        "uncertainty": 1.0 - max_probability(ensemble[:, :N_T_BINS]),
        "flag": flags.flag_reasons(snr, blue, median_flux, mismatch)})
    return table, ensemble[:, :N_T_BINS]


def load_members(run_dir, members=None):
    """The member networks of a leave-one-library-out run (the first ``members``) and the first one's metadata."""
    from deepscope.spectra.predictor import SpectraPredictor

    paths = sorted(Path(run_dir).rglob("member*/best.pt"))[:members]
    if not paths:
        raise SystemExit(f"no member*/best.pt under {run_dir}")
    loaded = [SpectraPredictor.from_checkpoint(p) for p in paths]
    return [predictor.model for predictor in loaded], loaded[0].meta


def held_out_tables(loo_dir, workers, members=None):
    """Held-out predictions of every library by the networks trained without it."""
    from deepscope.spectra.io.files import spectra_manifest
    from deepscope.spectra.mktype import MAIN_CLASSES, parse_mk
    from deepscope.spectra.templates import TemplateMatcher

    tables, log_ps = [], []
    for library in LIBRARIES:
        nets, meta = load_members(Path(loo_dir) / library, members)
        manifest = spectra_manifest([DATA / library / "labels.csv"])
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda p: read_one(p, meta["grid"], meta["min_coverage"]), manifest["path"]))
        x, snr, median_flux, keep = stack(results)
        table, t_log_p = score_spectra(nets, TemplateMatcher.from_meta(meta), x, snr, median_flux, meta["grid"])
        mk = [parse_mk(s) for s in manifest["sptype"].iloc[keep]]
        table.insert(0, "library", library)
        table.insert(1, "file", list(manifest["path"].iloc[keep]))
        table.insert(2, "sptype", list(manifest["sptype"].iloc[keep]))
        table.insert(3, "true_main", [MAIN_CLASSES.index(m.main_class) if m else -1 for m in mk])
        table["members"] = len(nets)
        tables.append(table)
        log_ps.append(t_log_p)
        print(f"{library}: {len(x)} of {len(manifest)} read, {len(nets)} members", flush=True)
    return pd.concat(tables, ignore_index=True), np.concatenate(log_ps)


def oddity_table(model, meta, instances, workers, seed=0):
    """Every oddity kind, ``instances`` of each, through the shipped model; STELIB as ordinary stars."""
    from deepscope.spectra.io.files import Spectrum, read_spectrum, spectra_manifest
    from deepscope.spectra.mktype import parse_mk
    from deepscope.spectra.synthetic import ODDITY_KINDS, make_oddity
    from deepscope.spectra.templates import TemplateMatcher

    rng = np.random.default_rng(seed)
    manifest = spectra_manifest([DATA / "miles" / "labels.csv"])
    picks = manifest.sample(3 * instances, random_state=seed)
    stars = [read_spectrum(p) for p in picks["path"]]
    stars = [(s.wave, s.flux) for s in stars]
    mk = [parse_mk(t) for t in picks["sptype"]]
    population = [s for s, m in zip(stars, mk) if m is not None and m.main_class in "AFGK"]
    spectra, kinds = [], []
    for kind in ODDITY_KINDS:
        for i in range(instances):
            galaxy = [population[j] for j in rng.choice(len(population), 4, replace=False)]
            wave, flux = make_oddity(kind, rng, star=stars[i], galaxy_stars=galaxy)
            spectra.append(Spectrum(wave, flux, np.isfinite(flux) & (flux != 0)))
            kinds.append(kind)
    stelib = sorted(str(p) for p in (DATA / "stelib").glob("*.fits*"))
    with ThreadPoolExecutor(workers) as pool:
        results = [prepared_with_scores(s, meta["grid"], meta["min_coverage"]) for s in spectra]
        results += list(pool.map(lambda p: read_one(p, meta["grid"], meta["min_coverage"]), stelib))
    kinds += ["STELIB (ordinary, never trained on)"] * len(stelib)
    x, snr, median_flux, keep = stack(results)
    table, _ = score_spectra(list(model.members), TemplateMatcher.from_meta(meta), x, snr, median_flux,
                             meta["grid"])
    table.insert(0, "kind", [kinds[i] for i in keep])
    unreadable = pd.Series([kinds[i] for i, r in enumerate(results) if r is None], dtype=str).value_counts()
    return table, unreadable


def flag_summary(table, by):
    """Share flagged (any reason and each reason) per group."""
    from deepscope.spectra.flags import FLAGS

    out = table.groupby(by, sort=False).agg(n=("flag", "size"), flagged=("flag", lambda f: (f != "").mean()))
    for name in FLAGS:
        out[name] = table.groupby(by, sort=False)["flag"].apply(lambda f, n=name: f.str.contains(n).mean())
    return out


def detector_table(held, odd):
    """Each detector alone: threshold at 5% false flags on each development library."""
    dev = held[held["library"].isin(DEV_LIBRARIES) & (held["true_main"] >= 0)]
    test = held[~held["library"].isin(DEV_LIBRARIES) & (held["true_main"] >= 0)]
    stelib = odd[odd["kind"].str.startswith("STELIB")]
    rows = []
    for score in ("mismatch", "disagreement", "uncertainty"):
        threshold = float(dev.groupby("library")[score].quantile(1 - FALSE_FLAG_TARGET).max())
        row = {"detector": score, "threshold (5% false flags on each dev library)": round(threshold, 4),
               "false flags, test libraries": round(float((test[score] > threshold).mean()), 3),
               "false flags, STELIB": round(float((stelib[score] > threshold).mean()), 3)}
        for kind, group in odd[~odd["kind"].str.startswith("STELIB")].groupby("kind", sort=False):
            row[kind] = round(float((group[score] > threshold).mean()), 2)
        no_type = held[held["true_main"] < 0]
        row["held-out spectra with no O-M type"] = round(float((no_type[score] > threshold).mean()), 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("detector").T


def nll_temperature(t_log_p, true_main):
    """The textbook alternative: temperature minimising the main class's negative log-likelihood."""
    from scipy.optimize import minimize_scalar

    from deepscope.spectra.calibration import main_class_mass

    def nll(log_t):
        mass = main_class_mass(t_log_p / np.exp(log_t))
        return -np.log(mass[np.arange(len(mass)), true_main] + 1e-12).mean()

    return float(np.exp(minimize_scalar(nll, bounds=np.log((0.05, 20.0)), method="bounded").x))


def calibration_report(held, t_log_p, out_dir):
    """Cross-fitted temperature per library, ECE before and after, reliability diagrams."""
    from deepscope.spectra.calibration import (
        expected_calibration_error,
        fit_temperature,
        main_class_confidence,
        reliability_figure,
    )
    from deepscope.spectra.mktype import MAIN_CLASSES

    labelled = (held["true_main"] >= 0).to_numpy()
    true, pred = held["true_main"].to_numpy(), held["pred_main"].to_numpy()
    correct = true == pred
    raw = main_class_confidence(t_log_p, pred, 1.0)
    crossfit = np.full(len(held), np.nan)
    crossfit_nll = np.full(len(held), np.nan)
    rows = []
    for library in LIBRARIES:
        this = (held["library"] == library).to_numpy() & labelled
        others = (held["library"] != library).to_numpy() & labelled
        temperature = fit_temperature(t_log_p[others], true[others], pred[others])
        crossfit[this] = main_class_confidence(t_log_p[this], pred[this], temperature)
        crossfit_nll[this] = main_class_confidence(t_log_p[this], pred[this],
                                                   nll_temperature(t_log_p[others], true[others]))
        rows.append({"held out": library, "n": int(this.sum()), "T (fitted on the others)": round(temperature, 3),
                     "accuracy": round(float(correct[this].mean()), 3),
                     "mean confidence": round(float(crossfit[this].mean()), 3),
                     "ECE uncalibrated": round(expected_calibration_error(raw[this], correct[this]), 3),
                     "ECE calibrated": round(expected_calibration_error(crossfit[this], correct[this]), 3)})
    dev = held["library"].isin(DEV_LIBRARIES).to_numpy() & labelled
    test = ~held["library"].isin(DEV_LIBRARIES).to_numpy() & labelled
    t_dev = fit_temperature(t_log_p[dev], true[dev], pred[dev])
    on_test = main_class_confidence(t_log_p[test], pred[test], t_dev)
    unflagged = labelled & (held["flag"] == "").to_numpy()
    summary = {
        "T fitted on all four (ship this)":
            round(fit_temperature(t_log_p[labelled], true[labelled], pred[labelled]), 3),
        "ECE pooled, uncalibrated": round(expected_calibration_error(raw[labelled], correct[labelled]), 3),
        "ECE pooled, cross-fitted T": round(expected_calibration_error(crossfit[labelled], correct[labelled]), 3),
        "ECE pooled, cross-fitted T by NLL instead (not used)":
            round(expected_calibration_error(crossfit_nll[labelled], correct[labelled]), 3),
        "ECE pooled, cross-fitted T, unflagged only":
            round(expected_calibration_error(crossfit[unflagged], correct[unflagged]), 3),
        f"T fitted on {'+'.join(DEV_LIBRARIES)}": round(t_dev, 3),
        "ECE on mkclass+kesseli2017 with that T": round(expected_calibration_error(on_test, correct[test]), 3),
    }
    if out_dir is not None:
        curves = {"uncalibrated (T=1)": (raw[labelled], correct[labelled]),
                  "calibrated (T from the other libraries)": (crossfit[labelled], correct[labelled])}
        reliability_figure(curves, "held-out main class, all four libraries").savefig(out_dir / "reliability.png")
        per_class = {name: (crossfit[labelled & (pred == i)], correct[labelled & (pred == i)])
                     for i, name in enumerate(MAIN_CLASSES) if (labelled & (pred == i)).sum() >= 30}
        reliability_figure(per_class, "calibrated, by predicted main class").savefig(
            out_dir / "reliability_by_class.png")
    return pd.DataFrame(rows), summary, crossfit


def snr_table(loo_dir, members=None, n_stars=300, seed=0, workers=2):
    """Held-out MILES accuracy and low_snr share with noise added to each S/N."""
    from deepscope.spectra.io.files import read_spectrum, spectra_manifest
    from deepscope.spectra.mktype import MAIN_CLASSES, parse_mk
    from deepscope.spectra.synthetic import at_snr
    from deepscope.spectra.flags import MIN_SNR
    from deepscope.spectra.decoding import outputs_to_rows

    nets, meta = load_members(Path(loo_dir) / "miles", members)
    manifest = spectra_manifest([DATA / "miles" / "labels.csv"])
    manifest = manifest[[parse_mk(s) is not None for s in manifest["sptype"]]].sample(n_stars, random_state=seed)
    stars = [read_spectrum(p) for p in manifest["path"]]
    true = np.array([MAIN_CLASSES.index(parse_mk(s).main_class) for s in manifest["sptype"]])
    rows = []
    for level in SNR_LEVELS + (math.inf,):
        rng = np.random.default_rng(seed)
        noisy = [s if math.isinf(level) else type(s)(*at_snr(s.wave, s.flux, level, rng), s.valid, s.medium)
                 for s in stars]
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda s: prepared_with_scores(s, meta["grid"], meta["min_coverage"]), noisy))
        x, snr, _, keep = stack(results)
        pred = pd.DataFrame(outputs_to_rows(ensemble_outputs(member_outputs(nets, x))))["main_class"]
        right = pred.map(MAIN_CLASSES.index).to_numpy() == true[keep]
        rows.append({"added noise to S/N": level, "median DER_SNR": round(float(np.median(snr)), 1),
                     "main-class accuracy": round(float(right.mean()), 3),
                     f"flagged low_snr (< {MIN_SNR:g})": round(float((np.abs(snr) < MIN_SNR).mean()), 3)})
    return pd.DataFrame(rows)


def gap_table(loo_dir, members=None, n_stars=300, seed=0, workers=2):
    """Held-out MILES accuracy with a gap cut into the blue classification window.

    The gap (a random stretch of the window, as STELIB's and Kesseli's
    zero-filled bad columns are) is masked in the prepared arrays directly,
    so the continuum is the one fitted to the whole spectrum.
    """
    from deepscope.spectra.io.files import spectra_manifest
    from deepscope.spectra.mktype import MAIN_CLASSES, parse_mk
    from deepscope.spectra.flags import BLUE_WINDOW, blue_coverage
    from deepscope.spectra.decoding import outputs_to_rows

    nets, meta = load_members(Path(loo_dir) / "miles", members)
    grid = meta["grid"]
    manifest = spectra_manifest([DATA / "miles" / "labels.csv"])
    manifest = manifest[[parse_mk(s) is not None for s in manifest["sptype"]]].sample(n_stars, random_state=seed)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda p: read_one(p, grid, meta["min_coverage"]), manifest["path"]))
    x, _, _, keep = stack(results)
    true = np.array([MAIN_CLASSES.index(parse_mk(s).main_class) for s in manifest["sptype"]])[keep]
    window = np.flatnonzero((grid.wave >= BLUE_WINDOW[0]) & (grid.wave <= BLUE_WINDOW[1]))
    rng = np.random.default_rng(seed)
    rows = []
    for gap in (0.0, 0.1, 0.2, 0.3, 0.5):
        cut = x.copy()
        width = int(round(gap * len(window)))
        for row in cut:
            start = window[0] + int(rng.integers(0, len(window) - width + 1))
            row[:, start:start + width] = 0.0
        pred = pd.DataFrame(outputs_to_rows(ensemble_outputs(member_outputs(nets, cut))))["main_class"]
        rows.append({"gap (share of 3850-4620 A)": gap,
                     "mean blue coverage": round(float(blue_coverage(cut[:, 1], grid.wave).mean()), 3),
                     "main-class accuracy": round(float((pred.map(MAIN_CLASSES.index).to_numpy() == true).mean()), 3)})
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loo", required=True, help="leave-one-library-out run directories, one per library")
    parser.add_argument("--out", help="directory for per-spectrum tables and the reliability diagrams")
    parser.add_argument("--members", type=int, help="use only the first N members of each run (default: all)")
    parser.add_argument("--instances", type=int, default=30, help="spectra per oddity kind")
    parser.add_argument("--workers", type=int, default=2, help="reader threads")
    parser.add_argument("--skip-snr", action="store_true",
                        help="leave out the added-noise and blue-gap tables (the slowest part)")
    args = parser.parse_args()
    import torch

    from deepscope.spectra.flags import MAX_TEMPLATE_MISMATCH
    from deepscope.spectra.predictor import SpectraPredictor

    torch.set_num_threads(1)
    out_dir = None
    if args.out:
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)

    shipped = SpectraPredictor.from_checkpoint()
    model, meta = shipped.model, shipped.meta
    odd, unreadable = oddity_table(model, meta, args.instances, args.workers)
    # The ensemble as this script averages the leave-one-out members must be the shipped network's own output.
    probe = np.random.default_rng(0).normal(0.0, 0.1, (4, 2, 580)).astype(np.float32)
    probe[:, 1] = 1.0
    if not np.allclose(net_outputs(model, probe), ensemble_outputs(member_outputs(list(model.members), probe)),
                       atol=1e-4):
        raise SystemExit("ensemble_outputs does not reproduce SpectraEnsemble.forward")
    held, t_log_p = held_out_tables(args.loo, args.workers, args.members)
    if out_dir is not None:
        held.to_csv(out_dir / "held_out.csv", index=False)
        odd.to_csv(out_dir / "oddities.csv", index=False)
        np.save(out_dir / "held_out_t_log_p.npy", t_log_p)

    print(f"\n## Flags (MAX_TEMPLATE_MISMATCH = {MAX_TEMPLATE_MISMATCH})\n")
    labelled = held[held["true_main"] >= 0]
    ordinary = flag_summary(labelled, "library")
    ordinary["accuracy, all"] = labelled.groupby("library", sort=False).apply(
        lambda t: (t["true_main"] == t["pred_main"]).mean())
    ordinary["accuracy, unflagged"] = labelled[labelled["flag"] == ""].groupby("library", sort=False).apply(
        lambda t: (t["true_main"] == t["pred_main"]).mean())
    pooled = labelled.assign(library="all four")
    total = flag_summary(pooled, "library")
    total["accuracy, all"] = float((pooled["true_main"] == pooled["pred_main"]).mean())
    unflagged = pooled[pooled["flag"] == ""]
    total["accuracy, unflagged"] = float((unflagged["true_main"] == unflagged["pred_main"]).mean())
    print("Held-out labelled stars (leave-one-library-out networks):")
    print(markdown(pd.concat([ordinary, total]).round(3)))
    no_type = held[held["true_main"] < 0]
    if len(no_type):
        print("\nHeld-out spectra with no O-M type (never trained on any network):")
        print(markdown(no_type[["library", "sptype", "pred_sptype", "flag"]], index=False))
    print("\nOddities and STELIB through the shipped model:")
    kinds = flag_summary(odd, "kind")
    print(markdown(kinds.round(3)))
    odd_only = kinds[~kinds.index.str.startswith("STELIB")]
    print(f"\nkinds with >= 90% flagged: {int((odd_only['flagged'] >= 0.9).sum())} of {len(odd_only)}")
    if len(unreadable):
        print("rejected as unreadable before any prediction:", dict(unreadable))

    print("\n## Each detector alone\n")
    print(markdown(detector_table(held, odd)))

    print("\n## Confidence calibration (main class)\n")
    per_library, summary, crossfit = calibration_report(held, t_log_p, out_dir)
    print(markdown(per_library, index=False))
    for key, value in summary.items():
        print(f"{key}: {value}")
    if out_dir is not None:
        held.assign(confidence_crossfit=crossfit).to_csv(out_dir / "held_out.csv", index=False)

    if not args.skip_snr:
        print("\n## Added noise, held-out MILES (networks trained without MILES)\n")
        print(markdown(snr_table(args.loo, args.members, workers=args.workers), index=False))
        print("\n## Gaps in the blue window, held-out MILES\n")
        print(markdown(gap_table(args.loo, args.members, workers=args.workers), index=False))


if __name__ == "__main__":
    main()
