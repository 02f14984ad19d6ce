"""Stellar spectrum files -> wavelength/flux arrays and one manifest (no torch here).

Supported formats, dispatched by content in :func:`read_spectrum`:

* FITS 1-D image with a linear (``CRVAL1``/``CDELT1`` or ``CD1_1``) or
  log-linear wavelength WCS (``CTYPE1 = 'WAVE-LOG'``, IRAF ``DC-FLAG = 1``,
  or SDSS-style ``COEFF0``/``COEFF1``). MILES, STELIB, ELODIE 3.1, Indo-US
  (CFLIB) and the Jacoby-Hunter-Christian atlas are all of this kind.
* FITS binary table with a wavelength column (``WAVELENGTH``, ``WAVE``,
  ``LAMBDA`` ...) or a log-wavelength column (``LOGLAM``, ``LogLam`` ...) and
  a flux column (Pickles, Kesseli/PyHammer templates).
* SDSS ``spec-PLATE-MJD-FIBER.fits`` (``COADD`` HDU: ``loglam``, ``flux``,
  ``ivar``, ``and_mask``).
* Two-column ASCII ``wavelength flux``, optionally gzipped (MKCLASS ``.rbn``,
  ``.rbx``, ``.rec``, ``.txt``, ``.dat``).

Units and medium are explicit: wavelengths are returned in Angstrom (``CUNIT1``
or ``TUNITn`` of nm, um or m are converted) and every spectrum says whether its
wavelengths are in air or vacuum and whether the header said so
(``medium_source = 'header'``) or the format's convention was assumed. SDSS
spectra and log-lambda tables (SDSS-derived, e.g. Kesseli templates) are
vacuum; everything else is air unless ``VACUUM``/``AIRORVAC``/``CTYPE1``
says otherwise. :func:`deepscope.spectra.preprocess.to_air` converts.

Pixels that are not finite, have zero inverse variance or a non-zero SDSS
``and_mask``, or are exactly 0.0 (the gap filler of Indo-US and MKCLASS files)
are flagged invalid instead of being removed, so gaps stay visible.
"""

import gzip
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepscope.core.files import check_fits_sizes
from deepscope.errors import FormatError, InputError

SPECTRUM_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".rbn", ".rbx", ".rec",
                     ".rbn.gz", ".rbx.gz", ".rec.gz", ".txt", ".txt.gz", ".dat", ".dat.gz",
                     ".asc", ".asc.gz")

# Largest decompressed spectrum file accepted (a gzip bomb stops here). Real
# ones are far smaller: an SDSS spec file is ~0.5 MB, a MILES star 17 kB.
MAX_SPECTRUM_BYTES = 256 << 20

# Column names seen in real spectral tables, compared case-insensitively.
WAVE_COLUMNS = ("wavelength", "wave", "lambda", "lam", "wavelen", "awav")
LOGWAVE_COLUMNS = ("loglam", "loglambda", "logwave", "log_wave", "log_lambda", "lnlam", "ln_wave")
FLUX_COLUMNS = ("flux", "flam", "spectrum", "fnu", "f_lambda", "intensity")
IVAR_COLUMNS = ("ivar",)
ERROR_COLUMNS = ("error", "err", "sigma", "properr", "flux_err", "fluxerr", "noise")

_UNIT_TO_ANGSTROM = {"angstrom": 1.0, "angstroms": 1.0, "a": 1.0, "aa": 1.0, "0.1 nm": 1.0,
                     "nm": 10.0, "nanometer": 10.0, "um": 1e4, "micron": 1e4, "microns": 1e4,
                     "m": 1e10, "meter": 1e10}


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
        ``"header"`` when the file said so, ``"convention"`` when assumed.
    meta : dict
        Format name and header values worth keeping (object, spectral type).
    """

    wave: np.ndarray
    flux: np.ndarray
    valid: np.ndarray
    medium: str = "air"
    medium_source: str = "convention"
    meta: dict = field(default_factory=dict)


def _open_bytes(path):
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot open ({exc.strerror or exc})"
        raise FormatError(msg) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                raw = stream.read(MAX_SPECTRUM_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            msg = f"{path}: corrupt gzip file ({exc})"
            raise FormatError(msg) from None
        if len(raw) > MAX_SPECTRUM_BYTES:
            msg = f"{path}: gzip file decompresses to more than {MAX_SPECTRUM_BYTES >> 20} MiB; not a spectrum"
            raise FormatError(msg)
    if not raw.strip():
        msg = f"{path}: empty file"
        raise FormatError(msg)
    return raw


def _finish(path, wave, flux, valid, medium, medium_source, meta):
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
    wave, keep = np.unique(np.where(np.isfinite(wave), wave, -1.0), return_index=True)
    flux, valid = flux[keep], valid[keep]
    if wave.size < 2 or wave[0] <= 0:
        msg = f"{path}: wavelengths are not positive finite numbers"
        raise FormatError(msg)
    return Spectrum(wave, np.where(valid, flux, 0.0), valid, medium, medium_source, meta)


def _unit_scale(path, unit):
    if unit is None or not str(unit).strip():
        return 1.0
    key = str(unit).strip().lower()
    if key not in _UNIT_TO_ANGSTROM:
        msg = f"{path}: unsupported wavelength unit {unit!r}; use Angstrom, nm, um or m"
        raise FormatError(msg)
    return _UNIT_TO_ANGSTROM[key]


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


def _log_to_linear(path, values, name):
    """Log wavelengths to Angstrom; natural or base-10 judged from the values."""
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
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    linear = header.copy()
    # Blank type and unit: a plain linear axis, the units converted below by us.
    for key in ("CTYPE1", "CUNIT1"):
        linear[key] = ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(linear, naxis=[1], fix=False)
        return wcs.wcs_pix2world(np.arange(n, dtype=np.float64), 0)[0]
    except (ValueError, TypeError, MemoryError) as exc:
        msg = f"{path}: unusable wavelength WCS ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        raise FormatError(msg) from None


def read_fits_image(path, hdul, default_medium="air"):
    """Read a 1-D FITS image spectrum with a linear or log-linear WCS.

    Parameters
    ----------
    path : str or Path
        For messages.
    hdul : astropy.io.fits.HDUList
        Already opened file.
    default_medium : str
        Medium assumed when the header does not say.

    Returns
    -------
    Spectrum

    Raises
    ------
    FormatError
        If there is no usable 1-D data or wavelength solution.
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
    axis = _pixel_axis(path, header, n)
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    is_log = ("COEFF0" in header and "CRVAL1" not in header) or ctype.endswith("-LOG") \
        or header.get("DC-FLAG") == 1 or str(header.get("WFITTYPE", "")).upper() == "LOG-LINEAR"
    if is_log:
        wave = _log_to_linear(path, axis, "CRVAL1")
    else:
        wave = axis * _unit_scale(path, header.get("CUNIT1"))
    medium, source = _header_medium(header, default_medium)
    meta = {"format": "fits-image", "object": str(header.get("OBJECT", "")).strip(),
            "header_sptype": str(header.get("SPECTYPE", header.get("SPTYPE", ""))).strip()}
    return _finish(path, wave, flux, np.ones(n, bool), medium, source, meta)


def _find_column(names, candidates):
    lower = {name.lower(): name for name in names}
    return next((lower[c] for c in candidates if c in lower), None)


def read_fits_table(path, hdul, default_medium="air"):
    """Read a spectrum from the first FITS binary table with wavelength and flux.

    Parameters
    ----------
    path : str or Path
        For messages.
    hdul : astropy.io.fits.HDUList
    default_medium : str
        Medium assumed for linear wavelength columns when the header is
        silent; log-wavelength columns are SDSS-derived and taken as vacuum.

    Returns
    -------
    Spectrum

    Raises
    ------
    FormatError
        If no table has a wavelength and a flux column.
    """
    tables = [h for h in hdul if not h.is_image and h.data is not None]
    for hdu in tables:
        names = list(hdu.columns.names)
        flux_col = _find_column(names, FLUX_COLUMNS)
        wave_col = _find_column(names, WAVE_COLUMNS)
        log_col = _find_column(names, LOGWAVE_COLUMNS)
        if flux_col is None or (wave_col is None and log_col is None):
            continue
        data = hdu.data
        flux = np.asarray(data[flux_col], dtype=np.float64).ravel()
        if wave_col is not None:
            unit = hdu.columns[wave_col].unit
            wave = np.asarray(data[wave_col], dtype=np.float64).ravel() * _unit_scale(path, unit)
            default = default_medium
        else:
            wave = _log_to_linear(path, np.asarray(data[log_col]).ravel(), log_col)
            default = "vacuum"
        valid = np.ones(flux.size, bool)
        ivar_col = _find_column(names, IVAR_COLUMNS)
        err_col = _find_column(names, ERROR_COLUMNS)
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
        return _finish(path, wave, flux, valid, medium, source, meta)
    found = "; ".join(f"HDU {i}: {', '.join(h.columns.names)}" for i, h in enumerate(hdul)
                      if not h.is_image) or "no tables"
    msg = (f"{path}: no wavelength and flux columns found ({found}); expected e.g. "
           f"WAVELENGTH or LOGLAM and FLUX")
    raise FormatError(msg)


def read_sdss_spec(path, hdul):
    """Read an SDSS/BOSS ``spec-PLATE-MJD-FIBER.fits`` coadded spectrum.

    Parameters
    ----------
    path : str or Path
    hdul : astropy.io.fits.HDUList

    Returns
    -------
    Spectrum
        Vacuum wavelengths; pixels with ``ivar == 0`` or a non-zero
        ``and_mask`` are invalid.
    """
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
    return _finish(path, wave, data["flux"], valid, "vacuum", "header", meta)


def read_ascii(path, raw, default_medium="air"):
    """Read a two-column ``wavelength flux`` text spectrum (Angstrom).

    Parameters
    ----------
    path : str or Path
    raw : bytes
        Decompressed file content.
    default_medium : str

    Returns
    -------
    Spectrum

    Raises
    ------
    FormatError
        If the text is not at least two numeric columns.
    """
    try:
        table = np.loadtxt(io.BytesIO(raw), comments=("#", "%", "!"), ndmin=2, usecols=(0, 1))
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        msg = f"{path}: not a two-column numeric spectrum ({str(exc).splitlines()[0][:80]})"
        raise FormatError(msg) from None
    if table.shape[0] < 2:
        msg = f"{path}: fewer than two rows of wavelength, flux"
        raise FormatError(msg)
    meta = {"format": "ascii"}
    return _finish(path, table[:, 0], table[:, 1], np.ones(len(table), bool), default_medium,
                   "convention", meta)


def read_spectrum(path, default_medium="air"):
    """Read any supported spectrum file, dispatching on its content.

    Parameters
    ----------
    path : str or Path
    default_medium : str
        ``"air"`` or ``"vacuum"``, used when neither the header nor the
        format convention decides.

    Returns
    -------
    Spectrum

    Raises
    ------
    FormatError
        If the file is empty, corrupt, or in no supported format.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "star.txt"
    >>> _ = path.write_text("4000 1.0\\n4001 0.9\\n4002 1.1\\n")
    >>> spec = read_spectrum(path)
    >>> spec.wave.tolist(), spec.medium
    ([4000.0, 4001.0, 4002.0], 'air')
    """
    import warnings

    from astropy.io import fits

    raw = _open_bytes(path)
    if raw.startswith(b"SIMPLE  ="):
        try:
            with warnings.catch_warnings():
                # IRAF-written headers (STELIB) carry non-standard cards that
                # astropy fixes silently; they are real-world input, not errors.
                warnings.simplefilter("ignore")
                with fits.open(io.BytesIO(raw), memmap=False) as hdul:
                    check_fits_sizes(hdul, path, len(raw))
                    hdul.verify("silentfix")
                    names = [h.name for h in hdul]
                    if "COADD" in names:
                        return read_sdss_spec(path, hdul)
                    if hdul[0].data is not None and hdul[0].data.size > 1:
                        return read_fits_image(path, hdul, default_medium)
                    if len(hdul) > 1:
                        return read_fits_table(path, hdul, default_medium)
                    return read_fits_image(path, hdul, default_medium)
        except FormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for corrupt files
            msg = f"{path}: corrupt or truncated FITS file ({type(exc).__name__}: {str(exc)[:80]})"
            raise FormatError(msg) from None
    if raw[:1] == b"\x00" or b"\x00" in raw[:512]:
        msg = f"{path}: unsupported binary format; expected FITS or two-column text"
        raise FormatError(msg)
    return read_ascii(path, raw, default_medium)


# Thin, named entry points for the libraries whose files we cannot ship; the
# formats are documented in each docstring and exercised by test-written files.

def read_elodie(path):
    """Read an ELODIE 3.1 archive spectrum (Prugniel & Soubiran 2001).

    ELODIE ``s1d`` files are 1-D FITS images with a linear WCS
    (``CRVAL1`` ~ 4000 A, ``CDELT1`` 0.05 A at R = 42000, or 0.2 A for the
    low-resolution release), air wavelengths, optionally with flux and error
    stacked as two rows. See :func:`read_fits_image`.
    """
    return read_spectrum(path, default_medium="air")


def read_indous(path):
    """Read an Indo-US / CFLIB spectrum (Valdes et al. 2004).

    1-D FITS images, linear WCS from 3460 to 9464 A at 0.44 A, air
    wavelengths; gaps in the coverage are filled with exactly 0.0 flux, which
    :func:`read_spectrum` flags invalid.
    """
    return read_spectrum(path, default_medium="air")


def read_jacoby(path):
    """Read a Jacoby, Hunter & Christian (1984) atlas spectrum.

    The ADC/CDS release (III/92) gives 1-D FITS images with linear WCS
    (``CRVAL1 = 3510``, ``CDELT1 = 1.4`` A, 2799 pixels), air wavelengths,
    fluxes normalised to 1 at 5450 A; the ASCII release is two columns
    ``wavelength flux``. Both go through :func:`read_spectrum`.
    """
    return read_spectrum(path, default_medium="air")


def spectra_manifest(labels_paths, require_sptype=True):
    """One manifest for one or more spectral libraries' ``labels.csv``.

    Parameters
    ----------
    labels_paths : iterable of str or Path
        Tables with at least ``file`` (relative to the table) and, when
        ``require_sptype``, ``sptype``.
    require_sptype : bool
        Whether ``sptype`` must be present.

    Returns
    -------
    pandas.DataFrame
        ``id, path, split, sptype, library`` plus the tables' own columns.
        ``library`` is the name of the table's folder (a table's own
        ``library`` column is renamed ``collection``); ``id`` is
        ``library/file``.

    Raises
    ------
    InputError
        If a table is missing, empty or lacks a column.
    """
    import pandas as pd

    from deepscope.core.manifest import manifest_from_labels

    frames = []
    for labels_path in map(Path, labels_paths):
        required = ("sptype",) if require_sptype else ()
        table = manifest_from_labels(labels_path, "file", required=required)
        # A library is a folder: MKCLASS's own 'library' column names two
        # resamplings of the same standard stars, which must never be split
        # between training and test, so it is kept as 'collection'.
        if "library" in table:
            table = table.rename(columns={"library": "collection"})
        table["library"] = labels_path.resolve().parent.name
        table["id"] = table["library"] + "/" + table["file"].astype(str)
        frames.append(table)
    if not frames:
        msg = "no labels tables given"
        raise InputError(msg)
    manifest = pd.concat(frames, ignore_index=True)
    if "sptype" in manifest:
        manifest["sptype"] = manifest["sptype"].fillna("").astype(str)
    return manifest
