"""One spectrum as read, and the checks every reader ends with (no torch here).

Apart from the readers, so that the FITS readers, the text/dispatch module
and the bulk tables share it without importing each other.
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from deepscope.errors import FormatError

# Spellings found in spectral headers that astropy.units reads as something
# else ("A" is the ampere, "a" the year) or not at all (plurals, capitals).
# Looked up in lower case, so "NM" or "ANGSTROM" read as they always did.
_UNIT_ALIASES = {"a": "Angstrom", "aa": "Angstrom", "angstrom": "Angstrom", "angstroms": "Angstrom",
                 "0.1 nm": "Angstrom", "nm": "nm", "nanometer": "nm", "nanometers": "nm", "um": "um",
                 "micron": "um", "microns": "um", "m": "m", "meter": "m", "meters": "m"}


@dataclass(frozen=True)
class ColumnNames:
    """Which named columns of a table or text file hold the spectrum.

    None leaves the choice to the reader: the first of the column names it
    knows (``WAVELENGTH``, ``LOGLAM``, ``FLUX`` ...), or the first two
    columns of a text file. Names are compared case-insensitively.
    """

    wave: str | None = None  # wavelengths (Angstrom unless the file gives a unit) or log-wavelengths
    flux: str | None = None  # fluxes
    ivar: str | None = None  # inverse variances: pixels with ivar <= 0 are invalid


@dataclass
class Spectrum:
    """One spectrum as read from a file.

    Attributes
    ----------
    wave : numpy.ndarray
        Wavelengths in Angstrom, increasing.
    flux : numpy.ndarray
        Flux (any units; only shapes matter after continuum normalisation).
    valid : numpy.ndarray of bool
        False for gaps and bad pixels.
    medium : str
        ``"air"`` or ``"vacuum"``.
    medium_source : str
        ``"header"`` when the file said so, ``"convention"`` when assumed,
        ``"option"`` for bulk-table rows (the medium the command was given).
    meta : dict
        Format name and header values worth keeping (object, spectral type).
    rv_kms : float
        The star's radial velocity (km/s) when known (a table's ``--rv-column``),
        else NaN: measured before typing.
    """

    wave: np.ndarray
    flux: np.ndarray
    valid: np.ndarray
    medium: str = "air"
    medium_source: str = "convention"
    meta: dict = field(default_factory=dict)
    rv_kms: float = float("nan")


def wavelength_scale(path, unit) -> float:
    """Factor from a header's wavelength ``unit`` (``CUNIT1``, ``TUNITn``; blank or None: Angstrom) to Angstrom.

    Raises
    ------
    FormatError
        Naming ``path``, if the unit is not a length astropy.units knows.

    Examples
    --------
    >>> wavelength_scale("star.fits", "nm"), wavelength_scale("star.fits", "Angstroms")
    (10.0, 1.0)
    """
    if unit is None or not str(unit).strip():
        return 1.0
    scale = _angstrom_per(str(unit).strip())
    if scale is None:
        msg = f"{path}: unsupported wavelength unit {unit!r}; use Angstrom, nm, um or m"
        raise FormatError(msg)
    return scale


@functools.lru_cache(maxsize=64)
def _angstrom_per(text):
    """Angstrom per ``text`` unit, or None when it is no length; cached, as files repeat their units."""
    import astropy.units as u

    try:
        parsed = u.Unit(_UNIT_ALIASES.get(text.lower(), text))
    except (ValueError, TypeError):
        return None
    if not parsed.is_equivalent(u.AA):
        return None
    # astropy composes nm -> Angstrom as 1e-9 / 1e-10 = 9.999999999999998;
    # twelve significant digits give back the exact factor, so a file in nm
    # reads to the same wavelengths as the same file in Angstrom.
    return float(f"{parsed.to(u.AA):.12g}")


def finish_spectrum(path, wave, flux, valid, medium, medium_source, meta) -> Spectrum:
    """Flatten, validate and sort what a reader found (wavelengths in Angstrom, fluxes, its own validity flags).

    Non-finite and exactly-zero fluxes are flagged invalid.

    Raises
    ------
    FormatError
        Naming ``path``, if the arrays do not match, nothing is valid or wavelengths are not positive.
    """
    wave = np.asarray(wave, dtype=np.float64).ravel()
    flux = np.asarray(flux, dtype=np.float64).ravel()
    valid = np.asarray(valid, dtype=bool).ravel()
    if wave.size != flux.size or wave.size < 2:
        msg = f"{path}: wavelength and flux arrays do not match ({wave.size} vs {flux.size} values)"
        raise FormatError(msg)
    valid &= np.isfinite(flux) & np.isfinite(wave) & (flux != 0.0)
    if not valid.any():
        msg = f"{path}: no valid flux values (all NaN, infinite or zero)"
        raise FormatError(msg)
    # Real files are not always sorted (one MKCLASS libr18 file repeats a
    # row out of order at its start), so sort and drop repeated wavelengths.
    wave = np.where(np.isfinite(wave), wave, -1.0)
    if not np.all(wave[1:] > wave[:-1]):  # sorted without repeats (nearly every file) is what np.unique gives
        wave, keep = np.unique(wave, return_index=True)
        flux, valid = flux[keep], valid[keep]
    if wave.size < 2 or wave[0] <= 0:
        msg = f"{path}: wavelengths are not positive finite numbers"
        raise FormatError(msg)
    return Spectrum(wave, np.where(valid, flux, 0.0), valid, medium, medium_source, meta)
