"""Spectra on a common grid: air wavelengths, resampling, continuum, masks.

Every network and the template matcher see a spectrum the same way: air
wavelengths resampled onto a log-uniform grid (equal velocity steps, so a
Doppler shift is a plain translation), divided by a smooth upper-envelope
continuum, minus one, with a mask of the grid pixels the file really covers.
The continuum division is what makes libraries comparable: MILES is flux
calibrated, MKCLASS ``libnor36`` is flux normalised and ``libr18`` is
already rectified, but after division all three show only their lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope.errors import FormatError

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
    """Flux-conserving resampling onto new pixel edges, ignoring invalid pixels.

    Each output pixel is the mean flux of the valid input over its width
    (from the cumulative integral), so a finer input is averaged rather than
    aliased and a coarser one is interpolated piecewise.

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
    mid = 0.5 * (wave[1:] + wave[:-1])
    in_edges = np.concatenate([[wave[0] - (mid[0] - wave[0])], mid, [wave[-1] + (wave[-1] - mid[-1])]])
    width = np.diff(in_edges)
    good = valid.astype(np.float64)
    cum_flux = np.concatenate([[0.0], np.cumsum(flux * good * width)])
    cum_good = np.concatenate([[0.0], np.cumsum(good * width)])
    out_flux = np.diff(np.interp(edges, in_edges, cum_flux))
    out_good = np.diff(np.interp(edges, in_edges, cum_good))
    coverage = out_good / np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(out_good > 0, out_flux / out_good, 0.0)
    return mean, np.clip(coverage, 0.0, 1.0)


def smooth(flux: np.ndarray, mask: np.ndarray, fwhm_pixels: float) -> np.ndarray:
    """Mask-aware Gaussian smoothing: masked pixels neither count nor leak in.

    The one Gaussian of the spectra package. :func:`prepare` uses it to
    bring every library to one resolution: they range from 1 A (MKCLASS
    libr18) to about 10 A (Pickles), and a common coarser resolution is what
    lets a model trained on some libraries read another. Training
    augmentation uses it to blur spectra by random amounts.

    Parameters
    ----------
    flux : numpy.ndarray
    mask : numpy.ndarray of bool
        Pixels with data.
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


def continuum(wave: np.ndarray, flux: np.ndarray, mask: np.ndarray, degree: int = 5, iterations: int = 6) -> np.ndarray:
    """Upper-envelope polynomial continuum.

    A Legendre polynomial is fitted, then points more than one robust sigma
    below it (absorption lines) are dropped and it is refitted, so the fit
    rises to the line-free envelope.

    Parameters
    ----------
    wave, flux : numpy.ndarray
    mask : numpy.ndarray of bool
        Pixels to fit.
    degree : int
    iterations : int

    Returns
    -------
    numpy.ndarray
        Continuum at every ``wave``.
    """
    x = (np.log(wave) - np.log(wave[0])) / (np.log(wave[-1]) - np.log(wave[0])) * 2 - 1
    use = mask.copy()
    fit = np.polynomial.legendre.Legendre.fit(x[use], flux[use], min(degree, max(use.sum() - 1, 0)))
    for _ in range(iterations):
        resid = flux - fit(x)
        sigma = 1.4826 * np.median(np.abs(resid[use])) + 1e-12
        keep = mask & (resid > -sigma)
        if keep.sum() <= degree + 1:
            break
        use = keep
        fit = np.polynomial.legendre.Legendre.fit(x[use], flux[use], degree)
    return fit(x)


def prepare(spectrum, grid: Grid = Grid(), min_coverage: float = 0.4, path: str = "spectrum", fwhm: float = FWHM,
            red_limit: float | None = None) -> np.ndarray:
    """Put one spectrum on the grid: the network and template input.

    Parameters
    ----------
    spectrum : deepscope.spectra.io.Spectrum
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
    wave = to_air(spectrum.wave) if spectrum.medium == "vacuum" else spectrum.wave
    flux, coverage = resample(wave, spectrum.flux, spectrum.valid, grid.edges)
    mask = coverage >= 0.5
    if red_limit is not None:
        mask &= grid.wave <= red_limit
    if fwhm:
        flux = smooth(flux, mask, fwhm / (grid.wave[1] - grid.wave[0]) * grid.wave[0] / np.mean(grid.wave))
    fraction = mask.mean()
    if fraction < min_coverage:
        msg = (f"{path}: covers only {100 * fraction:.0f}% of the model's {grid.start:.0f}-{grid.stop:.0f} A "
               f"grid (spectrum {wave[0]:.0f}-{wave[-1]:.0f} A; need {100 * min_coverage:.0f}%)")
        raise FormatError(msg)
    scale = np.median(np.abs(flux[mask])) or 1.0
    flux = flux / scale
    cont = continuum(grid.wave, flux, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(mask & (cont > 0), flux / cont - 1.0, 0.0)
    # Clipping keeps a stray cosmic ray or a near-zero continuum in an M
    # dwarf's blue end from dominating the input scale.
    out = np.zeros((2, grid.n), dtype=np.float32)
    out[0] = np.clip(norm, -1.5, 1.5)
    out[1] = mask
    return out


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
