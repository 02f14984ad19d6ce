"""Spectra on the grid -> the network input: a common resolution, continuum division, clipping (no torch here).

Each spectrum is smoothed to one resolution coarser than every library's,
divided by a smooth upper-envelope continuum and offset by one, so that only
its lines remain: MILES is flux calibrated, MKCLASS ``libnor36`` flux
normalised and ``libr18`` already rectified, and after division all three
look alike. The steps run on blocks of rows in a few array operations; a
row's result depends on that row alone (one same-shaped BLAS or LAPACK call
per row, never one product over the batch, whose summation order changes
with its shape), so a spectrum normalised alone equals the same spectrum
normalised among many.
"""

from __future__ import annotations

import numpy as np

from deepscope.spectra.preparation.grid import Grid

FWHM = 5.0  # Angstrom: the common resolution, coarser than every library's (see smooth)
# Rows per block for the steps that go through many arrays of a batch in turn: a block's
# arrays stay in a core's cache (whole 1024-row partitions ran 10-20% slower).
BLOCK_ROWS = 128


def smooth(flux: np.ndarray, mask: np.ndarray, fwhm_pixels: float) -> np.ndarray:
    """Mask-aware Gaussian smoothing (FWHM in pixels) along the last axis: masked pixels neither count nor leak in.

    Each pixel of ``flux`` (``(n,)`` or ``(N, n)``) becomes the
    Gaussian-weighted mean of the pixels of ``mask`` around it (0 where none
    is near). :func:`normalise` uses it to bring every library to one
    resolution (they range from 1 A, MKCLASS libr18, to about 10 A, Pickles);
    training augmentation to blur spectra by random amounts.

    Examples
    --------
    >>> flux = np.array([1.0, 1.0, 9.0, 1.0, 1.0])
    >>> mask = np.array([True, True, False, True, True])
    >>> smooth(flux, mask, 2.0).round(3).tolist()  # the masked 9 does not leak in
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    from scipy.ndimage import gaussian_filter1d

    sigma = fwhm_pixels / 2.3548
    weight = gaussian_filter1d(mask.astype(np.float64), sigma, mode="constant")
    total = gaussian_filter1d(np.where(mask, flux, 0.0), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, 0.0)


def masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The median of each row's values where ``mask`` is set: ``np.median(values[i][mask[i]])``, NaN for none.

    Masked-out values sort past the end as ``inf``, so each row's median sits
    at ranks ``(k - 1) // 2`` and ``k // 2`` of its ``k`` kept values, and is
    computed from them as ``np.median`` computes it: the same number.

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

    ``wave`` ``(n,)`` are the grid wavelengths, ``flux`` and ``mask`` (the
    pixels to fit) ``(N, n)``; returns the ``(N, n)`` continuum.

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


def normalise(flux: np.ndarray, mask: np.ndarray, grid: Grid, fwhm: float = FWHM) -> np.ndarray:
    """Finish spectra already on the grid: smooth, divide by the continuum, clip; the network input.

    Parameters
    ----------
    flux : numpy.ndarray
        ``(N, grid.n)`` from :func:`~deepscope.spectra.preparation.grid.grid_rows`.
    mask : numpy.ndarray of bool
        ``(N, grid.n)``.
    grid : Grid
    fwhm : float
        Gaussian smoothing (Angstrom) applied on the grid, 0 for none.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(N, 2, grid.n)``: flux over continuum minus one (0
        where masked), and the mask (1 = data).
    """
    if len(flux) > BLOCK_ROWS:
        return np.concatenate([normalise(flux[lo:lo + BLOCK_ROWS], mask[lo:lo + BLOCK_ROWS], grid, fwhm)
                               for lo in range(0, len(flux), BLOCK_ROWS)])
    if fwhm:
        flux = smooth(flux, mask, fwhm / (grid.wave[1] - grid.wave[0]) * grid.wave[0] / np.mean(grid.wave))
    scale = masked_median(np.abs(flux), mask)
    flux = flux / np.where(scale == 0, 1.0, scale)[:, None]
    cont = continuum_rows(grid.wave, flux, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(mask & (cont > 0), flux / cont - 1.0, 0.0)
    # Clipping keeps a stray cosmic ray or a near-zero continuum in an M
    # dwarf's blue end from dominating the input scale.
    out = np.zeros((len(flux), 2, grid.n), dtype=np.float32)
    out[:, 0] = np.clip(norm, -1.5, 1.5)
    out[:, 1] = mask
    return out
