"""Spectra on a common grid: air wavelengths, resampling, continuum, masks.

Every network and the template matcher see a spectrum the same way: air
wavelengths resampled onto a log-uniform grid (equal velocity steps, so a
Doppler shift is a plain translation), divided by a smooth upper-envelope
continuum, minus one, with a mask of the grid pixels the file really covers.
The continuum division is what makes libraries comparable: MILES is flux
calibrated, MKCLASS ``libnor36`` is flux normalised and ``libr18`` is
already rectified, but after division all three show only their lines.

The work is done on batches of spectra by
:mod:`deepscope.spectra.preparation.grid_rows`; :func:`prepare` is the batch of
one. :func:`on_grid` (one file) and :func:`grid_rows` (rows sharing one
wavelength array) resample and check coverage; :func:`normalise` smooths,
divides by the continuum and clips a batch already on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope.errors import FormatError
from deepscope.spectra.preparation.grid_rows import BLOCK_ROWS, continuum_rows, masked_median, resample_rows

FWHM = 5.0  # Angstrom: common resolution, coarser than every library's (see smooth)


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


def to_air(wave: np.ndarray) -> np.ndarray:
    """Vacuum to air wavelengths (Morton 2000 / IAU, as used by SDSS).

    Parameters
    ----------
    wave : numpy.ndarray
        Vacuum wavelengths in Angstrom; values below 2000 A are unchanged.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> float(np.round(to_air(np.array([6564.61]))[0], 2))  # H-alpha
    6562.8
    """
    wave = np.asarray(wave, dtype=np.float64)
    s2 = (1e4 / wave) ** 2
    n = 1 + 0.0000834254 + 0.02406147 / (130 - s2) + 0.00015998 / (38.9 - s2)
    return np.where(wave >= 2000, wave / n, wave)


def resample(wave: np.ndarray, flux: np.ndarray, valid: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flux-conserving resampling of one spectrum onto new pixel edges, ignoring invalid pixels.

    :func:`~deepscope.spectra.preparation.grid_rows.resample_rows` on a batch of one.

    Parameters
    ----------
    wave, flux : numpy.ndarray
        Input pixel centres (increasing) and fluxes.
    valid : numpy.ndarray of bool
    edges : numpy.ndarray
        Output pixel edges, increasing.

    Returns
    -------
    flux : numpy.ndarray
        Output fluxes (0 where nothing valid was covered).
    coverage : numpy.ndarray
        Fraction of each output pixel covered by valid input, 0 to 1.
    """
    flux, coverage = resample_rows(wave, np.asarray(flux)[None], np.asarray(valid)[None], edges)
    return flux[0], coverage[0]


def smooth(flux: np.ndarray, mask: np.ndarray, fwhm_pixels: float) -> np.ndarray:
    """Mask-aware Gaussian smoothing along the last axis: masked pixels neither count nor leak in.

    The one Gaussian of the spectra package. :func:`normalise` uses it to
    bring every library to one resolution: they range from 1 A (MKCLASS
    libr18) to about 10 A (Pickles), and a common coarser resolution is what
    lets a model trained on some libraries read another. Training
    augmentation uses it to blur spectra by random amounts.

    Parameters
    ----------
    flux : numpy.ndarray
        One spectrum ``(n,)`` or many ``(N, n)``; each row is smoothed alone.
    mask : numpy.ndarray of bool
        Pixels with data, the shape of ``flux``.
    fwhm_pixels : float
        Full width at half maximum of the Gaussian, in pixels.

    Returns
    -------
    numpy.ndarray
        Float64; each pixel is the Gaussian-weighted mean of the unmasked
        pixels around it (0 where none is near).

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


def air_wave(spectrum) -> np.ndarray:
    """A spectrum's wavelengths in air (converted from vacuum when it says so)."""
    return to_air(spectrum.wave) if spectrum.medium == "vacuum" else spectrum.wave


def grid_rows(wave: np.ndarray, flux: np.ndarray, valid: np.ndarray, grid: Grid, min_coverage: float, names,
              red_limit: float | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Resample rows sharing one air wavelength array onto the grid and check their coverage.

    Parameters
    ----------
    wave : numpy.ndarray
        ``(n,)`` air wavelengths, increasing.
    flux, valid : numpy.ndarray
        ``(N, n)``.
    grid : Grid
    min_coverage : float
        Smallest fraction of grid pixels a row must cover with valid data.
    names : sequence of str
        Each row's name, for its error message.
    red_limit : float, optional
        See :func:`prepare`.

    Returns
    -------
    flux : numpy.ndarray
        ``(N, grid.n)`` resampled flux (the rows that failed included).
    mask : numpy.ndarray of bool
        ``(N, grid.n)`` grid pixels with data.
    errors : list of str or None
        Per row: None, or the message of a row that covers too little of the grid.
    """
    flux, coverage = resample_rows(wave, flux, valid, grid.edges)
    mask = coverage >= 0.5
    if red_limit is not None:
        mask &= grid.wave <= red_limit
    fraction = mask.mean(axis=1)
    errors = [None if part >= min_coverage else
              (f"{name}: covers only {100 * part:.0f}% of the model's {grid.start:.0f}-{grid.stop:.0f} A "
               f"grid (spectrum {wave[0]:.0f}-{wave[-1]:.0f} A; need {100 * min_coverage:.0f}%)")
              for name, part in zip(names, fraction)]
    return flux, mask, errors


def normalise(flux: np.ndarray, mask: np.ndarray, grid: Grid, fwhm: float = FWHM) -> np.ndarray:
    """Finish spectra already on the grid: smooth, divide by the continuum, clip; the network input.

    Parameters
    ----------
    flux : numpy.ndarray
        ``(N, grid.n)`` from :func:`grid_rows`.
    mask : numpy.ndarray of bool
        ``(N, grid.n)``.
    grid : Grid
    fwhm : float
        Gaussian smoothing (Angstrom) applied on the grid, 0 for none.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(N, 2, grid.n)``: flux over continuum minus one (0
        where masked), and the mask (1 = data). Each row depends on its own
        data only.
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


def on_grid(spectrum, grid: Grid = Grid(), min_coverage: float = 0.4, path: str = "spectrum",
            red_limit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One spectrum resampled onto the grid, with its mask: :func:`grid_rows` on a batch of one.

    Parameters
    ----------
    spectrum : deepscope.spectra.io.files.Spectrum
    grid, min_coverage, path, red_limit
        As in :func:`prepare`.

    Returns
    -------
    flux : numpy.ndarray
        ``(grid.n,)``.
    mask : numpy.ndarray of bool
        ``(grid.n,)``.

    Raises
    ------
    FormatError
        If the spectrum covers too little of the grid.
    """
    flux, mask, (error,) = grid_rows(air_wave(spectrum), spectrum.flux[None], spectrum.valid[None], grid,
                                     min_coverage, [path], red_limit)
    if error is not None:
        raise FormatError(error)
    return flux[0], mask[0]


def prepare(spectrum, grid: Grid = Grid(), min_coverage: float = 0.4, path: str = "spectrum", fwhm: float = FWHM,
            red_limit: float | None = None) -> np.ndarray:
    """Put one spectrum on the grid: the network and template input.

    :func:`on_grid` then :func:`normalise`, on a batch of one: a spectrum
    prepared alone equals the same spectrum prepared among many.

    Parameters
    ----------
    spectrum : deepscope.spectra.io.files.Spectrum
    grid : Grid
    min_coverage : float
        Smallest fraction of grid pixels the spectrum must cover with valid
        data (MKCLASS ``libr18``, 3800-4620 A, covers 45% of the default grid).
    path : str
        Named in the error message.
    fwhm : float
        Gaussian smoothing (Angstrom) applied on the grid, 0 for none.
    red_limit : float, optional
        Treat the spectrum as ending here (Angstrom, air), as one taken with
        a bluer spectrograph would: the continuum is then fitted to the
        short range alone, exactly as for a real short spectrum.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(2, grid.n)``: row 0 is flux over
        continuum minus one (0 where masked), row 1 the mask (1 = data).

    Raises
    ------
    FormatError
        If the spectrum covers too little of the grid.
    """
    flux, mask = on_grid(spectrum, grid, min_coverage, path, red_limit)
    return normalise(flux[None], mask[None], grid, fwhm)[0]


def add_noise(x: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    """Add white noise at a given signal-to-noise ratio to prepared spectra.

    Parameters
    ----------
    x : numpy.ndarray
        Prepared spectra ``(..., 2, n)``; the continuum level is 1, so the
        noise sigma is ``1 / snr``.
    snr : float
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        Noisy copy; masked pixels stay 0.
    """
    noisy = x.copy()
    noise = rng.normal(0.0, 1.0 / snr, size=noisy[..., 0, :].shape).astype(noisy.dtype)
    noisy[..., 0, :] = (noisy[..., 0, :] + noise) * noisy[..., 1, :]
    return noisy
