"""Temperature scaling of the ``confidence`` column, and how calibrated a confidence is (ECE, reliability).

``confidence`` is the probability of the reported main class: the sum of
its ten subclass bins after the temperature head's log-probabilities are
divided by one temperature ``T`` (Guo et al. 2017), which keeps the ranking
of every prediction and cannot overfit a few hundred stars. Each checkpoint
carries its own ``T`` in ``meta["temperature"]``, fitted on its validation
split by ``spectra train`` (:func:`deepscope.spectra.train.calibrate`); a
checkpoint without one reports the uncalibrated probability (``T = 1``).
A checkpoint calibrated by ``spectra train`` without survey augmentation also
carries ``meta["temperature_snr_term"]``: noisy spectra get a higher
temperature, ``T (1 + term / snr**2)`` (:func:`temperatures_at_snr`).
"""

import functools
import logging

import numpy as np

log = logging.getLogger(__name__)

# Bins of the expected calibration error and the reliability diagram.
N_BINS = 10
# The S/N term of the temperature that `spectra train` (without survey augmentation) fits on its validation
# split: T(snr) = T (1 + SNR_TEMPERATURE_TERM / snr**2), snr the S/N as read (DER_SNR). Fitted by Brier score
# on the leave-one-library-out predictions of four such runs, clean and at S/N 5-30, each with its own T
# (experiments/spectra_calibration/snr_temperature.py, form fold_snr2; docs/spectra.md, "Confidence across
# noise levels"): without it their confidence at S/N 5 is far too high (ECE 0.136 pooled, 0.034 with it).
SNR_TEMPERATURE_TERM = 48.0


def main_class_mass(t_log_p):
    """Probability of each main class O ... M: the temperature bins' probabilities summed by tens.

    Parameters
    ----------
    t_log_p : numpy.ndarray
        ``(..., 70)`` temperature-head logits or log-probabilities.

    Returns
    -------
    numpy.ndarray
        ``(..., 7)``.

    Examples
    --------
    >>> main_class_mass(np.zeros(70)).round(3).tolist()
    [0.143, 0.143, 0.143, 0.143, 0.143, 0.143, 0.143]
    """
    t_log_p = np.asarray(t_log_p, float)
    p = np.exp(t_log_p - t_log_p.max(axis=-1, keepdims=True))  # a softmax: logits and log-probabilities alike
    p = p / p.sum(axis=-1, keepdims=True)
    return p.reshape(*p.shape[:-1], 7, 10).sum(axis=-1)


def main_class_confidence(t_log_p, predicted_main, temperature):
    """Probability of the predicted main class after temperature scaling, ``(N,)``.

    Parameters
    ----------
    t_log_p : numpy.ndarray
        ``(N, 70)`` temperature-head log-probabilities (or logits).
    predicted_main : array-like of int
        ``(N,)`` main class of each reported type, 0 (O) to 6 (M).
    temperature : float or numpy.ndarray
        Above 1 softens over-confident probabilities, below 1 sharpens; one per row, ``(N,)``, or one for all.

    Examples
    --------
    >>> log_p = np.full((1, 70), -20.0); log_p[0, 42] = 0.0  # all mass on G2
    >>> float(main_class_confidence(log_p, [4], 1.0).round(3)[0]), bool(main_class_confidence(log_p, [4], 100.0) < 0.5)
    (1.0, True)
    """
    temperature = np.asarray(temperature, float)
    if temperature.ndim == 1:  # one per row: a column, so that it divides each row's log-probabilities
        temperature = temperature[:, None]
    mass = main_class_mass(np.asarray(t_log_p, float) / temperature)
    return mass[np.arange(len(mass)), np.asarray(predicted_main, int)]


def temperatures_at_snr(temperature: float, snr, term: float = 0.0) -> np.ndarray:
    """Each spectrum's temperature at its S/N: ``temperature * (1 + term / snr**2)``.

    Parameters
    ----------
    temperature : float
        The checkpoint's ``T`` (``meta["temperature"]``).
    snr : array-like
        S/N per pixel as read (:func:`deepscope.spectra.flags.spectrum_features`); NaN (no noise to
        read, a model spectrum) counts as noiseless, and below 1 as 1.
    term : float
        ``meta["temperature_snr_term"]``; 0 (a checkpoint without one) keeps ``T`` for every S/N.

    Examples
    --------
    >>> temperatures_at_snr(0.5, [5.0, 20.0, float("nan")], 48.0).round(3).tolist()
    [1.46, 0.56, 0.5]
    """
    snr = np.asarray(snr, float)
    snr = np.maximum(np.where(np.isnan(snr), np.inf, snr), 1.0)
    return temperature * (1 + term / snr**2)


def say_if_uncalibrated(meta: dict, name) -> None:
    """Warn, once per checkpoint and process, that a checkpoint has no temperature: its confidence is uncalibrated."""
    if "temperature" not in meta:
        _say_uncalibrated(str(name))


@functools.cache
def _say_uncalibrated(name):
    log.warning("%s: no calibration temperature in the checkpoint; confidence is the uncalibrated probability "
                "(T = 1); 'spectra train' fits one on the validation split", name)


def fit_temperature(t_log_p, true_main, predicted_main, bounds=(0.05, 20.0)) -> float:
    """Temperature minimising the Brier score of the reported confidence on held-out predictions.

    The Brier score (mean squared difference between the confidence and 1/0
    for right/wrong) is a proper score for exactly the claim ``confidence``
    makes; the negative log-likelihood, dominated by the few catalogue types
    that disagree with their spectrum, softens every prediction.

    Parameters
    ----------
    t_log_p : numpy.ndarray
        ``(N, 70)`` held-out temperature-head log-probabilities.
    true_main, predicted_main : array-like of int
        ``(N,)`` true and reported main classes 0-6.
    bounds : (float, float)
        Search interval.

    Raises
    ------
    ValueError
        With no predictions to fit on.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> true = rng.integers(0, 7, 2000)
    >>> predicted = np.where(rng.random(2000) < 0.6, true, (true + 1) % 7)  # 60% right ...
    >>> sharp = np.full((2000, 70), -8.0)
    >>> sharp[np.arange(2000), 10 * predicted + 5] = 0.0  # ... but every prediction certain
    >>> fit_temperature(sharp, true, predicted) > 1.5
    True
    """
    from scipy.optimize import minimize_scalar

    t_log_p = np.asarray(t_log_p, float)
    predicted_main = np.asarray(predicted_main, int)
    correct = predicted_main == np.asarray(true_main, int)
    if not len(correct):
        msg = "fit_temperature: no held-out predictions to fit on"
        raise ValueError(msg)

    def brier(log_t):
        return np.mean((main_class_confidence(t_log_p, predicted_main, np.exp(log_t)) - correct) ** 2)

    return float(np.exp(minimize_scalar(brier, bounds=np.log(bounds), method="bounded").x))


def reliability_table(confidence, correct, n_bins=N_BINS):
    """Predictions in ``n_bins`` equal-width confidence bins: a DataFrame of the non-empty ones.

    Columns ``lo``, ``hi``, ``n``, ``confidence`` (mean) and ``accuracy``.
    """
    import pandas as pd

    confidence, correct = np.asarray(confidence, float), np.asarray(correct, bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # The last bin is closed so that confidence 1.0 is counted.
    which = np.clip(np.digitize(confidence, edges[1:-1], right=False), 0, n_bins - 1)
    rows = [{"lo": edges[b], "hi": edges[b + 1], "n": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean())}
            for b in range(n_bins) if (which == b).any()]
    return pd.DataFrame(rows, columns=["lo", "hi", "n", "confidence", "accuracy"])


def expected_calibration_error(confidence, correct, n_bins=N_BINS) -> float:
    """The count-weighted mean ``|accuracy - confidence|`` over bins: 0 when calibrated, NaN for no predictions.

    Examples
    --------
    >>> expected_calibration_error([0.9, 0.9, 0.9, 0.9], [True, True, True, False])
    0.15
    """
    table = reliability_table(confidence, correct, n_bins)
    if table.empty:
        return float("nan")
    gap = (table["accuracy"] - table["confidence"]).abs()
    return round(float((gap * table["n"]).sum() / table["n"].sum()), 12)


def reliability_figure(curves, title="main-class confidence", n_bins=N_BINS):
    """Reliability diagram: accuracy against confidence per bin (top) and predictions per bin (bottom).

    Parameters
    ----------
    curves : dict of str -> (confidence, correct)
        One line per named set (``"K"``, ``"all"``, ``"uncalibrated"`` ...);
        the label gets the set's ECE and size appended.
    title : str
    n_bins : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # no pyplot: nothing to close, no backend to choose

    fig = Figure(figsize=(5.0, 6.0), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls=":", c="grey", label="perfect calibration")
    for label, (confidence, correct) in curves.items():
        table = reliability_table(confidence, correct, n_bins)
        ece = expected_calibration_error(confidence, correct, n_bins)
        line, = top.plot(table["confidence"], table["accuracy"], marker="o",
                         label=f"{label} (ECE {ece:.3f}, n={len(np.asarray(confidence))})")
        bottom.bar((table["lo"] + table["hi"]) / 2, table["n"], width=1.0 / n_bins, alpha=0.4,
                   color=line.get_color())
    top.set(ylabel="fraction with the right main class", title=title, xlim=(0, 1), ylim=(0, 1.02))
    top.legend(loc="upper left", fontsize=7)
    bottom.set(xlabel="confidence (probability of the predicted main class)", ylabel="predictions")
    fig.tight_layout()
    return fig
