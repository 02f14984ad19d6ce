"""Input discovery, output validation and atomic writes for batch commands."""

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path

from deepscope.errors import FormatError, InputError, OutputError, first_line

# Deflate never compresses by more than about 1032:1, which bounds the size
# that compressed data (gzip files, FITS tiles) can declare.
DEFLATE_MAX_RATIO = 1032


def collect_inputs(paths, suffixes):
    """Expand files and directories into a sorted list of input files.

    Parameters
    ----------
    paths : iterable of str or Path
        Files (taken as given, whatever their suffix) or directories
        (searched recursively for ``suffixes``).
    suffixes : iterable of str
        Lower-case suffixes such as ``".jpeg"`` or ``".fits.gz"``.

    Returns
    -------
    list of Path

    Raises
    ------
    InputError
        If a path does not exist, or nothing was found.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            # Path's own order (part by part), computed once per file rather than per comparison.
            found += sorted(map(Path, _files_under(path, suffixes)), key=lambda p: p.parts)
        elif path.exists():
            found.append(path)
        else:
            msg = f"{path}: no such file or directory"
            raise InputError(msg)
    if not found:
        msg = f"no input files ({', '.join(suffixes)}) in {', '.join(map(str, paths))}"
        raise InputError(msg)
    return found


def _files_under(folder, suffixes):
    """Paths (str) of the files with one of ``suffixes`` under ``folder``, at any depth, in no order.

    As ``Path.rglob("*")`` filtered by ``is_file()`` finds them (links to
    files followed, links to folders not), but from the directory entries'
    own types: no ``stat`` per file, which a million inputs would feel.
    """
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                found += _files_under(entry.path, suffixes)
            elif entry.name.lower().endswith(suffixes) and entry.is_file():
                found.append(entry.path)
    return found


def check_writable(path, is_dir=False):
    """Fail early if an output cannot be written (before any long work).

    Parameters
    ----------
    path : str or Path
        Output file, or directory when ``is_dir``.
    is_dir : bool
        Whether ``path`` is a directory to create.

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        If the path (or its parent) cannot be created or written.
    """
    path = Path(path)
    target = path if is_dir else path.parent
    if path.exists() and path.is_dir() != is_dir:
        kind = "a directory" if path.is_dir() else "a file"
        msg = f"{path}: cannot write output: it is {kind}"
        raise OutputError(msg)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{path}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None
    if not os.access(target, os.W_OK):
        msg = f"{path}: cannot write output: permission denied"
        raise OutputError(msg)
    if path.exists() and not is_dir and not os.access(path, os.W_OK):
        msg = f"{path}: cannot write output: permission denied"
        raise OutputError(msg)
    return path


def check_table_output(path):
    """Refuse an output table path before any work: wrong suffix or not writable.

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.parquet`` file to write.

    Returns
    -------
    Path
        As :func:`check_writable` returns it.

    Raises
    ------
    OutputError
        If the suffix is neither ``.csv`` nor ``.parquet``, or the path cannot be written.

    Examples
    --------
    >>> check_table_output("sample.fits")
    Traceback (most recent call last):
    ...
    deepscope.errors.OutputError: sample.fits: unsupported table format; use .csv or .parquet
    """
    if not str(path).lower().endswith((".csv", ".parquet")):
        msg = f"{path}: unsupported table format; use .csv or .parquet"
        raise OutputError(msg)
    return check_writable(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path that is renamed onto ``path`` on success.

    Readers never see a half-written file: on error the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        Final output path.

    Yields
    ------
    Path
        Temporary path in the same directory (same file system, so the
        final rename is atomic).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600 files; outputs get the usual permissions instead.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_output(path):
    """:func:`atomic_path` for a command's output: a failed write is one :class:`OutputError` naming ``path``.

    Yields
    ------
    Path
        As :func:`atomic_path` does.

    Raises
    ------
    OutputError
        If writing raises an ``OSError`` (a full disk, a vanished folder).
    """
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as exc:
        msg = f"{path}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None


def write_table(table, path):
    """Write a pandas table atomically as CSV or Parquet (by suffix).

    Parameters
    ----------
    table : pandas.DataFrame
    path : str or Path
        ``.csv`` or ``.parquet``.

    Raises
    ------
    OutputError
        If the suffix is unsupported or the write fails.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        msg = f"{path}: unsupported table format {suffix!r}; use .csv or .parquet"
        raise OutputError(msg)
    with atomic_output(path) as tmp:
        if suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)


def read_table(path, required=()):
    """Read a CSV, Parquet or FITS table and check its columns.

    Parameters
    ----------
    path : str or Path
    required : iterable of str
        Columns that must be present.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        If the file cannot be read or a required column is missing.
    """
    import pandas as pd

    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            table = pd.read_parquet(path)
        elif name.endswith((".fits", ".fit", ".fits.gz")):
            table = _read_fits_table(path)
        else:
            table = pd.read_csv(path)
    except FileNotFoundError:
        msg = f"{path}: no such file"
        raise InputError(msg) from None
    except FormatError as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a user error here
        msg = f"{path}: cannot read table: {first_line(exc)}"
        raise InputError(msg) from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        msg = f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, table.columns))}"
        raise InputError(msg)
    return table


def _read_fits_table(path):
    """First table of a FITS file as pandas, refusing sizes the file cannot hold."""
    from astropy.io import fits
    from astropy.table import Table

    zipped = read_head(path, 2) == b"\x1f\x8b"
    available = path.stat().st_size * (DEFLATE_MAX_RATIO if zipped else 1)
    # From memory, as astropy's seek past a gigantic declared HDU fails on a
    # real file with a bare "Invalid argument".
    source = path if zipped else io.BytesIO(path.read_bytes())
    with fits.open(source, memmap=False) as hdul:
        with warnings.catch_warnings():
            # astropy warns "may have been truncated" on the way; the size
            # check says so in one clear error
            warnings.simplefilter("ignore")
            check_fits_sizes(hdul, path, available)
        return Table.read(hdul).to_pandas()


def read_head(path, size):
    """First bytes of a file, for format sniffing by magic number.

    Parameters
    ----------
    path : str or Path
    size : int
        Number of bytes wanted (fewer if the file is shorter).

    Returns
    -------
    bytes
        Never empty.

    Raises
    ------
    FormatError
        If the file cannot be opened or is empty.
    """
    with opening(path), open(path, "rb") as fh:
        head = fh.read(size)
    if not head:
        msg = f"{path}: empty file"
        raise FormatError(msg)
    return head


@contextlib.contextmanager
def opening(path):
    """Report an input that cannot be opened (missing, unreadable) in one line, the same for every reader.

    Parameters
    ----------
    path : str or Path
        The input, named in the message.

    Raises
    ------
    FormatError
        ``PATH: cannot open (reason)``, for an ``OSError`` raised inside.

    Examples
    --------
    >>> with opening("missing.fits"):
    ...     open("missing.fits", "rb")
    Traceback (most recent call last):
    ...
    deepscope.errors.FormatError: missing.fits: cannot open (No such file or directory)
    """
    try:
        yield
    except OSError as exc:
        msg = f"{path}: cannot open ({exc.strerror or exc})"
        raise FormatError(msg) from None


def check_fits_sizes(hdul, path, available):
    """Refuse a FITS file whose headers declare more data than it holds.

    astropy allocates the array a header declares before reading it, so a
    corrupt ``NAXIS1 = 10**12`` would ask for terabytes; compare first.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        Opened file (headers are read, data not yet).
    path : str or Path
        For messages.
    available : int
        Bytes the (decompressed) file can hold at most; tile-compressed
        images may decompress to ``DEFLATE_MAX_RATIO`` times that.

    Raises
    ------
    FormatError
        If an HDU's data would end beyond ``available`` bytes.
    """
    from astropy.io import fits

    for index, hdu in enumerate(hdul):
        if isinstance(hdu, fits.CompImageHDU):
            # Its header describes the decompressed image, which tile
            # compression shrinks by a bounded factor.
            end, limit = hdu.size, available * DEFLATE_MAX_RATIO
        else:
            end, limit = hdu.fileinfo()["datLoc"] + hdu.size, available
        if end > limit:
            msg = (f"{path}: FITS file is truncated or its header corrupt: HDU {index} declares {hdu.size} bytes "
                   f"of data but the file holds at most {limit} bytes")
            raise FormatError(msg)
