"""Radial velocity: each spectrum's Doppler shift, measured by cross-correlation against templates (no torch here).

A star's lines arrive shifted by its radial velocity, and a type read from
shifted lines changes (docs/spectra.md). On the fine grid
(:class:`~deepscope.spectra.preparation.grid.FineGrid`) a shift is a
translation, so each spectrum is reduced to its line signal
(:func:`line_signal`: flux over its running mean, minus one) and
cross-correlated with a few class-mean templates (:class:`VelocityTemplates`,
built from a model's training spectra in their rest frame and kept in its
checkpoint): every template at whole model pixels over the full velocity
range, then the best one at whole fine pixels around that peak, and a
parabola through the peak and its neighbours (:func:`measure_rv`). The
error is the photon-noise formula (Bouchy et al. 2001) with the residual
left by the template as the noise, scaled by :data:`ERROR_SCALE`.

Velocities follow the optical convention, ``lambda_observed = lambda_rest *
(1 + rv / c)``, positive receding, in the frame of the input wavelengths
(no barycentric correction is made), against the training spectra's rest
frame. Every step is arithmetic on each row alone (per-row products of one
shape), so a spectrum measured alone and among a million gets the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope.spectra.preparation.grid import C_KMS, FineGrid, resample_rows

# The running mean the line signal is taken against: sums over blocks of LINE_BLOCK model pixels
# (about 12 A), averaged over LINE_SPAN blocks either side, twice (a triangle about 115 A wide at
# its base), interpolated back: wide enough to keep the Balmer lines' cores and wings, narrow
# enough to drop flux calibration and the continuum's shape.
LINE_BLOCK = 4
LINE_SPAN = 2
# Class-mean templates average the training spectra in bins of this many subclasses.
TEMPLATE_BIN = 5.0
# Fine lags tried on either side of the coarse peak (one model pixel is `factor` fine lags).
FINE_REACH = 3
# Below this correlation between a spectrum's line signal and its best template at the peak,
# no velocity is reported (rv NaN, no shift): noise, featureless or non-stellar input.
MIN_CORRELATION = 0.2
# Measured errors over the formula's: the formula counts the residual as white noise per fine
# pixel, but resampling correlates neighbouring pixels (docs/spectra.md, development libraries).
ERROR_SCALE = 0.8


def line_signal(flux: np.ndarray, cover: np.ndarray, fine: FineGrid) -> tuple[np.ndarray, np.ndarray]:
    """What cross-correlation compares: flux over its running mean, minus one, on the fine grid.

    Parameters
    ----------
    flux, cover : numpy.ndarray
        ``(N, fine.n)`` mean flux and covered fraction per fine pixel
        (:func:`~deepscope.spectra.preparation.grid.fine_rows`).
    fine : FineGrid

    Returns
    -------
    x : numpy.ndarray
        ``(N, fine.n)`` float32, clipped to [-1.5, 1.5], 0 where not covered.
    mask : numpy.ndarray of bool
        Pixels covered, with enough covered neighbours for a running mean.

    Examples
    --------
    >>> from deepscope.spectra.preparation.grid import Grid
    >>> fine = FineGrid(Grid())
    >>> flux = np.ones((1, fine.n)); flux[0, 600] = 0.5  # one absorption pixel
    >>> x, mask = line_signal(flux, np.ones((1, fine.n)), fine)
    >>> round(float(x[0, 600]), 1), round(float(x[0, 300]), 3), bool(mask[0, 600])
    (-0.5, 0.0, True)
    """
    covered = cover >= 0.5
    weight = covered.astype(np.float32)
    n = flux.shape[1]
    block = LINE_BLOCK * fine.factor
    sums = [_blocks(np.where(covered, flux, 0.0).astype(np.float32), block), _blocks(weight, block)]
    for _ in range(2):  # twice: a triangular window, smoother than a box
        sums = [_window(values) for values in sums]
    full = (2 * LINE_SPAN + 1) ** 2 * block
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sums[1] > 0, sums[0] / np.where(sums[1] > 0, sums[1], 1.0), 0.0)
    # Block centres to fine pixels, linearly.
    position = np.clip((np.arange(n) + 0.5) / block - 0.5, 0, mean.shape[1] - 1)
    lower = np.minimum(position.astype(int), mean.shape[1] - 2)
    above = (position - lower).astype(np.float32)
    mean, seen = ((values[:, lower] * (1 - above) + values[:, lower + 1] * above) for values in (mean, sums[1] / full))
    # Enough neighbours: at least half the window covered, or the mean is one side of a line.
    mask = covered & (seen >= 0.5) & (mean > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(mask, flux / np.where(mask, mean, 1.0) - 1.0, 0.0)
    return np.clip(x, -1.5, 1.5).astype(np.float32), mask


def _blocks(values: np.ndarray, block: int) -> np.ndarray:
    """Sums over consecutive blocks of ``block`` pixels of each row (the last block padded with zeros)."""
    n_rows, n = values.shape
    count = -(-n // block)
    padded = np.zeros((n_rows, count * block), values.dtype)
    padded[:, :n] = values
    return sum(padded[:, k::block] for k in range(block))


def _window(values: np.ndarray) -> np.ndarray:
    """Sums over :data:`LINE_SPAN` blocks either side of each block (zeros beyond the ends)."""
    padded = np.zeros((len(values), values.shape[1] + 2 * LINE_SPAN), values.dtype)
    padded[:, LINE_SPAN:LINE_SPAN + values.shape[1]] = values
    return sum(padded[:, k:k + values.shape[1]] for k in range(2 * LINE_SPAN + 1))


def shifted_sums(flux: np.ndarray, cover: np.ndarray, first: float, stride: int, count: int,
                 shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flux-conserving resampling of rows on a log-uniform grid onto pixels ``stride`` of its pixels wide, moved.

    Output pixel ``k`` of row ``r`` spans input pixel positions ``first +
    stride * k + shift[r]`` to the next (position 0 is the left edge of the
    first input pixel): a shift in log wavelength is a translation here, so
    every edge of a row falls at the same fraction of an input pixel, and
    each output pixel is a weighted sum of ``stride + 1`` input pixels.
    Input pixels are weighted by their covered fraction ``cover``; beyond
    the ends nothing is covered. Returns the ``(N, count)`` mean fluxes (0
    where nothing was covered) and covered fractions.

    Examples
    --------
    >>> flux = np.arange(6.0)[None]
    >>> mean, covered = shifted_sums(flux, np.ones((1, 6)), 0.0, 2, 3, np.array([0.5]))
    >>> mean.round(3).tolist(), covered.tolist()  # the last pixel half beyond the end
    ([[1.0, 3.0, 4.667]], [[1.0, 1.0, 0.75]])
    """
    n = flux.shape[1]
    weighted = flux * cover
    start = first + np.asarray(shift, float)
    left = np.floor(start)
    fraction = (start - left)[:, None]
    index = left.astype(int)[:, None] + stride * np.arange(count)[None]
    out_flux, out_good = np.zeros(index.shape), np.zeros(index.shape)
    # Pixel k takes 1 - fraction of the input pixel it starts in, all of the next stride - 1 and
    # fraction of the one after: stride + 1 gathers, the same few for every row.
    for k in range(stride + 1):
        part = index + k
        inside = (part >= 0) & (part < n)
        share = np.where(inside, 1.0 - fraction if k == 0 else fraction if k == stride else 1.0, 0.0)
        part = np.clip(part, 0, n - 1)
        out_flux += np.take_along_axis(weighted, part, axis=1) * share
        out_good += np.take_along_axis(cover, part, axis=1) * share
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(out_good > 0, out_flux / out_good, 0.0)
    return mean, np.clip(out_good / stride, 0.0, 1.0)


def shift_fine(flux: np.ndarray, cover: np.ndarray, fine: FineGrid, rv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows on the fine grid moved to their rest frame (``rv`` km/s each, NaN: not moved): ``(flux, cover)``."""
    return shifted_sums(flux, cover, 0.0, 1, fine.n, np.log1p(np.nan_to_num(np.asarray(rv, float)) / C_KMS) / fine.step)


@dataclass(frozen=True)
class VelocityTemplates:
    """Class-mean line signals on the fine grid, what :func:`measure_rv` cross-correlates with.

    Attributes
    ----------
    x : numpy.ndarray
        ``(K, fine.n)`` float32 line signal (:func:`line_signal`) of each template, 0 where not covered.
    mask : numpy.ndarray of bool
        ``(K, fine.n)``.
    t_index : numpy.ndarray
        ``(K,)`` mean temperature index of the spectra averaged into each.
    fine : FineGrid
    """

    x: np.ndarray
    mask: np.ndarray
    t_index: np.ndarray
    fine: FineGrid

    @classmethod
    def build(cls, flux: np.ndarray, cover: np.ndarray, t_index: np.ndarray, fine: FineGrid) -> VelocityTemplates:
        """Average spectra on the fine grid, in their rest frame, in bins of :data:`TEMPLATE_BIN` subclasses.

        ``t_index`` is NaN for a spectrum of no known subclass (left out). A
        template pixel counts as covered where at least half its spectra cover it.
        """
        x, mask = line_signal(flux, cover, fine)
        t_index = np.asarray(t_index, float)
        known = np.isfinite(t_index)
        bins = np.floor(t_index[known] / TEMPLATE_BIN)
        x, mask, t_known = x[known], mask[known], t_index[known]
        templates, masks, temperatures = [], [], []
        for b in np.unique(bins):
            members = bins == b
            count = mask[members].sum(axis=0)
            covered = count >= 0.5 * members.sum()
            mean = np.where(covered, x[members].sum(axis=0) / np.maximum(count, 1), 0.0)
            templates.append(mean.astype(np.float32))
            masks.append(covered)
            temperatures.append(float(t_known[members].mean()))
        return cls(np.array(templates), np.array(masks), np.array(temperatures), fine)

    def as_meta(self) -> dict:
        """Plain arrays for a checkpoint's ``meta["velocity_templates"]`` (the fine grid is the model grid's)."""
        return {"x": self.x.astype(np.float16), "mask": self.mask, "t_index": self.t_index,
                "factor": self.fine.factor, "max_kms": self.fine.max_kms}

    @classmethod
    def from_meta(cls, meta: dict, grid) -> VelocityTemplates | None:
        """The templates a checkpoint carries (arrays or tensors), on ``grid``'s fine grid; None if it has none."""
        stored = meta.get("velocity_templates")
        if stored is None:
            return None
        fine = FineGrid(grid, int(stored["factor"]), float(stored["max_kms"]))
        return cls(np.asarray(stored["x"], dtype=np.float32), np.asarray(stored["mask"], dtype=bool),
                   np.asarray(stored["t_index"], dtype=float), fine)


def measure_rv(x: np.ndarray, mask: np.ndarray, templates: VelocityTemplates) -> tuple[np.ndarray, np.ndarray]:
    """Radial velocity and its error (km/s) of each row of line signals, NaN where none can be read.

    Parameters
    ----------
    x, mask : numpy.ndarray
        ``(N, fine.n)`` from :func:`line_signal`, in the frame as observed.
    templates : VelocityTemplates

    Returns
    -------
    rv, rv_err : numpy.ndarray
        ``(N,)`` each. NaN for a row whose line signal correlates with no
        template at the peak by :data:`MIN_CORRELATION` or more, or whose
        peak lies beyond the lags searched (``templates.fine.max_kms``
        rounded up to whole model pixels: 1137 km/s for the default grid).

    Examples
    --------
    >>> from deepscope.spectra.preparation.grid import Grid
    >>> fine = FineGrid(Grid())
    >>> rng = np.random.default_rng(0)
    >>> lines = np.ones((1, fine.n)) - 0.5 * (rng.random((1, fine.n)) < 0.05)  # a forest of lines
    >>> templates = VelocityTemplates.build(lines, np.ones((1, fine.n)), np.array([40.0]), fine)
    >>> moved = np.roll(lines, 5, axis=1)  # five fine pixels redward
    >>> rv, err = measure_rv(*line_signal(moved, np.ones((1, fine.n)), fine), templates)
    >>> round(float(rv[0] / fine.kms_per_pixel), 2)
    5.0
    """
    fine = templates.fine
    factor, step = fine.factor, fine.step
    n = x.shape[1]
    rows = np.arange(len(x))
    weight = mask.astype(np.float32)
    # Coarse: every template at whole model pixels over the velocity range.
    reach = int(np.ceil(fine.max_kms / (fine.kms_per_pixel * factor)))
    n_coarse = n // factor
    core = n_coarse - 2 * reach
    coarse, coarse_seen = (_binned(values, factor, n_coarse) for values in (x, weight))
    t_core = np.ascontiguousarray(_binned(templates.x, factor, n_coarse)[:, reach:n_coarse - reach].T)
    windows = np.lib.stride_tricks.sliding_window_view(coarse, core, axis=1)
    seen_windows = np.lib.stride_tricks.sliding_window_view((coarse_seen > 0).astype(np.float32), core, axis=1)
    score = np.matmul(windows, t_core)
    norm = np.matmul(seen_windows, t_core ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(norm > 0, score / np.sqrt(np.where(norm > 0, norm, 1.0)), -np.inf)
    coarse_lag, best = np.divmod(score.reshape(len(x), -1).argmax(axis=1), len(templates.x))
    # Fine: the best template at whole fine pixels around the coarse peak.
    margin = reach * factor + FINE_REACH
    length = n - 2 * margin
    lags = (coarse_lag - reach) * factor
    offsets = np.arange(-FINE_REACH, FINE_REACH + 1)
    template_mask = templates.mask[best][:, margin:n - margin].astype(np.float32)
    template = templates.x[best][:, margin:n - margin] * template_mask
    # Each row's window at a lag is a slice of its own line signal, gathered one lag at a time; over
    # a few fine pixels the overlap hardly changes, so the plain products rank the lags.
    views = np.lib.stride_tricks.sliding_window_view(x, length, axis=1)
    fine_score = np.stack([np.einsum("ni,ni->n", views[rows, margin + lags + offset], template)
                           for offset in offsets], axis=1)
    peak = np.clip(fine_score.argmax(axis=1), 1, 2 * FINE_REACH - 1)
    left, centre, right = (fine_score[rows, peak + k] for k in (-1, 0, 1))
    curvature = left - 2 * centre + right
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    offset = np.clip(np.nan_to_num(offset), -1.0, 1.0)
    rv = C_KMS * np.expm1((lags + offsets[peak] + offset) * step)
    # Error: the residual at the peak over the template's slope, in pixels, then km/s.
    at_peak = margin + lags + offsets[peak]
    seen = np.lib.stride_tricks.sliding_window_view(weight, length, axis=1)[rows, at_peak] * template_mask
    spectrum = views[rows, at_peak] * seen
    slope = np.zeros_like(template)
    slope[:, 1:-1] = 0.5 * (template[:, 2:] - template[:, :-2])
    slope *= seen
    model = template * seen
    tt = np.einsum("ni,ni->n", model, model)
    xt = np.einsum("ni,ni->n", spectrum, model)
    xx = np.einsum("ni,ni->n", spectrum, spectrum)
    with np.errstate(invalid="ignore", divide="ignore"):
        amplitude = xt / tt
        residual = spectrum - amplitude[:, None] * (model - offset[:, None] * slope)
        dof = np.maximum(seen.sum(axis=1) - 2, 1)
        noise = np.sqrt(np.einsum("ni,ni->n", residual, residual) / dof)
        error_pixels = noise / (np.abs(amplitude) * np.sqrt(np.einsum("ni,ni->n", slope, slope)))
        correlation = xt / np.sqrt(xx * tt)
    rv_err = ERROR_SCALE * C_KMS * step * error_pixels
    # A peak beyond the whole model pixels searched (max_kms rounded up; the fine lags reach past
    # them) may be the slope of one further out: no velocity either.
    searched = reach * factor * fine.kms_per_pixel
    bad = ~(np.isfinite(correlation) & (correlation >= MIN_CORRELATION) & np.isfinite(rv_err)
            & (np.abs(rv) <= searched))
    return np.where(bad, np.nan, rv), np.where(bad, np.nan, rv_err)


def velocities(spectra, wave: np.ndarray, flux: np.ndarray, valid: np.ndarray,
               templates: VelocityTemplates | None) -> tuple[np.ndarray, np.ndarray]:
    """The radial velocity to undo, and its error (km/s), of each of ``spectra`` sharing one air wavelength array.

    A known velocity (``Spectrum.rv_kms``) is taken as given, with no error;
    the others are measured against ``templates`` (:func:`measure_rv`) on
    their fine grid, or NaN without templates. ``flux`` and ``valid`` are
    the spectra's stacked ``(N, n)``.
    """
    known = np.array([spectrum.rv_kms for spectrum in spectra], float)
    rv, rv_err = known.copy(), np.full(len(known), np.nan)
    todo = np.flatnonzero(np.isnan(known))
    if templates is not None and todo.size:
        fine = templates.fine
        fine_flux, fine_cover = resample_rows(wave, flux[todo], valid[todo], fine.edges)
        rv[todo], rv_err[todo] = measure_rv(*line_signal(fine_flux, fine_cover, fine), templates)
    return rv, rv_err


def _binned(values: np.ndarray, factor: int, count: int) -> np.ndarray:
    """Sums of ``factor`` consecutive pixels, ``count`` of them from the first, of each row."""
    return sum(values[:, k:count * factor:factor] for k in range(factor))


def rest_frame(flux: np.ndarray, cover: np.ndarray, t_index: np.ndarray, fine: FineGrid,
               rounds: int = 2) -> tuple[VelocityTemplates, np.ndarray]:
    """Templates from spectra as observed, and each spectrum's radial velocity against them (km/s, 0 where none).

    Libraries put their stars at rest each in its own way; the first
    templates average them as they are, and each round measures every
    spectrum against the last templates and rebuilds them from the spectra
    moved to rest, so the templates end sharper and in one common frame
    (that of the libraries on average).
    """
    x, mask = line_signal(flux, cover, fine)
    rv = np.zeros(len(flux))
    for _ in range(rounds):
        templates = VelocityTemplates.build(*shift_fine(flux, cover, fine, rv), t_index, fine)
        rv = np.nan_to_num(measure_rv(x, mask, templates)[0])
    return VelocityTemplates.build(*shift_fine(flux, cover, fine, rv), t_index, fine), rv
