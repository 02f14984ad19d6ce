"""FITS spectrum readers: 1-D images with a wavelength WCS, binary tables, SDSS spec files.

:func:`deepscope.spectra.io.files.read_spectrum` opens the file and picks one of
these by content; each takes the opened ``HDUList`` and returns a
:class:`~deepscope.spectra.io.spectrum.Spectrum` (no torch here).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from deepscope.errors import FormatError, first_line
from deepscope.spectra.io.spectrum import ColumnNames, Spectrum, finish_spectrum, wavelength_scale

# Column names seen in real spectral tables, compared case-insensitively.
WAVE_COLUMNS = ("wavelength", "wave", "lambda", "lam", "wavelen", "awav")
LOGWAVE_COLUMNS = ("loglam", "loglambda", "logwave", "log_wave", "log_lambda", "lnlam", "ln_wave")
FLUX_COLUMNS = ("flux", "flam", "spectrum", "fnu", "f_lambda", "intensity")
IVAR_COLUMNS = ("ivar",)
ERROR_COLUMNS = ("error", "err", "sigma", "properr", "flux_err", "fluxerr", "noise")
# Every card read_fits_image looks at.
IMAGE_CARDS = frozenset({"CRVAL1", "CRPIX1", "CDELT1", "CD1_1", "PC1_1", "COEFF0", "COEFF1", "CTYPE1", "CUNIT1",
                         "DC-FLAG", "WFITTYPE", "VACUUM", "AIRORVAC", "OBJECT", "SPECTYPE", "SPTYPE"})


def header_cards(header, keywords) -> dict:
    """The values of upper-case ``keywords`` present in an astropy ``header``, in one pass over its cards.

    The first of repeated cards, None for an undefined value, as
    ``header[keyword]`` gives them; a dozen lookups in a ``Header`` cost
    more than this pass over a small file's header.

    Examples
    --------
    >>> from astropy.io import fits
    >>> header = fits.Header([("CRVAL1", 3540.5), ("CDELT1", 0.9), ("CRVAL1", 1.0), ("OBJECT", None)])
    >>> header_cards(header, {"CRVAL1", "OBJECT", "CUNIT1"})
    {'CRVAL1': 3540.5, 'OBJECT': None}
    """
    from astropy.io.fits.card import UNDEFINED

    found = {}
    for card in header.cards:
        keyword = card.keyword
        if keyword in keywords and keyword not in found:
            value = card.value
            found[keyword] = None if value == UNDEFINED else value
    return found


def _header_medium(header, default):
    """Air or vacuum from the header, else the format's convention."""
    if "VACUUM" in header:
        return ("vacuum" if bool(header["VACUUM"]) else "air"), "header"
    airorvac = str(header.get("AIRORVAC", "")).strip().lower()
    if airorvac.startswith("vac"):
        return "vacuum", "header"
    if airorvac.startswith("air"):
        return "air", "header"
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype.startswith("AWAV"):
        return "air", "header"
    if ctype.startswith("WAVE"):
        return "vacuum", "header"
    return default, "convention"


def log_to_linear(path, values, name: str) -> np.ndarray:
    """Log wavelengths to Angstrom; natural (a ``name`` starting ``ln``) or base-10 judged from the values.

    Raises
    ------
    FormatError
        Naming ``path``, if the values look like neither.

    Examples
    --------
    >>> log_to_linear("star.fits", [3.6, 3.7], "loglam").round(1).tolist()
    [3981.1, 5011.9]
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        msg = f"{path}: column {name!r} has no finite values"
        raise FormatError(msg)
    middle = float(np.median(finite))
    if name.lower().startswith("ln") or 6.5 < middle < 12.0:
        return np.exp(values)
    if 2.5 < middle < 5.5:
        return 10.0 ** values
    msg = f"{path}: column {name!r} does not look like log wavelengths (median {middle:g})"
    raise FormatError(msg)


# Header cards that set a 1-D linear world axis in WCSLIB.
AXIS_1_KEYS = ("CRVAL1", "CRPIX1", "CDELT1", "CD1_1", "PC1_1")


def _pixel_axis(path, header, n):
    """Axis-1 world value of every pixel, before log and unit handling.

    A WCS (CRVAL1, CRPIX1 and CDELT1 or CD1_1 or PC1_1) goes through
    astropy.wcs, as a plain linear axis: whether the values are
    log-wavelengths is decided afterwards from the header conventions
    (IRAF DC-FLAG, ``-LOG`` types written by spectral libraries with log10
    values), which WCSLIB's own ``-LOG`` algorithm does not follow. Old
    SDSS files have only COEFF0/COEFF1 (log10 wavelength = COEFF0 + COEFF1 * i).
    """
    if "CRVAL1" not in header:
        if "COEFF0" in header and "COEFF1" in header:
            return float(header["COEFF0"]) + np.arange(n) * float(header["COEFF1"])
        msg = f"{path}: no wavelength solution in the header (need CRVAL1 and CDELT1 or CD1_1)"
        raise FormatError(msg)
    if not any(key in header for key in ("CDELT1", "CD1_1", "PC1_1")):
        msg = f"{path}: no wavelength step in the header (need CDELT1 or CD1_1)"
        raise FormatError(msg)
    # The repr beside each value keeps apart values that compare equal but
    # are written differently (1, 1.0 and True; 0.0 and -0.0), so a cached
    # axis is exactly the one WCSLIB computes for this header.
    cards = tuple((key, header[key], repr(header[key])) for key in AXIS_1_KEYS if key in header)
    try:
        # A copy: the cached array is shared by every file with these cards.
        return _linear_axis(cards, n).copy()
    except (ValueError, TypeError, MemoryError) as exc:
        msg = f"{path}: unusable wavelength WCS ({first_line(exc)})"
        raise FormatError(msg) from None


@functools.lru_cache(maxsize=64)
def _linear_axis(cards, n):
    """The pixel axis of one set of axis-1 cards ``(key, value, repr)``, by astropy.wcs.

    Cached: a library's files share their wavelength solution, and building
    a WCS costs a third of reading a MILES file.
    """
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    # Only the axis-1 solution, without type and unit: a plain linear axis, the
    # units converted by the caller. A small header also parses faster.
    linear = fits.Header([("NAXIS", 1)] + [(key, value) for key, value, _ in cards])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(linear, naxis=[1], fix=False)
    axis = wcs.wcs_pix2world(np.arange(n, dtype=np.float64), 0)[0]
    axis.flags.writeable = False
    return axis


def read_fits_image(path: str | Path, hdul, default_medium: str = "air") -> Spectrum:
    """Read a 1-D FITS image spectrum with a linear or log-linear WCS from an opened ``hdul``.

    The medium is the header's (``VACUUM``, ``AIRORVAC``, ``CTYPE1``), else
    ``default_medium``.

    Raises
    ------
    FormatError
        Naming ``path``, if there is no usable 1-D data or wavelength solution.
    """
    hdu = next((h for h in hdul if h.is_image and h.data is not None and h.data.size > 1), None)
    if hdu is None:
        msg = f"{path}: FITS file holds no spectrum (no image data and no table)"
        raise FormatError(msg)
    header = hdu.header
    data = np.asarray(hdu.data, dtype=np.float64)
    # ELODIE and IRAF multispec files stack flux, sky, error ... along axis 2;
    # the first row is always the flux.
    flux = data.reshape(-1, data.shape[-1])[0] if data.ndim > 1 else data
    n = flux.size
    header = header_cards(header, IMAGE_CARDS)
    axis = _pixel_axis(path, header, n)
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    is_log = ("COEFF0" in header and "CRVAL1" not in header) or ctype.endswith("-LOG") \
        or header.get("DC-FLAG") == 1 or str(header.get("WFITTYPE", "")).upper() == "LOG-LINEAR"
    if is_log:
        wave = log_to_linear(path, axis, "CRVAL1")
    else:
        wave = axis * wavelength_scale(path, header.get("CUNIT1"))
    medium, source = _header_medium(header, default_medium)
    meta = {"format": "fits-image", "object": str(header.get("OBJECT", "")).strip(),
            "header_sptype": str(header.get("SPECTYPE", header.get("SPTYPE", ""))).strip()}
    return finish_spectrum(path, wave, flux, np.ones(n, bool), medium, source, meta)


def find_column(names, candidates, wanted: str | None = None, path="table", option: str = "") -> str | None:
    """The column of ``names`` called ``wanted``, else the first of the lower-case ``candidates`` present, else None.

    Compared case-insensitively; the name comes back as the table spells it.

    Raises
    ------
    FormatError
        If ``wanted`` (given by the command-line ``option``) is not a column of ``path``.

    Examples
    --------
    >>> find_column(["LAMBDA_A", "F_LAMBDA"], ("flux",), wanted="f_lambda")
    'F_LAMBDA'
    >>> find_column(["WAVE", "FLUX"], ("flux",))
    'FLUX'
    """
    lower = {str(name).lower(): name for name in names}
    if wanted is not None:
        if wanted.lower() not in lower:
            msg = f"{path}: no column {wanted!r} ({option}); columns: {', '.join(map(str, names))}"
            raise FormatError(msg)
        return lower[wanted.lower()]
    return next((lower[c] for c in candidates if c in lower), None)


def read_fits_table(path: str | Path, hdul, default_medium: str = "air", columns: ColumnNames | None = None) -> Spectrum:
    """Read a spectrum from the first FITS binary table of an opened ``hdul`` with wavelength and flux.

    ``columns`` names them (``lambda_A``, ``f_lambda`` ...) instead of the
    known names; a named wavelength column called like a log-wavelength
    (``loglam`` ...) is read as one. Linear wavelengths are in
    ``default_medium`` when the header is silent; log-wavelength columns are
    SDSS-derived, vacuum. Pixels with ``ivar <= 0`` or a negative error are invalid.

    Raises
    ------
    FormatError
        If no table has a wavelength and a flux column, or a named column is in none of them.
    """
    columns = columns or ColumnNames()
    named = {name: getattr(columns, name) for name in ("wave", "flux", "ivar") if getattr(columns, name)}
    tables = [h for h in hdul if not h.is_image and h.data is not None]
    for hdu in tables:
        names = list(hdu.columns.names)
        if any(wanted.lower() not in {n.lower() for n in names} for wanted in named.values()):
            continue  # the named columns live in another table
        flux_col = find_column(names, FLUX_COLUMNS, columns.flux)
        wave_col = find_column(names, WAVE_COLUMNS, columns.wave)
        log_col = find_column(names, LOGWAVE_COLUMNS) if columns.wave is None else None
        if columns.wave is not None and wave_col.lower() in LOGWAVE_COLUMNS:
            wave_col, log_col = None, wave_col
        if flux_col is None or (wave_col is None and log_col is None):
            continue
        data = hdu.data
        flux = np.asarray(data[flux_col], dtype=np.float64).ravel()
        if wave_col is not None:
            unit = hdu.columns[wave_col].unit
            wave = np.asarray(data[wave_col], dtype=np.float64).ravel() * wavelength_scale(path, unit)
            default = default_medium
        else:
            wave = log_to_linear(path, np.asarray(data[log_col]).ravel(), log_col)
            default = "vacuum"
        valid = np.ones(flux.size, bool)
        ivar_col = find_column(names, IVAR_COLUMNS, columns.ivar)
        err_col = find_column(names, ERROR_COLUMNS) if columns.ivar is None else None
        if ivar_col is not None:
            valid &= np.asarray(data[ivar_col]).ravel() > 0
        elif err_col is not None:
            err = np.asarray(data[err_col], dtype=np.float64).ravel()
            # Kesseli templates give PropErr = 0 where the error is unknown,
            # so only negative or non-finite errors mark bad pixels.
            valid &= np.isfinite(err) & (err >= 0)
        medium, source = _header_medium(hdu.header, default)
        if source == "convention":
            medium, source = _header_medium(hdul[0].header, default)
        meta = {"format": "fits-table", "columns": f"{wave_col or log_col},{flux_col}"}
        return finish_spectrum(path, wave, flux, valid, medium, source, meta)
    found = "; ".join(f"HDU {i}: {', '.join(h.columns.names)}" for i, h in enumerate(hdul)
                      if not h.is_image) or "no tables"
    if named:
        given = ", ".join(f"--{name}-column {wanted!r}" for name, wanted in named.items())
        msg = f"{path}: no table has the named columns ({given}); {found}"
    else:
        msg = (f"{path}: no wavelength and flux columns found ({found}); expected e.g. "
               f"WAVELENGTH or LOGLAM and FLUX, or name them with --wave-column and --flux-column")
    raise FormatError(msg)


def read_sdss_spec(path: str | Path, hdul) -> Spectrum:
    """Read an opened SDSS/BOSS ``spec-PLATE-MJD-FIBER.fits`` coadd: vacuum wavelengths, pixels with
    ``ivar == 0`` or a non-zero ``and_mask`` invalid."""
    data = hdul["COADD"].data
    names = [n.lower() for n in data.columns.names]
    if "flux" not in names or "loglam" not in names:
        msg = f"{path}: SDSS COADD table lacks flux or loglam column"
        raise FormatError(msg)
    wave = 10.0 ** np.asarray(data["loglam"], dtype=np.float64)
    valid = np.ones(wave.size, bool)
    if "ivar" in names:
        valid &= np.asarray(data["ivar"]) > 0
    if "and_mask" in names:
        valid &= np.asarray(data["and_mask"]) == 0
    meta = {"format": "sdss-spec", "object": str(hdul[0].header.get("OBJID", "")).strip()}
    return finish_spectrum(path, wave, data["flux"], valid, "vacuum", "header", meta)
