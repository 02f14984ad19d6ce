"""Why a type should not be trusted: the ``flag`` column's reasons, their scores, and what they need from each spectrum.

A classifier trained on stars answers every input with a type; the flag
says when that answer has no footing. Its reasons (:func:`flag_reasons`),
each set by one constant:

``low_snr``
    The spectrum's S/N per pixel (:func:`der_snr`, over its part on the
    model's grid) is below :data:`MIN_SNR`.
``short_coverage``
    Less than :data:`MIN_BLUE_COVERAGE` of the blue classification window
    (:data:`BLUE_WINDOW`: Ca II H and K, the Balmer and helium lines) is
    covered; networks train on full spectra and on copies cut at its red end.
``missing_mk_lines``
    Less than :data:`MIN_TYPED_BLUE_COVERAGE` of that window is covered:
    most of the lines the MK types are defined by are missing, and the
    spectrum gets no type (:func:`typed`) rather than a guess; it takes the
    place of ``short_coverage``.
``negative_flux``
    The median flux on the grid is negative: a sign error or an
    over-subtracted sky, never a star.
``out_of_distribution``
    No training spectrum resembles it: its nearest template leaves more
    than :data:`MAX_TEMPLATE_MISMATCH` of its line signal unexplained
    (:func:`template_mismatch`). Catches featureless continua, emission-line
    objects, noise, dead fibres and lines at the wrong wavelengths.
``no_rv``
    The model measures radial velocities and none could be measured
    (:data:`~deepscope.spectra.preparation.velocity.MIN_CORRELATION`): the
    spectrum was typed as read, and ``rv_kms`` is empty.

The scores are arithmetic on each spectrum alone, no network:
:func:`spectrum_scores_rows` as read, the rest once a batch is normalised
(:func:`spectrum_features`), which bulk tables run in reader processes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from deepscope.spectra.preparation.continuum import normalise

# Flag names, in the order they are written.
LOW_SNR = "low_snr"
SHORT_COVERAGE = "short_coverage"
MISSING_MK_LINES = "missing_mk_lines"
NEGATIVE_FLUX = "negative_flux"
OUT_OF_DISTRIBUTION = "out_of_distribution"
NO_RV = "no_rv"
FLAGS = (LOW_SNR, SHORT_COVERAGE, MISSING_MK_LINES, NEGATIVE_FLUX, OUT_OF_DISTRIBUTION, NO_RV)
FLAG_SEPARATOR = ";"

# Below this S/N per pixel (DER_SNR) held-out main-class accuracy falls steeply (docs/spectra.md).
MIN_SNR = 5.0
# Blue classification window (Angstrom, air): the grid start to the red end of the short
# training copies (preparation.labelled.SHORT_RED_LIMIT).
BLUE_WINDOW = (3850.0, 4620.0)
# A 10% gap in that window costs held-out spectra several points of main-class accuracy.
MIN_BLUE_COVERAGE = 0.9
# Below half of that window, held-out main classes are mostly wrong and their confidence far above
# their accuracy: such a spectrum gets no type (docs/spectra.md).
MIN_TYPED_BLUE_COVERAGE = 0.5
# At most 5% false flags on each development library held out, and below every non-star
# kind measured (docs/spectra.md).
MAX_TEMPLATE_MISMATCH = 0.29


def der_snr(flux) -> float:
    """Signal-to-noise ratio per pixel from the flux alone (DER_SNR, Stoehr et al. 2008).

    The median flux over a noise estimated from the second difference of
    pixels two apart, which smooth lines barely touch; it needs no error
    array (most library formats have none). ``flux``: the valid pixels of one
    spectrum in wavelength order. Signed (negative when the median flux is),
    0 for fewer than 5 pixels, ``inf`` for a noiseless spectrum.

    Examples
    --------
    >>> round(der_snr(10.0 + np.random.default_rng(0).normal(0.0, 1.0, 10_000)))
    10
    """
    flux = np.asarray(flux, float)
    flux = flux[np.isfinite(flux)]
    if flux.size < 5:
        return 0.0
    noise = 1.482602 / np.sqrt(6.0) * np.median(np.abs(2.0 * flux[2:-2] - flux[:-4] - flux[4:]))
    signal = float(np.median(flux))
    if noise == 0:
        return float(np.inf) if signal else 0.0
    return signal / float(noise)


def spectrum_scores_rows(wave, flux, valid, grid_start, grid_stop) -> tuple[np.ndarray, np.ndarray]:
    """S/N per pixel (:func:`der_snr`) and median flux of spectra as read, over the model grid's range.

    Parameters
    ----------
    wave : numpy.ndarray
        ``(n,)`` air wavelengths (Angstrom), increasing, shared by the rows.
    flux, valid : numpy.ndarray
        ``(N, n)``: only valid finite pixels count.
    grid_start, grid_stop : float
        The grid's range (``Grid.start``, ``Grid.stop``).

    Returns
    -------
    snr, median_flux : numpy.ndarray
        ``(N,)`` each; 0 for a row with no pixel in range.

    Examples
    --------
    >>> wave = np.linspace(3700.0, 5700.0, 2001)
    >>> snr, median = spectrum_scores_rows(wave, -np.ones((2, 2001)), np.ones((2, 2001), bool), 3850.0, 5550.0)
    >>> median.tolist()
    [-1.0, -1.0]
    """
    wave, flux, valid = np.asarray(wave, float), np.asarray(flux, float), np.asarray(valid, bool)
    # Increasing wavelengths: the pixels in range are one slice.
    columns = slice(np.searchsorted(wave, grid_start, side="left"), np.searchsorted(wave, grid_stop, side="right"))
    inside = flux[:, columns]
    use = valid[:, columns] & np.isfinite(inside)
    whole = use.all(axis=1)
    snr, median = np.zeros(len(flux)), np.zeros(len(flux))
    if inside.shape[1] and whole.any():
        # Rows valid throughout (most survey rows) in a few array operations; np.median along the
        # rows picks and averages the same two values as row by row, so the numbers are the same.
        rows = inside[whole]
        median[whole] = np.median(rows, axis=1)
        if rows.shape[1] >= 5:
            noise = 1.482602 / np.sqrt(6.0) * np.median(np.abs(2.0 * rows[:, 2:-2] - rows[:, :-4] - rows[:, 4:]),
                                                         axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                snr[whole] = np.where(noise == 0, np.where(median[whole] != 0, np.inf, 0.0), median[whole] / noise)
    for i in np.flatnonzero(~whole):
        kept = inside[i, use[i]]
        snr[i], median[i] = der_snr(kept), float(np.median(kept)) if kept.size else 0.0
    return snr, median


def blue_coverage(mask, grid_wave) -> np.ndarray:
    """Fraction of the blue classification window (:data:`BLUE_WINDOW`) covered: prepared masks ``(N, n)`` -> ``(N,)``.

    Examples
    --------
    >>> wave = np.linspace(3850.0, 5550.0, 580)
    >>> float(blue_coverage((wave > 4700.0).astype(float)[None], wave)[0])
    0.0
    """
    window = (grid_wave >= BLUE_WINDOW[0]) & (grid_wave <= BLUE_WINDOW[1])
    return np.asarray(mask, float)[:, window].mean(axis=1)


def template_mismatch(x, nearest_chi2) -> np.ndarray:
    """Share of each prepared spectrum's line signal that its nearest template leaves unexplained.

    The template matcher's distance (``TemplateMatcher.chi2(x).min(axis=1)``,
    the mean squared difference over common pixels) over the spectrum's own
    mean squared normalised flux: about 0 for a star like a training one,
    near or above 1 when no template beats a featureless line, far above 1
    for a featureless input; ``inf`` for one with no signal at all. Dividing
    makes one threshold serve weak-lined O stars and line-crowded M stars.

    Examples
    --------
    >>> x = np.zeros((2, 2, 4)); x[:, 1] = 1.0
    >>> x[0, 0] = [0.2, -0.2, 0.2, -0.2]
    >>> template_mismatch(x, np.array([0.004, 0.01])).round(2).tolist()
    [0.1, inf]
    """
    flux, mask = x[:, 0], x[:, 1]
    power = (flux ** 2 * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(power > 0, nearest_chi2 / np.where(power > 0, power, 1.0), np.inf)


def typed(blue_cover) -> np.ndarray:
    """Whether each spectrum covers enough of the blue classification window (:data:`BLUE_WINDOW`) to get a type.

    Examples
    --------
    >>> typed([1.0, 0.6, 0.2]).tolist()
    [True, True, False]
    """
    return np.asarray(blue_cover, float) >= MIN_TYPED_BLUE_COVERAGE


def flag_reasons(snr, blue_cover, median_flux, mismatch, no_rv=None):
    """The ``flag`` column from each spectrum's scores: ``;``-separated reasons (:data:`FLAGS`), empty when ordinary.

    ``no_rv`` is True where a velocity was sought and none found (None: never).

    Examples
    --------
    >>> flag_reasons([50.0, 2.0, 50.0], [1.0, 0.6, 0.2], [1.0, 1.0, 1.0], [0.1, 3.0, 0.1], [False, True, False])
    ['', 'low_snr;short_coverage;out_of_distribution;no_rv', 'missing_mk_lines']
    """
    has_type = typed(blue_cover)
    tests = {
        LOW_SNR: np.abs(np.asarray(snr, float)) < MIN_SNR,
        SHORT_COVERAGE: has_type & (np.asarray(blue_cover, float) < MIN_BLUE_COVERAGE),
        MISSING_MK_LINES: ~has_type,
        NEGATIVE_FLUX: np.asarray(median_flux, float) < 0,
        OUT_OF_DISTRIBUTION: np.asarray(mismatch, float) > MAX_TEMPLATE_MISMATCH,
        NO_RV: np.zeros(len(snr), bool) if no_rv is None else np.asarray(no_rv, bool),
    }
    return [FLAG_SEPARATOR.join(name for name in FLAGS if tests[name][i]) for i in range(len(tests[LOW_SNR]))]


class SpectrumFeatures(NamedTuple):
    """A batch of gridded spectra made ready for the network and the flag rules."""

    x: np.ndarray  # (N, 2, n) float32: the network input (normalised flux, mask)
    snr: np.ndarray  # (N,) per-pixel S/N as read (der_snr)
    blue_cover: np.ndarray  # (N,) fraction of the blue classification window covered
    median_flux: np.ndarray  # (N,) median flux as read
    mismatch: np.ndarray  # (N,) template_mismatch; NaN where the checkpoint has no templates
    rv: np.ndarray  # (N,) radial velocity undone before gridding (km/s); NaN: none
    rv_err: np.ndarray  # (N,) its error (km/s); NaN for a known or missing one


def spectrum_features(items, grid, matcher=None) -> SpectrumFeatures:
    """Normalise a batch (at least one) of :class:`~deepscope.spectra.preparation.staged.GriddedSpectrum` on
    ``grid`` and measure its flag inputs; without the checkpoint's template ``matcher``, ``mismatch`` is NaN
    (no ``out_of_distribution`` flag)."""
    x = normalise(np.stack([item.flux for item in items]), np.stack([item.mask for item in items]), grid)
    mismatch = (template_mismatch(x, matcher.chi2(x).min(axis=1)) if matcher is not None
                else np.full(len(x), np.nan))
    return SpectrumFeatures(x=x, snr=np.array([item.snr for item in items], float),
                            blue_cover=blue_coverage(x[:, 1], grid.wave),
                            median_flux=np.array([item.median_flux for item in items], float), mismatch=mismatch,
                            rv=np.array([item.rv for item in items], float),
                            rv_err=np.array([item.rv_err for item in items], float))
