"""Spectra with known truth that are no ordinary star: what the ``out_of_distribution`` flag must catch.

A survey holds QSOs, galaxies, blank sky, dead fibres and broken files
besides stars, and a classifier trained on stars gives each a type.
:func:`make_oddity` makes ten such kinds with a fixed seed, from nothing
(noise, continua, power laws) or from a real star's spectrum (flipped,
sign-inverted, drowned in noise), so anyone can rebuild the flag's test
from ``../shared/data``; the demo shows one. Every generator returns
``(wave, flux)`` in air Angstrom; fluxes are in arbitrary units, only their
shape reaches the network.
"""

import numpy as np

# 3700-5700 A at 1 A: wider than the model's 3850-5550 A grid, as a real
# spectrograph's range would be.
DEFAULT_WAVE = np.arange(3700.0, 5700.0, 1.0)
# Second radiation constant in Angstrom * K (h c / k).
_HC_OVER_K = 1.4388e8
# Rest wavelengths (A) and relative strengths of a QSO's broad lines, from the
# Vanden Berk et al. (2001) composite; at z = 2.2 they fall on 3890-5250 A.
_QSO_LINES = ((1215.7, 1.0), (1240.1, 0.25), (1400.0, 0.1), (1549.1, 0.35), (1640.4, 0.05))
QSO_REDSHIFT = 2.2


def _noisy(flux, snr, rng):
    """``flux`` plus white noise of sigma ``median(|flux|) / snr``."""
    return flux + rng.normal(0.0, np.median(np.abs(flux)) / snr, size=flux.shape)


def pure_noise(rng, wave=DEFAULT_WAVE):
    """White noise around zero: an empty or unexposed spectrum."""
    return wave, rng.normal(0.0, 1.0, size=wave.shape)


def flat_continuum(rng, wave=DEFAULT_WAVE, snr=100.0):
    """A constant flux with noise: no lines, no slope."""
    return wave, _noisy(np.ones_like(wave), snr, rng)


def blackbody(temperature, rng, wave=DEFAULT_WAVE, snr=100.0):
    """A Planck spectrum (F_lambda) at ``temperature`` K with 1/``snr`` relative noise.

    Stars span about 2,000-50,000 K; 800 K (a brown dwarf's colour) or
    200,000 K (a bare Rayleigh-Jeans tail) are far outside.

    Examples
    --------
    >>> wave, flux = blackbody(800.0, np.random.default_rng(0))
    >>> bool(flux[-1] > 1e4 * flux[0])  # 800 K rises steeply to the red
    True
    """
    x = _HC_OVER_K / (wave * temperature)
    # Scaled by the red end so 800 K does not underflow to zeros in the blue.
    log_flux = -5.0 * np.log(wave) - x - np.log1p(-np.exp(-x))
    flux = np.exp(log_flux - log_flux.max())
    return wave, flux * (1.0 + rng.normal(0.0, 1.0 / snr, size=wave.shape))


def qso_like(rng, wave=DEFAULT_WAVE, redshift=QSO_REDSHIFT, snr=30.0):
    """A blue power law (F_lambda ~ lambda^-1.5) with broad emission lines (FWHM 5000 km/s)."""
    flux = (wave / 5000.0) ** -1.5
    for rest, strength in _QSO_LINES:
        centre = rest * (1.0 + redshift)
        sigma = centre * 5000.0 / 2.998e5 / 2.3548
        flux = flux + 3.0 * strength * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    # Lyman-alpha forest: absorption blueward of Lyman alpha.
    forest = wave < 1215.7 * (1.0 + redshift)
    flux[forest] *= 1.0 - 0.5 * rng.random(forest.sum())
    return wave, _noisy(flux, snr, rng)


def galaxy_like(star_spectra, rng, wave=DEFAULT_WAVE, redshift=0.05, sigma_kms=250.0, snr=30.0):
    """Real stars' ``(wave, flux)``, each normalised to its median and summed, broadened by ``sigma_kms``,
    redshifted, with nebular emission lines (an old population: give G-K giants and dwarfs and an A star)."""
    from scipy.ndimage import gaussian_filter1d

    # A log-uniform grid makes the velocity broadening one Gaussian width.
    log_wave = np.linspace(np.log(wave[0] / (1 + redshift)) - 0.01, np.log(wave[-1] / (1 + redshift)) + 0.01, 8192)
    rest = np.exp(log_wave)
    total = np.zeros_like(rest)
    for star_wave, star_flux in star_spectra:
        flux = np.interp(rest, star_wave, star_flux)
        total += flux / np.median(flux)
    total = gaussian_filter1d(total, sigma_kms / 2.998e5 / (log_wave[1] - log_wave[0]))
    observed = np.interp(wave, rest * (1.0 + redshift), total)
    level = np.median(observed)
    for centre, strength in ((4861.3, 0.6), (4958.9, 0.5), (5006.8, 1.5), (4340.5, 0.25), (3727.4, 1.2)):
        z_centre = centre * (1.0 + redshift)
        observed = observed + strength * level * np.exp(-0.5 * ((wave - z_centre) / 3.0) ** 2)
    return wave, _noisy(observed, snr, rng)


def wavelength_flipped(wave, flux):
    """The flux run backwards over the same wavelengths (a reversed dispersion axis)."""
    return wave, np.asarray(flux)[::-1].copy()


def sign_flipped(wave, flux):
    """The flux times -1 (a sign error, or an over-subtracted sky)."""
    return wave, -np.asarray(flux, float)


def at_snr(wave, flux, snr, rng):
    """A real spectrum with white noise added to reach a median S/N of ``snr``."""
    return wave, _noisy(np.asarray(flux, float), snr, rng)


def dead_fibre(rng, wave=DEFAULT_WAVE, n_spikes=5):
    """Read noise around a small pedestal plus a few cosmic-ray spikes: a fibre that saw no light.

    The pedestal is not exactly zero because :func:`deepscope.spectra.io.files.read_spectrum`
    treats exact zeros as gaps and would reject the file outright.
    """
    flux = 0.05 + rng.normal(0.0, 0.02, size=wave.shape)
    spikes = rng.choice(wave.size, n_spikes, replace=False)
    flux[spikes] += rng.uniform(5.0, 50.0, n_spikes)
    return wave, flux


ODDITY_KINDS = ("pure_noise", "flat_continuum", "qso_like", "galaxy_like", "blackbody_800K",
                "blackbody_200000K", "wavelength_flipped", "sign_flipped", "star_snr2", "dead_fibre")


def make_oddity(kind, rng, star=None, galaxy_stars=()):
    """One spectrum ``(wave, flux)`` of a named kind (:data:`ODDITY_KINDS`).

    ``star``, a real star's ``(wave, flux)``, is needed by
    ``wavelength_flipped``, ``sign_flipped`` and ``star_snr2``;
    ``galaxy_like`` sums ``galaxy_stars``.

    Raises
    ------
    ValueError
        For an unknown kind, or a kind that needs a star given none.

    Examples
    --------
    >>> wave, flux = make_oddity("flat_continuum", np.random.default_rng(0))
    >>> wave.shape == flux.shape, round(float(np.median(flux)), 1)
    (True, 1.0)
    """
    makers = {
        "pure_noise": lambda: pure_noise(rng),
        "flat_continuum": lambda: flat_continuum(rng),
        "qso_like": lambda: qso_like(rng),
        "galaxy_like": lambda: galaxy_like(galaxy_stars, rng),
        "blackbody_800K": lambda: blackbody(800.0, rng),
        "blackbody_200000K": lambda: blackbody(200_000.0, rng),
        "wavelength_flipped": lambda: wavelength_flipped(*star),
        "sign_flipped": lambda: sign_flipped(*star),
        "star_snr2": lambda: at_snr(*star, 2.0, rng),
        "dead_fibre": lambda: dead_fibre(rng),
    }
    if kind not in makers:
        msg = f"unknown oddity kind {kind!r}; known: {', '.join(ODDITY_KINDS)}"
        raise ValueError(msg)
    if kind in ("wavelength_flipped", "sign_flipped", "star_snr2") and star is None:
        msg = f"oddity kind {kind!r} is made from a real star: pass star=(wave, flux)"
        raise ValueError(msg)
    if kind == "galaxy_like" and not galaxy_stars:
        msg = "oddity kind 'galaxy_like' sums real stars: pass galaxy_stars"
        raise ValueError(msg)
    return makers[kind]()
