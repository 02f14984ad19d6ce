"""The grid steps of :mod:`deepscope.spectra.preparation.grid` on many spectra at once (no torch here).

A survey table holds spectra by the hundred thousand; putting them on the
grid one at a time spent most of ``spectra predict``'s time in Python and
in small numpy calls. These functions take a block of rows and do each
step for all of them in a few array operations:

* :func:`resample_rows`: rows sharing one wavelength array (the common case
  in survey tables) go through one cumulative integral and one set of
  interpolation weights;
* :func:`masked_median`: the median of each row's unmasked values, what
  ``np.median(row[mask])`` gives;
* :func:`continuum_rows`: the iterative upper-envelope Legendre fit that
  finishes every spectrum (:func:`~deepscope.spectra.preparation.grid.normalise`),
  as weighted least squares with one design matrix and one normal-equation
  solve per iteration.

Every row's result depends on that row alone, never on which rows share its
batch: the reductions are numpy's own loops (``cumsum``) or one BLAS or
LAPACK call per row, of the same shape whatever the batch (a stacked
``matmul`` of ``(1, n)`` rows, one solve per row), never one matrix product
over the whole batch, whose summation order changes with the batch shape.
So a file predicted alone and the same spectrum in a table of a million
give the same numbers, and a batch of one is the one-spectrum path.
"""

from __future__ import annotations

import numpy as np

# Rows per block for the steps that go through many arrays of a batch in turn: at 128 rows a
# 580-pixel float64 array is 0.6 MB, so a step's arrays stay in a core's 2 MB cache; whole
# partitions of 1024 rows ran 10-20% slower (normalise 0.105 against 0.092 CPU ms per row).
BLOCK_ROWS = 128


def _interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, row)`` for every row of ``fp``, with np.interp's own arithmetic.

    The bracketing pixel and the distance into it depend on ``x`` and
    ``xp`` only, so they are found once for all rows; each value is then
    ``slope * (x - xp[j]) + fp[j]`` exactly as numpy's C loop computes it,
    which keeps the result bit for bit that of the one-row call.
    """
    j = np.searchsorted(xp, x, side="right") - 1
    inside = (j >= 0) & (j < xp.size - 1)
    jj = np.clip(j, 0, xp.size - 2)
    lo, hi = fp[:, jj], fp[:, jj + 1]
    slope = (hi - lo) / (xp[jj + 1] - xp[jj])
    value = np.where(x == xp[jj], lo, slope * (x - xp[jj]) + lo)
    # Outside the range np.interp returns the end values (0 and the total for a cumulative integral).
    return np.where(inside, value, np.where(j < 0, fp[:, :1], fp[:, -1:]))


def resample_rows(wave: np.ndarray, flux: np.ndarray, valid: np.ndarray,
                  edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flux-conserving resampling of rows that share one wavelength array.

    Each output pixel is the mean flux of the valid input over its width
    (from the cumulative integral): a finer input is averaged rather than
    aliased, a coarser one interpolated piecewise.

    Parameters
    ----------
    wave : numpy.ndarray
        ``(n,)`` input pixel centres, increasing, common to every row.
    flux : numpy.ndarray
        ``(N, n)`` fluxes.
    valid : numpy.ndarray of bool
        ``(N, n)``: pixels with data.
    edges : numpy.ndarray
        ``(m + 1,)`` output pixel edges, increasing.

    Returns
    -------
    flux : numpy.ndarray
        ``(N, m)`` output fluxes (0 where nothing valid was covered).
    coverage : numpy.ndarray
        ``(N, m)`` fraction of each output pixel covered by valid input, 0 to 1.

    Examples
    --------
    >>> wave = np.arange(10.0)
    >>> flux = np.vstack([np.ones(10), np.arange(10.0)])
    >>> out, coverage = resample_rows(wave, flux, flux > 0, np.array([-0.5, 4.5, 9.5]))
    >>> out.tolist(), coverage.tolist()
    ([[1.0, 1.0], [2.5, 7.0]], [[1.0, 1.0], [0.8, 1.0]])
    """
    mid = 0.5 * (wave[1:] + wave[:-1])
    in_edges = np.concatenate([[wave[0] - (mid[0] - wave[0])], mid, [wave[-1] + (wave[-1] - mid[-1])]])
    # A running sum is the same up to the last input edge past the grid's end, whatever follows:
    # the pixels redward of it (half of a MILES spectrum) are left out of the sums.
    used = max(2, min(int(np.searchsorted(in_edges, edges[-1], side="right")) + 1, in_edges.size))
    in_edges = in_edges[:used]
    width = np.diff(in_edges)
    flux, valid = flux[:, :used - 1], valid[:, :used - 1]
    # Rows valid throughout (most) need no weights (times 1.0 changes no bit) and share one
    # integral of the valid width, computed once.
    whole = valid.all(axis=1)
    partial = np.flatnonzero(~whole)
    good = valid[partial].astype(np.float64)
    weighted = flux * width
    weighted[partial] = flux[partial] * good * width
    cum_flux = np.zeros((len(flux), used))
    np.cumsum(weighted, axis=1, out=cum_flux[:, 1:])
    out_flux = np.diff(_interp_rows(edges, in_edges, cum_flux), axis=1)
    out_good = np.empty(out_flux.shape)
    if whole.any():
        out_good[whole] = np.diff(_interp_rows(edges, in_edges, np.r_[0.0, np.cumsum(width)][None]), axis=1)
    if partial.size:
        cum_good = np.zeros((partial.size, used))
        np.cumsum(good * width, axis=1, out=cum_good[:, 1:])
        out_good[partial] = np.diff(_interp_rows(edges, in_edges, cum_good), axis=1)
    coverage = out_good / np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(out_good > 0, out_flux / out_good, 0.0)
    return mean, np.clip(coverage, 0.0, 1.0)


def masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The median of each row's values where ``mask`` is set: ``np.median(values[i][mask[i]])`` per row.

    Masked-out values are sorted past the end as ``inf``, so each row's
    median sits at ranks ``(k - 1) // 2`` and ``k // 2`` of its ``k`` kept
    values; the mean of those two is computed as ``np.median`` does, so the
    result is the same number.

    Parameters
    ----------
    values : numpy.ndarray
        ``(N, n)`` finite values.
    mask : numpy.ndarray of bool
        ``(N, n)``.

    Returns
    -------
    numpy.ndarray
        ``(N,)``; NaN for a row with nothing kept.

    Examples
    --------
    >>> values = np.array([[5.0, 1.0, 3.0, 100.0], [4.0, 2.0, 8.0, 6.0]])
    >>> masked_median(values, np.array([[True, True, True, False], [True] * 4])).tolist()
    [3.0, 5.0]
    """
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    count = mask.sum(axis=1)
    rows = np.arange(len(values))
    lower = ordered[rows, np.maximum(count - 1, 0) // 2]
    upper = ordered[rows, count // 2]
    with np.errstate(invalid="ignore"):
        median = np.where(count % 2 == 1, lower, (lower + upper) / 2)
    return np.where(count > 0, median, np.nan)


def _fit_rows(basis: np.ndarray, pairs: np.ndarray, flux: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Least-squares polynomial of each row through its ``use`` pixels, evaluated on every pixel.

    Normal equations ``(B' W B) c = B' W f`` with 0/1 weights ``W``; the
    Legendre basis on [-1, 1] keeps them well conditioned (the fitted
    continua agree with a QR least-squares fit to float32 rounding on every
    real spectrum we hold). Each product is a stacked ``matmul`` of one
    ``(1, n)`` row at a time, so each row's sums keep their order whatever
    the batch (see the module docstring); that is also 2-3 times faster
    than ``einsum``'s own loop.
    """
    size = basis.shape[1]
    weight = use.astype(np.float64)[:, None, :]
    upper = np.matmul(weight, pairs)[:, 0]
    gram = np.empty((len(flux), size, size))
    rows, cols = np.triu_indices(size)
    gram[:, rows, cols] = upper
    gram[:, cols, rows] = upper
    rhs = np.matmul(weight * flux[:, None, :], basis)
    coef = np.linalg.solve(gram, rhs.transpose(0, 2, 1))
    return np.matmul(coef.transpose(0, 2, 1), basis.T)[:, 0]


def continuum_rows(wave: np.ndarray, flux: np.ndarray, mask: np.ndarray, degree: int = 5,
                   iterations: int = 6) -> np.ndarray:
    """Upper-envelope polynomial continuum of many spectra on one grid.

    Row by row: a Legendre polynomial is fitted to the masked pixels, then, up to
    ``iterations`` times, points more than one robust sigma (1.4826 times
    the median absolute residual of the pixels last fitted) below it are
    dropped and it is refitted; a row stops for good when that would leave
    ``degree + 1`` points or fewer, or when it would keep the pixels it
    has (refitting them would give the same fit, bit for bit).

    Parameters
    ----------
    wave : numpy.ndarray
        ``(n,)`` grid wavelengths.
    flux : numpy.ndarray
        ``(N, n)``.
    mask : numpy.ndarray of bool
        ``(N, n)`` pixels to fit.
    degree, iterations : int

    Returns
    -------
    numpy.ndarray
        ``(N, n)`` continuum at every grid wavelength.

    Examples
    --------
    >>> wave = np.linspace(4000.0, 5000.0, 200)
    >>> flux = np.vstack([np.full(200, 2.0), np.linspace(1.0, 3.0, 200)])
    >>> flux[:, 100] -= 1.0  # an absorption line: left below the envelope
    >>> cont = continuum_rows(wave, flux, np.ones((2, 200), bool))
    >>> cont[:, 100].round(3).tolist()
    [2.0, 2.005]
    """
    x = (np.log(wave) - np.log(wave[0])) / (np.log(wave[-1]) - np.log(wave[0])) * 2 - 1
    basis = np.polynomial.legendre.legvander(x, degree)
    rows, cols = np.triu_indices(degree + 1)
    pairs = basis[:, rows] * basis[:, cols]
    fit = np.zeros(flux.shape)
    use = mask.copy()
    # Too few pixels for the full degree: the one-spectrum rule fits a lower
    # degree once and stops, so these rare rows take that path.
    few = use.sum(axis=1) <= degree
    for i in np.flatnonzero(few):
        fit[i] = np.polynomial.legendre.Legendre.fit(x[use[i]], flux[i, use[i]], max(use[i].sum() - 1, 0))(x)
    active = ~few
    if active.any():
        fit[active] = _fit_rows(basis, pairs, flux[active], use[active])
    for _ in range(iterations):
        if not active.any():
            break
        resid = flux[active] - fit[active]
        sigma = 1.4826 * masked_median(np.abs(resid), use[active]) + 1e-12
        keep = mask[active] & (resid > -sigma[:, None])
        # A row whose pixels did not change would be refitted to the same bits, again and again:
        # it is done, like one that would keep too few.
        going = (keep.sum(axis=1) > degree + 1) & (keep != use[active]).any(axis=1)
        active[active] = going
        if going.any():
            use[active] = keep[going]
            fit[active] = _fit_rows(basis, pairs, flux[active], use[active])
    return fit
