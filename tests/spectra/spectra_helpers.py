"""What several spectra tests share: toy stars of known type, and one spectrum made into the network input.

:func:`synthetic_spectrum` is not stellar physics: a Planck-like continuum at
a temperature that falls with the temperature index, helium lines strongest
near B0, Balmer lines near A0, metal lines that grow towards K, a
"molecular" band for M, lines narrowed in giants; enough that type and
spectrum are tied in a way a network can learn and a template matcher can
match. Import as ``spectra.spectra_helpers``.
"""

import numpy as np

from deepscope.spectra.mktype import format_type, index_to_parts
from deepscope.spectra.preparation.continuum import normalise
from deepscope.spectra.preparation.grid import Grid, on_grid
from deepscope.spectra.synthetic import DEFAULT_WAVE

_BALMER = (3889.0, 3970.1, 4101.7, 4340.5, 4861.3)
_METALS = (3933.7, 3968.5, 4226.7, 4307.9, 5167.3, 5183.6, 5269.5)
_HELIUM = (4026.2, 4387.9, 4471.5, 4921.9)


def prepare(spectrum, grid=Grid(), min_coverage=0.4, path="spectrum", red_limit=None):
    """``(2, grid.n)`` network input of one spectrum: on the grid, then normalised as a batch of one."""
    flux, mask = on_grid(spectrum, grid, min_coverage, path, red_limit)
    return normalise(flux[None], mask[None], grid)[0]


def synthetic_spectrum(t_index, lum_class=5, wave=None, snr=100.0, rng=None):
    """One toy spectrum ``(wave, flux)`` of temperature index ``t_index`` (O0 = 0 ... M9.5 = 69.5).

    ``lum_class`` 1 (I) to 5 (V): higher classes get broader lines. ``snr``
    is the continuum's signal-to-noise ratio.
    """
    rng = np.random.default_rng() if rng is None else rng
    wave = DEFAULT_WAVE if wave is None else np.asarray(wave, float)
    temperature = 40000.0 * np.exp(-t_index / 22.0) + 2500.0
    x = 1.4388e8 / (wave * temperature)  # h c / k in Angstrom K
    flux = 1.0 / (wave ** 5 * np.expm1(x))
    flux /= flux.mean()
    width = 1.0 + 0.6 * lum_class
    balmer = 0.6 * np.exp(-((t_index - 20.0) / 12.0) ** 2)
    metals = 0.6 / (1.0 + np.exp(-(t_index - 42.0) / 5.0))
    profile = np.ones_like(wave)
    for centre in _BALMER:
        profile -= balmer * np.exp(-0.5 * ((wave - centre) / (2.5 * width)) ** 2)
    helium = 0.4 * np.exp(-((t_index - 10.0) / 6.0) ** 2)
    for centre in _HELIUM:
        profile -= helium * np.exp(-0.5 * ((wave - centre) / width) ** 2)
    for centre in _METALS:
        profile -= metals * np.exp(-0.5 * ((wave - centre) / width) ** 2)
    if t_index >= 60:
        band = np.clip((t_index - 58.0) / 12.0, 0, 1) * 0.5
        profile -= band * ((wave > 4760) & (wave < 4950))
    flux = flux * np.clip(profile, 0.05, None)
    flux = flux + rng.normal(0.0, flux.mean() / snr, size=wave.size)
    return wave, flux


def synthetic_library(n, seed=0, snr=100.0):
    """``n`` toy ``(wave, flux, sptype)`` triples spanning O5-M5 and luminosity classes I, III and V."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = float(rng.integers(10, 131)) / 2.0 + 2.5  # O5 ... M5 in half subclasses
        lum = int(rng.choice([1, 3, 5]))
        wave, flux = synthetic_spectrum(t, lum, snr=snr, rng=rng)
        main, sub = index_to_parts(t)
        out.append((wave, flux, format_type(main, sub, lum)))
    return out
