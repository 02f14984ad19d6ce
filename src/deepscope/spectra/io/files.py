"""One spectrum file of any supported format -> a :class:`Spectrum`, and the labelled manifest (no torch here).

:func:`read_spectrum` dispatches by content:

* FITS 1-D image with a linear (``CRVAL1``/``CDELT1`` or ``CD1_1``) or
  log-linear wavelength WCS (``CTYPE1 = 'WAVE-LOG'``, IRAF ``DC-FLAG = 1``,
  SDSS-style ``COEFF0``/``COEFF1``): MILES, STELIB, ELODIE 3.1 (flux and
  error stacked as rows), Indo-US/CFLIB, the Jacoby-Hunter-Christian atlas.
* FITS binary table with a wavelength (``WAVELENGTH``, ``WAVE``, ``LAMBDA``
  ...) or log-wavelength column (``LOGLAM`` ...) and a flux column
  (Pickles, Kesseli/PyHammer templates).
* SDSS ``spec-PLATE-MJD-FIBER.fits`` (``COADD``: ``loglam``, ``flux``,
  ``ivar``, ``and_mask``).
* Text columns, optionally gzipped (MKCLASS ``.rbn``, ``.rbx``, ``.rec``,
  ``.txt``, ``.dat``, ``.csv``): ``wavelength flux`` by position, or named by
  a header line; the delimiter is sniffed.

Wavelengths come back in Angstrom (``CUNIT1``/``TUNITn`` of nm, um or m
converted), and every spectrum says whether they are air or vacuum and
whether the header said so (``medium_source = 'header'``) or the format's
convention was assumed: SDSS spectra and log-lambda tables are vacuum,
everything else air unless ``VACUUM``/``AIRORVAC``/``CTYPE1`` says
otherwise. Pixels that are not finite, have zero inverse variance or a
non-zero SDSS ``and_mask``, or are exactly 0.0 (the gap filler of Indo-US
and MKCLASS files) are flagged invalid, not removed, so gaps stay visible.
The FITS readers live in :mod:`deepscope.spectra.io.fits`, the
:class:`Spectrum` record in :mod:`deepscope.spectra.io.spectrum`.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from deepscope.core.files import check_fits_sizes, opening
from deepscope.errors import FormatError, InputError, first_line
from deepscope.spectra.io.fits import read_fits_image, read_fits_table, read_sdss_spec
from deepscope.spectra.io.spectrum import ColumnNames, Spectrum, finish_spectrum

__all__ = ["ColumnNames", "Spectrum", "find_spectra", "is_spectrum_file", "read_ascii", "read_fits_image",
           "read_fits_table", "read_sdss_spec", "read_spectrum", "spectra_manifest"]

# Largest decompressed spectrum file accepted (a gzip bomb stops here). Real
# ones are far smaller: an SDSS spec file is ~0.5 MB, a MILES star 17 kB.
MAX_SPECTRUM_BYTES = 256 << 20
# What a directory is searched for: FITS files, and text columns (MKCLASS .rbn/.rbx/.rec
# among them), gzipped or not. A text file found there is read only if its first lines
# are columns of numbers (is_spectrum_file): a folder's labels.csv or README.txt is no spectrum.
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
TEXT_SUFFIXES = tuple(suffix + gz for suffix in (".rbn", ".rbx", ".rec", ".txt", ".dat", ".csv", ".tsv", ".asc",
                                                 ".ascii", ".spec", ".tab") for gz in ("", ".gz"))
DIRECTORY_SUFFIXES = FITS_SUFFIXES + TEXT_SUFFIXES
# Bytes of a text file looked at to decide whether it holds a spectrum.
SNIFF_BYTES = 8192


def _gunzip(raw, path):
    """The bytes of every member of a gzip file, refusing more than :data:`MAX_SPECTRUM_BYTES`.

    zlib on the bytes in memory, checked as ``gzip`` checks them (CRC,
    length, zero padding between members), at two thirds of ``GzipFile``'s CPU time.
    """
    pieces, size = [], 0
    while raw:
        stream = zlib.decompressobj(wbits=31)  # 31: deflate data inside a gzip header and trailer
        try:
            pieces.append(stream.decompress(raw, MAX_SPECTRUM_BYTES + 1 - size))
        except zlib.error as exc:
            msg = f"{path}: corrupt gzip file ({exc})"
            raise FormatError(msg) from None
        size += len(pieces[-1])
        if size > MAX_SPECTRUM_BYTES:
            msg = f"{path}: gzip file decompresses to more than {MAX_SPECTRUM_BYTES >> 20} MiB; not a spectrum"
            raise FormatError(msg)
        if not stream.eof:
            msg = f"{path}: corrupt gzip file (it ends before its end-of-stream marker)"
            raise FormatError(msg)
        raw = stream.unused_data.lstrip(b"\x00")
    return b"".join(pieces)


def _open_bytes(path):
    path = Path(path)
    with opening(path):
        raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, path)
    if not raw.strip():
        msg = f"{path}: empty file"
        raise FormatError(msg)
    return raw


# Tried in this order on the first data lines; none found means whitespace.
TEXT_DELIMITERS = (",", ";", "\t", "|")
COMMENT_CHARS = ("#", "%", "!")


def _text_lines(path, raw, limit=20):
    """The first ``limit`` data lines and the last comment line before them."""
    try:
        text = raw[:65536].decode("utf-8")
    except UnicodeDecodeError:
        text = raw[:65536].decode("latin-1")
    lines, comment = [], None
    for line in text.splitlines()[:-1] if len(raw) > 65536 else text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(COMMENT_CHARS):
            if not lines:
                comment = stripped.lstrip("".join(COMMENT_CHARS)).strip()
            continue
        lines.append(stripped)
        if len(lines) == limit:
            break
    return lines, comment


def sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits every line into the same number (> 1) of fields; None for whitespace.

    Examples
    --------
    >>> sniff_delimiter(["wavelength,flux", "4000.0,1.2"]), sniff_delimiter(["4000 1.2", "4001 1.1"])
    (',', None)
    """
    for delimiter in TEXT_DELIMITERS:
        counts = {line.count(delimiter) for line in lines}
        if len(counts) == 1 and counts.pop() > 0:
            return delimiter
    return None


def _split(line, delimiter):
    return [field.strip().strip("'\"") for field in line.split(delimiter)]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_index(path, header, wanted, candidates, default, option):
    """Index of the named column, else the first known name, else ``default``."""
    from deepscope.spectra.io.fits import find_column

    if wanted is not None and header is None:
        msg = f"{path}: {option} {wanted!r} given but the file has no header line naming its columns"
        raise FormatError(msg)
    name = find_column(header, candidates, wanted, path, option) if header is not None else None
    return default if name is None else header.index(name)


def read_ascii(path: str | Path, raw: bytes, default_medium: str = "air", columns: ColumnNames | None = None) -> Spectrum:
    """Read a text spectrum: columns of numbers, optionally under a header line.

    The delimiter (comma, semicolon, tab, bar or whitespace) is sniffed from
    the first lines. A first line that is not all numbers names the columns
    (``wavelength,flux``); so does a comment line just above the numbers
    (``# lambda flux``). Without names, the first two columns are
    wavelength (Angstrom) and flux.

    Parameters
    ----------
    path : str or Path
    raw : bytes
        Decompressed file content.
    default_medium : str
        Medium of the wavelengths, which plain text cannot state.
    columns : ColumnNames, optional
        Named wavelength, flux and inverse-variance columns.

    Returns
    -------
    Spectrum

    Raises
    ------
    FormatError
        If the text is not at least two numeric columns, or a named column is missing.

    Examples
    --------
    >>> spec = read_ascii("star.csv", b"flux;wavelength\\n1.0;4000\\n0.9;4001\\n")
    >>> spec.wave.tolist(), spec.flux.tolist()
    ([4000.0, 4001.0], [1.0, 0.9])
    """
    from deepscope.spectra.io.fits import FLUX_COLUMNS, LOGWAVE_COLUMNS, WAVE_COLUMNS

    columns = columns or ColumnNames()
    lines, comment = _text_lines(path, raw)
    delimiter = sniff_delimiter(lines) if lines else None
    header, skip = None, 0
    if lines and not all(_is_number(field) for field in _split(lines[0], delimiter)):
        header, skip = _split(lines[0], delimiter), 1
    elif comment and lines:
        # A commented header is often spaced even when the numbers are not.
        width = len(_split(lines[0], delimiter))
        header = next((names for names in (_split(comment, delimiter), _split(comment, None))
                       if len(names) == width), None)
    if header is not None and header[0] == "" and delimiter is not None:
        header = None  # a leading delimiter is no header
    if len(lines) <= skip:
        msg = f"{path}: not a two-column numeric spectrum (no rows of numbers)"
        raise FormatError(msg)
    wave_i = _column_index(path, header, columns.wave, WAVE_COLUMNS + LOGWAVE_COLUMNS, 0, "--wave-column")
    flux_i = _column_index(path, header, columns.flux, FLUX_COLUMNS, 1, "--flux-column")
    ivar_i = _column_index(path, header, columns.ivar, (), None, "--ivar-column")
    wanted = [wave_i, flux_i] + ([ivar_i] if ivar_i is not None else [])
    try:
        body = io.BytesIO(raw)
        if skip:
            # Skip past comments and the header line itself, whatever precedes it.
            text = raw.decode("utf-8", errors="replace").splitlines()
            first = next(i for i, line in enumerate(text) if line.strip() == lines[0])
            body = io.StringIO("\n".join(text[first + 1:]))
        table = np.loadtxt(body, comments=COMMENT_CHARS, ndmin=2, usecols=wanted, delimiter=delimiter)
    except (ValueError, IndexError, UnicodeDecodeError, StopIteration) as exc:
        msg = f"{path}: not a two-column numeric spectrum ({first_line(exc)[:80]})"
        raise FormatError(msg) from None
    if table.shape[0] < 2:
        msg = f"{path}: fewer than two rows of wavelength, flux"
        raise FormatError(msg)
    wave = table[:, 0]
    if header is not None and header[wave_i].lower() in LOGWAVE_COLUMNS:
        from deepscope.spectra.io.fits import log_to_linear

        wave = log_to_linear(path, wave, header[wave_i])
    valid = table[:, 2] > 0 if ivar_i is not None else np.ones(len(table), bool)
    meta = {"format": "ascii"}
    if header is not None:
        meta["columns"] = f"{header[wave_i]},{header[flux_i]}"
    return finish_spectrum(path, wave, table[:, 1], valid, default_medium, "convention", meta)


def read_spectrum(path: str | Path, default_medium: str = "air", columns: ColumnNames | None = None) -> Spectrum:
    """Read any supported spectrum file, dispatching on its content.

    Parameters
    ----------
    path : str or Path
    default_medium : str
        ``"air"`` or ``"vacuum"``, used when neither the header nor the
        format convention decides.
    columns : ColumnNames, optional
        Named columns of a FITS table or a text file with a header line;
        other formats ignore them.

    Returns
    -------
    Spectrum
        Wavelengths in Angstrom, with their medium and where it came from.

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

    raw = _open_bytes(path)
    if raw.startswith(b"SIMPLE  ="):
        try:
            with warnings.catch_warnings():
                # IRAF-written headers (STELIB) carry non-standard cards; they
                # are real-world input, not errors.
                warnings.simplefilter("ignore")
                try:
                    return _read_fits(path, raw, default_medium, columns, fix=False)
                except Exception:  # noqa: BLE001 - read again, after astropy's fixes: what it raises then is the answer
                    # astropy reads non-standard cards as they are; verifying every card of every file
                    # up front cost a sixth of a MILES file's read and changed none of the 1808 shared
                    # spectra. A file that fails is read as before: its cards fixed first.
                    return _read_fits(path, raw, default_medium, columns, fix=True)
        except FormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for corrupt files
            msg = f"{path}: corrupt or truncated FITS file ({type(exc).__name__}: {str(exc)[:80]})"
            raise FormatError(msg) from None
    if raw[:1] == b"\x00" or b"\x00" in raw[:512]:
        msg = f"{path}: unsupported binary format; expected FITS or two-column text"
        raise FormatError(msg)
    return read_ascii(path, raw, default_medium, columns)


def _read_fits(path, raw, default_medium, columns, fix):
    """A FITS spectrum from its bytes; ``fix``: first let astropy fix non-standard cards (``silentfix``)."""
    from astropy.io import fits

    with fits.open(io.BytesIO(raw), memmap=False) as hdul:
        check_fits_sizes(hdul, path, len(raw))
        if fix:
            hdul.verify("silentfix")
        names = [h.name for h in hdul]
        if "COADD" in names:
            return read_sdss_spec(path, hdul)
        if hdul[0].data is not None and hdul[0].data.size > 1:
            return read_fits_image(path, hdul, default_medium)
        if len(hdul) > 1:
            return read_fits_table(path, hdul, default_medium, columns)
        return read_fits_image(path, hdul, default_medium)


def is_spectrum_file(path: str | Path) -> bool:
    """Whether a file found in a directory is to be read as a spectrum: FITS yes, text only if it is columns of numbers.

    A text file (:data:`TEXT_SUFFIXES`) qualifies when its second data line
    (the first may name the columns) is two or more numbers; one that cannot
    be opened qualifies too, so that reading it reports what is wrong.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "star.csv").write_text("wavelength,flux\\n4000.0,1.0\\n4001.0,0.9\\n")
    >>> _ = (folder / "labels.csv").write_text("file,sptype\\nstar.csv,G2V\\n")
    >>> is_spectrum_file(folder / "star.csv"), is_spectrum_file(folder / "labels.csv")
    (True, False)
    """
    if not str(path).lower().endswith(TEXT_SUFFIXES):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
        if head[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(wbits=31).decompress(head, SNIFF_BYTES)
    except (OSError, zlib.error):
        return True
    lines, _ = _text_lines(path, head, limit=3)
    if len(lines) < 2:
        return False
    fields = _split(lines[1], sniff_delimiter(lines[:2]))
    return len(fields) >= 2 and all(_is_number(field) for field in fields)


def find_spectra(inputs: Iterable[str | Path]) -> list[Path]:
    """Files named, and the spectrum files (:func:`is_spectrum_file`) found in directories, in order.

    Raises
    ------
    InputError
        If a path does not exist, or nothing was found.
    """
    from deepscope.core.files import collect_inputs

    found = []
    for path in map(Path, inputs):
        if path.is_dir():
            found += [p for p in collect_inputs([path], DIRECTORY_SUFFIXES) if is_spectrum_file(p)]
        else:
            found += collect_inputs([path], DIRECTORY_SUFFIXES)
    if not found:
        msg = f"no spectrum files in {', '.join(map(str, inputs))}"
        raise InputError(msg)
    return found


def spectra_manifest(labels_paths: Iterable[str | Path], require_sptype: bool = True):
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
