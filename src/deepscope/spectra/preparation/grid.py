"""Spectra onto a model's wavelength grid: the grid, air wavelengths, flux-conserving resampling, coverage.

Every network and the template matcher see a spectrum on one log-uniform
grid of air wavelengths (equal velocity steps, so a Doppler shift is a plain
translation), in the star's rest frame, with a mask of the grid pixels it
really covers: a spectrum whose radial velocity is known or measured
(:mod:`deepscope.spectra.preparation.velocity`, on the finer
:class:`FineGrid`) is resampled from the wavelengths it was observed at onto
the grid's wavelengths as the star's motion moved them. Spectra that
share one wavelength array (the rows of a survey table, the files of a
library) are resampled as one block; each row's numbers depend on that row
alone (the reductions are numpy's own loops, of the same shape whatever the
batch), so a file predicted alone and the same spectrum in a table of a
million give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope.errors import FormatError

C_KMS = 299792.458  # speed of light, km/s
# Radial velocities up to this speed (km/s) either way are measured and undone.
MAX_RV_KMS = 1000.0


@dataclass(frozen=True)
class Grid:
    """A log-uniform wavelength grid in Angstrom (air).

    The default, 580 points over 3850-5550 A, takes the point count of the
    talk's training set A and the range that every labelled library we hold
    covers (MKCLASS ``libnor36`` stops at 5600 A); the classical MK region
    3900-4500 A is inside it. ``n=1900`` gives the talk's set B sampling.

    Attributes
    ----------
    start, stop : float
        First and last pixel centres.
    n : int
        Number of pixels.
    """

    start: float = 3850.0
    stop: float = 5550.0
    n: int = 580

    @property
    def wave(self):
        """Pixel centres (Angstrom)."""
        return np.exp(np.linspace(np.log(self.start), np.log(self.stop), self.n))

    @property
    def edges(self):
        """Pixel edges (``n + 1`` values), geometric midpoints of the centres."""
        log = np.linspace(np.log(self.start), np.log(self.stop), self.n)
        step = log[1] - log[0]
        return np.exp(np.concatenate([log - step / 2, [log[-1] + step / 2]]))

    def as_dict(self):
        """Plain data for checkpoints."""
        return {"start": float(self.start), "stop": float(self.stop), "n": int(self.n)}

    @property
    def log_step(self) -> float:
        """Natural-log wavelength step between pixels."""
        return (np.log(self.stop) - np.log(self.start)) / (self.n - 1)


@dataclass(frozen=True)
class FineGrid:
    """A log-uniform grid ``factor`` times finer than a model's, padded at both ends: where velocities are measured.

    Its pixels are 95 km/s wide for the default grid; the padding keeps
    the model grid of a star moving at up to ``max_kms`` on it. Every model
    pixel centre is a fine pixel centre.

    Examples
    --------
    >>> fine = FineGrid(Grid())
    >>> fine.n, round(fine.kms_per_pixel, 1), bool(np.isclose(fine.wave[fine.pad], 3850.0))
    (1185, 94.7, True)
    """

    grid: Grid = Grid()
    factor: int = 2
    max_kms: float = MAX_RV_KMS

    @property
    def step(self) -> float:
        """Natural-log wavelength step between fine pixels."""
        return self.grid.log_step / self.factor

    @property
    def pad(self) -> int:
        """Fine pixels beyond the model grid's end centres at each end: the shift and half a model pixel."""
        return int(np.ceil((np.log1p(self.max_kms / C_KMS) + self.grid.log_step / 2) / self.step)) + 1

    @property
    def n(self) -> int:
        """Number of fine pixels."""
        return (self.grid.n - 1) * self.factor + 1 + 2 * self.pad

    @property
    def log_wave(self) -> np.ndarray:
        """Natural logs of the pixel centres."""
        return np.log(self.grid.start) + self.step * np.arange(-self.pad, self.n - self.pad)

    @property
    def wave(self) -> np.ndarray:
        """Pixel centres (Angstrom)."""
        return np.exp(self.log_wave)

    @property
    def edges(self) -> np.ndarray:
        """Pixel edges (``n + 1`` values)."""
        return np.exp(np.concatenate([self.log_wave - self.step / 2, [self.log_wave[-1] + self.step / 2]]))

    @property
    def kms_per_pixel(self) -> float:
        """The velocity step of one fine pixel (km/s)."""
        return float(C_KMS * np.expm1(self.step))


def to_air(wave: np.ndarray) -> np.ndarray:
    """Vacuum to air wavelengths in Angstrom (Morton 2000 / IAU, as SDSS); values below 2000 A unchanged.

    Examples
    --------
    >>> float(np.round(to_air(np.array([6564.61]))[0], 2))  # H-alpha
    6562.8
    """
    wave = np.asarray(wave, dtype=np.float64)
    s2 = (1e4 / wave) ** 2
    n = 1 + 0.0000834254 + 0.02406147 / (130 - s2) + 0.00015998 / (38.9 - s2)
    return np.where(wave >= 2000, wave / n, wave)


def air_wave(spectrum) -> np.ndarray:
    """A spectrum's wavelengths in air (converted from vacuum when it says so)."""
    return to_air(spectrum.wave) if spectrum.medium == "vacuum" else spectrum.wave


def _interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, row)`` for every row of ``fp``, with np.interp's own arithmetic.

    ``x`` is ``(m,)``, shared by every row, or ``(N, m)``, one set per row.
    The bracketing pixel and the distance into it depend on ``x`` and
    ``xp`` only, so they are found once for all rows; each value is then
    ``slope * (x - xp[j]) + fp[j]`` exactly as numpy's C loop computes it,
    which keeps the result bit for bit that of the one-row call.
    """
    j = np.searchsorted(xp, x, side="right") - 1
    inside = (j >= 0) & (j < xp.size - 1)
    jj = np.clip(j, 0, xp.size - 2)
    if jj.ndim == 1:
        lo, hi = fp[:, jj], fp[:, jj + 1]
    else:
        lo, hi = np.take_along_axis(fp, jj, axis=1), np.take_along_axis(fp, jj + 1, axis=1)
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

    ``wave`` ``(n,)`` are increasing input pixel centres, ``flux`` and
    ``valid`` ``(N, n)``, ``edges`` ``(m + 1,)`` increasing output pixel
    edges, or ``(N, m + 1)``: each row's own. Returns the ``(N, m)`` fluxes (0 where nothing valid was covered)
    and the fraction of each output pixel covered by valid input.

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
    used = max(2, min(int(np.searchsorted(in_edges, np.max(edges[..., -1]), side="right")) + 1, in_edges.size))
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
    # Each row's own edges, where rows have their own.
    edges_of = (lambda rows: edges) if edges.ndim == 1 else (lambda rows: edges[rows])
    if whole.any():
        out_good[whole] = np.diff(_interp_rows(edges_of(whole), in_edges, np.r_[0.0, np.cumsum(width)][None]), axis=1)
    if partial.size:
        cum_good = np.zeros((partial.size, used))
        np.cumsum(good * width, axis=1, out=cum_good[:, 1:])
        out_good[partial] = np.diff(_interp_rows(edges_of(partial), in_edges, cum_good), axis=1)
    coverage = out_good / np.diff(edges, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(out_good > 0, out_flux / out_good, 0.0)
    return mean, np.clip(coverage, 0.0, 1.0)


def grid_rows(wave: np.ndarray, flux: np.ndarray, valid: np.ndarray, grid: Grid, min_coverage: float, names,
              red_limit: float | None = None, rv: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Resample rows sharing one air wavelength array onto the grid, each in its rest frame, and check their coverage.

    Parameters
    ----------
    wave : numpy.ndarray
        ``(n,)`` air wavelengths, increasing.
    flux, valid : numpy.ndarray
        ``(N, n)``.
    grid : Grid
    min_coverage : float
        Smallest fraction of grid pixels a row must cover with valid data
        (MKCLASS ``libr18``, 3800-4620 A, covers 45% of the default grid).
    names : sequence of str
        Each row's name, for its error message.
    red_limit : float, optional
        Treat the rows as ending here (Angstrom, air), as spectra taken with
        a bluer spectrograph would, so that the continuum is fitted to the
        short range alone, as a real short spectrum's is.
    rv : numpy.ndarray, optional
        ``(N,)`` radial velocity of each row (km/s, positive receding:
        ``lambda_observed = lambda_rest * (1 + rv / c)``): the row is
        resampled at the grid's edges as that motion moved them. None, NaN
        or 0: as read (the same bits as no shift).

    Returns
    -------
    flux, mask : numpy.ndarray
        ``(N, grid.n)`` resampled flux (failed rows included) and grid pixels with data.
    errors : list of str or None
        Per row: None, or the message of a row that covers too little of the grid.
    """
    edges = grid.edges
    if rv is not None and np.any(np.nan_to_num(rv) != 0):
        edges = edges[None] * np.where(np.isfinite(rv), 1.0 + np.nan_to_num(rv) / C_KMS, 1.0)[:, None]
    flux, coverage = resample_rows(wave, flux, valid, edges)
    mask = coverage >= 0.5
    if red_limit is not None:
        mask &= grid.wave <= red_limit
    fraction = mask.mean(axis=1)
    errors = [None if part >= min_coverage else
              (f"{name}: covers only {100 * part:.0f}% of the model's {grid.start:.0f}-{grid.stop:.0f} A "
               f"grid (spectrum {wave[0]:.0f}-{wave[-1]:.0f} A; need {100 * min_coverage:.0f}%)")
              for name, part in zip(names, fraction)]
    return flux, mask, errors


def on_grid(spectrum, grid: Grid = Grid(), min_coverage: float = 0.4, path: str = "spectrum",
            red_limit: float | None = None, rv: float = float("nan")) -> tuple[np.ndarray, np.ndarray]:
    """One :class:`~deepscope.spectra.io.spectrum.Spectrum` on the grid, ``(flux, mask)``: :func:`grid_rows` on a
    batch of one (``rv``: its radial velocity in km/s, undone; NaN: as read).

    Raises
    ------
    FormatError
        Naming ``path``, if the spectrum covers too little of the grid.
    """
    flux, mask, (error,) = grid_rows(air_wave(spectrum), spectrum.flux[None], spectrum.valid[None], grid,
                                     min_coverage, [path], red_limit, np.array([rv]))
    if error is not None:
        raise FormatError(error)
    return flux[0], mask[0]
