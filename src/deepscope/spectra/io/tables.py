"""Bulk spectrum tables, one spectrum per row in array columns, read a slice of rows at a time (no torch here).

Surveys ship spectra by the million in Parquet, FITS binary tables or HDF5
files. One class per format (:class:`ParquetTable`, :class:`FitsTable`,
:class:`Hdf5Table`, chosen by :func:`open_table`) reads any slice of rows
without loading the rest; :mod:`deepscope.spectra.io.table_rows` turns a
slice into spectra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepscope.errors import FormatError, first_line

PARQUET_SUFFIXES = (".parquet", ".pq")
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


# Rows decoded at a time from a Parquet row group. pyarrow writes a table of up to a million rows
# as one row group by default: read whole, a 50,000-row table of MILES-sized spectra took 6 GB.
PARQUET_BATCH_ROWS = 1024


class ParquetTable:
    """A ``.parquet`` table read forward in batches of rows (pyarrow), never a whole row group at once.

    Raises
    ------
    FormatError
        If the file is not a readable Parquet table.
    """

    def __init__(self, path):
        import pyarrow.parquet as pq

        self.path = Path(path)
        try:
            # Column chunks streamed through a 1 MiB buffer, not loaded whole: the chunk of a
            # one-group table is the whole column (50,000 MILES rows: 367 MB held instead of 1.4 GB).
            self._file = pq.ParquetFile(self.path, buffer_size=1 << 20, pre_buffer=False)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            msg = f"{self.path}: not a readable Parquet table ({first_line(exc)})"
            raise FormatError(msg) from None
        self.schema = self._file.schema_arrow
        self.names = list(self.schema.names)
        self.n_rows = self._file.metadata.num_rows
        self.shared_names = []  # a Parquet column has a value per row
        sizes = [self._file.metadata.row_group(i).num_rows for i in range(self._file.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._stream = None

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def is_array(self, name: str) -> bool:
        """Whether a column holds one array per row."""
        import pyarrow as pa

        kind = self.schema.field(name).type
        return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)

    def unit(self, name: str) -> str | None:
        """The ``unit`` of a column's field metadata, if any."""
        metadata = self.schema.field(name).metadata or {}
        value = metadata.get(b"unit")
        return value.decode() if value else None

    def _rows_of_group(self, group, names, lo, hi):
        # One stream is kept: consecutive slices of a group read it once, front to back.
        stream = self._stream
        if stream is None or stream.key != (group, tuple(names)) or stream.position > lo:
            stream = self._stream = _RowGroupStream(self._file, group, names)
        return stream.take(lo, hi)

    def read(self, start: int, stop: int, names) -> dict:
        """Columns ``names`` of rows ``start:stop``: array columns as ``(N, n)`` arrays (a list of arrays
        when lengths differ or rows are null), the others as lists of values."""
        import pyarrow as pa

        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        pieces = []
        for group in range(first, len(self._starts) - 1):
            lo, hi = self._starts[group], self._starts[group + 1]
            if lo >= stop:
                break
            pieces += self._rows_of_group(group, names, max(start, lo) - lo, min(stop, hi) - lo)
        table = pa.concat_tables(pieces) if pieces else self.schema.empty_table().select(list(names))
        return {name: _arrow_values(table.column(name)) for name in names}


class _RowGroupStream:
    """The rows of one Parquet row group, decoded forward a batch at a time.

    Rows before the ones asked for are decoded and dropped (Parquet offers
    no jump into a row group), so a reader that asks for increasing rows
    decodes the group once and holds one batch of it at a time.
    """

    def __init__(self, parquet_file, group, names):
        self.key = (group, tuple(names))
        self.position = 0  # row of the group that self._pending starts at
        # Arrow's own thread pool costs more CPU than it saves here: the partitions already overlap the network.
        self._batches = parquet_file.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group],
                                                  columns=list(names), use_threads=False)
        self._pending = None  # decoded rows not yet passed

    def take(self, lo, hi) -> list:
        """Rows ``lo:hi`` of the group (``lo >= self.position``) as a list of Arrow tables."""
        import pyarrow as pa

        pieces = []
        while self.position < hi:
            if self._pending is None:
                self._pending = pa.Table.from_batches([next(self._batches)])
            n = len(self._pending)
            first, last = max(lo - self.position, 0), min(hi - self.position, n)
            if first < last:
                pieces.append(self._pending.slice(first, last - first))
            if last < n:  # the rest of this batch waits for the next slice
                self._pending = self._pending.slice(last)
                self.position += last
            else:
                self._pending = None
                self.position += n
        return pieces


def _arrow_values(column):
    """An array column as ``(N, n)`` float64 when every row holds ``n`` values, else one array per row (None for null).

    The flattened values and the offsets come out of Arrow in one piece;
    no Python work per row unless the rows differ in length or some are null.
    """
    import pyarrow as pa

    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        return column.to_pylist()
    chunk = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = chunk.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if pa.types.is_fixed_size_list(chunk.type):
        offsets = np.arange(len(chunk) + 1) * chunk.type.list_size
    else:
        offsets = chunk.offsets.to_numpy() - chunk.offsets[0].as_py()
    if chunk.null_count == 0:
        lengths = np.diff(offsets)
        if len(chunk) and (lengths == lengths[0]).all():
            return flat.reshape(len(chunk), int(lengths[0]))
    valid = chunk.is_valid().to_numpy(zero_copy_only=False)
    return [flat[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(len(chunk))]


class _SlicedColumns:
    """What FITS and HDF5 tables share: each reader process opens the file itself, and slices read alike."""

    def __getstate__(self):
        # Shipped to Dask workers and reader processes as a path: each opens its own handle.
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def read(self, start: int, stop: int, names) -> dict:
        """Columns ``names`` of rows ``start:stop``: array columns as ``(N, n)`` arrays (a list of arrays
        when lengths differ), the others as lists of values."""
        out = {}
        for name in names:
            values = self._slice(name, start, stop)
            if self.is_array(name):
                # Copies: nothing may point into a memory map once it closes.
                out[name] = (np.array(values, dtype=np.float64) if values.ndim == 2
                             else [np.array(v, dtype=np.float64) for v in values])
            else:
                out[name] = [self._text(v) if isinstance(v, bytes) else v for v in values.tolist()]
        return out

    @staticmethod
    def _text(value: bytes) -> str:
        return value.decode().strip()  # FITS pads fixed-width strings with spaces


class FitsTable(_SlicedColumns):
    """The first binary table with array columns of a FITS file (gzipped or not), through a memory map (astropy).

    Raises
    ------
    FormatError
        If the file holds no binary table.
    """

    def __init__(self, path):
        from astropy.io import fits

        self.path = Path(path)
        try:
            # Our own handle: astropy leaves its file open when opening fails.
            self._handle = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            msg = f"{self.path}: cannot open ({exc.strerror or exc})"
            raise FormatError(msg) from None
        try:
            self._hdul = fits.open(self._handle, memmap=True)
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for corrupt files
            self._handle.close()
            msg = f"{self.path}: corrupt or truncated FITS file ({first_line(exc)})"
            raise FormatError(msg) from None
        try:
            self._hdu = next((h for h in self._hdul if isinstance(h, fits.BinTableHDU)), None)
            if self._hdu is None:
                msg = f"{self.path}: no binary table in this FITS file"
                raise FormatError(msg)
            self.names = list(self._hdu.columns.names)
            self.n_rows = int(self._hdu.header["NAXIS2"])
            # A 1-D image extension (EXTNAME WAVELENGTH ...) is one array for every row.
            self._shared = {h.name: h for h in self._hdul[1:] if h.is_image and h.header.get("NAXIS") == 1}
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for corrupt files
            self.close()
            if isinstance(exc, FormatError):
                raise
            msg = f"{self.path}: corrupt or truncated FITS file ({first_line(exc)})"
            raise FormatError(msg) from None
        self.shared_names = list(self._shared)

    def close(self) -> None:
        """Close the file and its memory map."""
        self._hdul.close()
        self._handle.close()

    def is_array(self, name: str) -> bool:
        """Whether a column holds one array per row."""
        return self._hdu.columns[name].format.repeat > 1

    def unit(self, name: str) -> str | None:
        """The column's ``TUNITn`` (an image extension's ``BUNIT``), if any."""
        if name in self._shared:
            return self._shared[name].header.get("BUNIT") or None
        return self._hdu.columns[name].unit or None

    def shared(self, name: str) -> np.ndarray:
        """A 1-D image extension given once for every row."""
        return np.array(self._shared[name].data, dtype=np.float64)

    def _slice(self, name, start, stop):
        return self._hdu.data[start:stop][name]


class Hdf5Table(_SlicedColumns):
    """The root datasets of an ``.h5``/``.hdf5`` file as columns (h5py): 2-D or variable-length ones hold spectra.

    Every root dataset whose first axis is the row count is a column, its
    ``unit`` attribute the unit; a 1-D dataset of another length is a
    wavelength grid shared by all rows.

    Raises
    ------
    FormatError
        If h5py is missing or the file is not HDF5 with such datasets.
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            import h5py
        except ImportError:
            msg = f"{self.path}: reading HDF5 tables needs h5py (pip install h5py)"
            raise FormatError(msg) from None
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            msg = f"{self.path}: not a readable HDF5 file ({first_line(exc)})"
            raise FormatError(msg) from None
        datasets = {name: item for name, item in self._file.items() if isinstance(item, h5py.Dataset) and item.ndim}
        per_row = {item.shape[0] for item in datasets.values()
                   if item.ndim == 2 or h5py.check_vlen_dtype(item.dtype) is not None}
        if len(per_row) != 1:
            self._file.close()
            found = ", ".join(f"{name} {item.shape}" for name, item in datasets.items()) or "no datasets"
            msg = (f"{self.path}: need root datasets with one spectrum per row (2-D or variable-length), "
                   f"all with the same number of rows ({found})")
            raise FormatError(msg)
        self.n_rows = per_row.pop()
        self._datasets = datasets
        self.names = [name for name, item in datasets.items() if item.shape[0] == self.n_rows]
        # A 1-D dataset of another length is one array for every row: a shared wavelength grid.
        self.shared_names = [name for name, item in datasets.items() if item.ndim == 1 and name not in self.names]

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def is_array(self, name: str) -> bool:
        """Whether a column holds one array per row (a 2-D or variable-length dataset)."""
        import h5py

        dataset = self._datasets[name]
        return dataset.ndim == 2 or h5py.check_vlen_dtype(dataset.dtype) is not None

    def unit(self, name: str) -> str | None:
        """The dataset's ``unit`` attribute, if any."""
        unit = self._datasets[name].attrs.get("unit")
        return (unit.decode() if isinstance(unit, bytes) else str(unit)) if unit is not None else None

    def shared(self, name: str) -> np.ndarray:
        """A 1-D dataset given once for every row."""
        return np.asarray(self._datasets[name][()], dtype=np.float64)

    def _slice(self, name, start, stop):
        return self._datasets[name][start:stop]

    @staticmethod
    def _text(value: bytes) -> str:
        return value.decode()


def is_bulk_table(path: str | Path) -> bool:
    """Whether a file named on the command line is a table of many spectra.

    Parquet and HDF5 always are; a FITS file is when its first binary table has more
    than one row and an array column (a one-spectrum FITS table has one row
    per pixel, or a single row of arrays, and is read per file as before).

    Examples
    --------
    >>> is_bulk_table("survey.parquet"), is_bulk_table("star.txt")
    (True, False)
    """
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES + HDF5_SUFFIXES):
        return True
    if not name.endswith(FITS_SUFFIXES) or not Path(path).is_file():
        return False
    try:
        table = FitsTable(path)
    except FormatError:
        return False
    try:
        return table.n_rows > 1 and any(table.is_array(n) for n in table.names)
    finally:
        table.close()


def open_table(path: str | Path):
    """The reader for a bulk table: :class:`ParquetTable`, :class:`FitsTable` or :class:`Hdf5Table`.

    Raises
    ------
    FormatError
        If the file is neither, or unreadable.
    """
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return ParquetTable(path)
    if name.endswith(FITS_SUFFIXES):
        return FitsTable(path)
    if name.endswith(HDF5_SUFFIXES):
        return Hdf5Table(path)
    msg = f"{path}: unsupported bulk table; use {', '.join(PARQUET_SUFFIXES + FITS_SUFFIXES + HDF5_SUFFIXES)}"
    raise FormatError(msg)
