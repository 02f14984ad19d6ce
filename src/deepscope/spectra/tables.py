"""Bulk spectrum tables: one row per spectrum in array columns, read in row slices (no torch here).

Surveys ship spectra by the million in Parquet or FITS binary tables, one row
per spectrum, with the wavelengths and fluxes as array columns. One class per format (:class:`ParquetTable`, :class:`FitsTable`)
reads any slice of rows without loading the rest: Parquet a row group at a
time, FITS through a memory map. :func:`read_rows` turns a slice into
:class:`~deepscope.spectra.spectrum.Spectrum` records exactly as a
per-file reader would, with every bad row (unequal lengths, wavelengths not
increasing or in nanometres unannounced, no finite flux) set aside under the
name ``TABLE#row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepscope.errors import FormatError, InputError, first_line
from deepscope.spectra.spectrum import ColumnNames, Spectrum, finish_spectrum, wavelength_scale

PARQUET_SUFFIXES = (".parquet", ".pq")
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
# Optical and near-infrared spectra start well above 1000 A; wavelengths whose
# median is below this are nanometres (or microns) written without a unit.
SMALLEST_ANGSTROM_MEDIAN = 1000.0


@dataclass(frozen=True)
class TableLayout:
    """Where a bulk table keeps its spectra.

    Attributes
    ----------
    columns : ColumnNames
        Wavelength, flux and optional inverse-variance array columns.
    medium : str
        ``"air"``, or ``"vacuum"`` when the wavelengths are vacuum.
    id_column : str, optional
        Column whose value becomes the ``file`` of each row instead of ``TABLE#row``.
    """

    columns: ColumnNames = field(default_factory=lambda: ColumnNames("wavelength", "flux"))
    medium: str = "air"
    id_column: str | None = None


class ParquetTable:
    """A Parquet table read a row group at a time (pyarrow).

    Parameters
    ----------
    path : str or Path

    Raises
    ------
    FormatError
        If the file is not a readable Parquet table.
    """

    def __init__(self, path):
        import pyarrow.parquet as pq

        self.path = Path(path)
        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            msg = f"{self.path}: not a readable Parquet table ({first_line(exc)})"
            raise FormatError(msg) from None
        self.schema = self._file.schema_arrow
        self.names = list(self.schema.names)
        self.n_rows = self._file.metadata.num_rows
        sizes = [self._file.metadata.row_group(i).num_rows for i in range(self._file.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._cached = (None, None)

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

    def _group(self, index, names):
        # One row group is kept: consecutive slices of a group read it once.
        key = (index, tuple(names))
        if self._cached[0] != key:
            self._cached = (key, self._file.read_row_group(index, columns=list(names)))
        return self._cached[1]

    def read(self, start: int, stop: int, names) -> dict:
        """Columns ``names`` of rows ``start:stop``: arrays per row for array columns, else values."""
        import pyarrow as pa

        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        pieces = []
        for group in range(first, len(self._starts) - 1):
            lo, hi = self._starts[group], self._starts[group + 1]
            if lo >= stop:
                break
            pieces.append(self._group(group, names).slice(max(start, lo) - lo, min(stop, hi) - max(start, lo)))
        table = pa.concat_tables(pieces) if pieces else self.schema.empty_table().select(list(names))
        return {name: _arrow_values(table.column(name)) for name in names}


def _arrow_values(column):
    """A list of float arrays for a list column (None for null rows), else a numpy/list of values."""
    import pyarrow as pa

    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        return column.to_pylist()
    values = []
    for chunk in column.chunks:
        flat = chunk.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
        if pa.types.is_fixed_size_list(chunk.type):
            size = chunk.type.list_size
            offsets = np.arange(len(chunk) + 1) * size
        else:
            offsets = chunk.offsets.to_numpy() - chunk.offsets[0].as_py()
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        values += [flat[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(len(chunk))]
    return values


class FitsTable:
    """The first FITS binary table with array columns, read through a memory map (astropy).

    Parameters
    ----------
    path : str or Path

    Raises
    ------
    FormatError
        If the file holds no binary table.
    """

    def __init__(self, path):
        from astropy.io import fits

        self.path = Path(path)
        try:
            self._hdul = fits.open(self.path, memmap=True)
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for corrupt files
            msg = f"{self.path}: corrupt or truncated FITS file ({first_line(exc)})"
            raise FormatError(msg) from None
        try:
            self._hdu = next(h for h in self._hdul if isinstance(h, fits.BinTableHDU))
        except StopIteration:
            self._hdul.close()
            msg = f"{self.path}: no binary table in this FITS file"
            raise FormatError(msg) from None
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for corrupt files
            msg = f"{self.path}: corrupt or truncated FITS file ({first_line(exc)})"
            raise FormatError(msg) from None
        self.names = list(self._hdu.columns.names)
        self.n_rows = int(self._hdu.header["NAXIS2"])

    def __getstate__(self):
        # Shipped to Dask workers as a path: each opens its own memory map.
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def close(self) -> None:
        """Close the file and its memory map."""
        self._hdul.close()

    def is_array(self, name: str) -> bool:
        """Whether a column holds one array per row."""
        return self._hdu.columns[name].format.repeat > 1

    def unit(self, name: str) -> str | None:
        """The column's ``TUNITn``, if any."""
        return self._hdu.columns[name].unit or None

    def read(self, start: int, stop: int, names) -> dict:
        """Columns ``names`` of rows ``start:stop``: arrays per row for array columns, else values."""
        rows = self._hdu.data[start:stop]
        out = {}
        for name in names:
            values = rows[name]
            if self.is_array(name):
                # Copies: nothing may point into the memory map once it closes.
                out[name] = [np.array(v, dtype=np.float64) for v in values]
            else:
                out[name] = [v.decode().strip() if isinstance(v, bytes) else v for v in values.tolist()]
        return out


def is_bulk_table(path: str | Path) -> bool:
    """Whether a file named on the command line is a table of many spectra.

    Parquet always is; a FITS file is when its first binary table has more
    than one row and an array column (a one-spectrum FITS table has one row
    per pixel, or a single row of arrays, and is read per file as before).

    Examples
    --------
    >>> is_bulk_table("survey.parquet"), is_bulk_table("star.txt")
    (True, False)
    """
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
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
    """The reader for a bulk table: :class:`ParquetTable` or :class:`FitsTable`.

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
    msg = f"{path}: unsupported bulk table; use {', '.join(PARQUET_SUFFIXES + FITS_SUFFIXES)}"
    raise FormatError(msg)


def resolve_columns(table, layout: TableLayout) -> dict:
    """The table's own spelling of each named column, checked before any work.

    Parameters
    ----------
    table : ParquetTable or FitsTable
    layout : TableLayout

    Returns
    -------
    dict
        ``wave``, ``flux``, ``ivar`` (or None), ``id`` (or None) and
        ``carried``: the non-array columns copied into the output.

    Raises
    ------
    InputError
        Naming the table, the missing column and the option that named it.
    """
    from deepscope.spectra.fits_readers import find_column

    def column(wanted, option):
        if wanted is None:
            return None
        try:
            return find_column(table.names, (), wanted, table.path, option)
        except FormatError as exc:
            raise InputError(str(exc)) from None

    found = {"wave": column(layout.columns.wave, "--wave-column"),
             "flux": column(layout.columns.flux, "--flux-column"),
             "ivar": column(layout.columns.ivar, "--ivar-column"),
             "id": column(layout.id_column, "--id-column")}
    for key in ("wave", "flux", "ivar"):
        if found[key] is not None and not table.is_array(found[key]):
            msg = f"{table.path}: column {found[key]!r} holds one number per row, not an array per spectrum"
            raise InputError(msg)
    spectral = {found["wave"], found["flux"], found["ivar"]}
    found["carried"] = [n for n in table.names if n not in spectral and not table.is_array(n)]
    return found


def _check_wave(name, wave, unit):
    """Refuse wavelengths that decrease, or that look like nanometres nobody announced."""
    finite = wave[np.isfinite(wave)]
    if finite.size > 1 and np.any(np.diff(finite) <= 0):
        msg = f"{name}: wavelengths are not increasing"
        raise FormatError(msg)
    if unit is None and finite.size and np.median(finite) < SMALLEST_ANGSTROM_MEDIAN:
        msg = (f"{name}: wavelengths {finite[0]:g}-{finite[-1]:g} look like nanometres or microns; give "
               "them in Angstrom or record the unit (Parquet field metadata 'unit', FITS TUNITn)")
        raise FormatError(msg)


def row_spectrum(name: str, wave, flux, ivar, unit: str | None, medium: str) -> Spectrum:
    """One table row as a :class:`Spectrum`, checked as a bulk row must be.

    Parameters
    ----------
    name : str
        ``TABLE#row``, named in errors.
    wave, flux : numpy.ndarray or None
    ivar : numpy.ndarray or None
        Pixels with ``ivar <= 0`` are invalid.
    unit : str or None
        The wavelength column's unit; None means Angstrom.
    medium : str

    Returns
    -------
    Spectrum

    Raises
    ------
    FormatError
        For unequal lengths, decreasing or unannounced-nanometre
        wavelengths, or no finite flux.

    Examples
    --------
    >>> row_spectrum("t.parquet#3", np.array([4000.0, 4001.0]), np.array([1.0]), None, None, "air")
    Traceback (most recent call last):
    ...
    deepscope.errors.FormatError: t.parquet#3: wavelength and flux arrays differ in length (2 vs 1 values)
    """
    if wave is None or flux is None:
        msg = f"{name}: the wavelength or flux array is missing (null)"
        raise FormatError(msg)
    if len(wave) != len(flux) or (ivar is not None and len(ivar) != len(flux)):
        extra = "" if ivar is None or len(ivar) == len(flux) else f", ivar {len(ivar)}"
        msg = f"{name}: wavelength and flux arrays differ in length ({len(wave)} vs {len(flux)} values{extra})"
        raise FormatError(msg)
    _check_wave(name, wave, unit)
    wave = wave * wavelength_scale(name, unit)
    valid = np.ones(len(flux), bool) if ivar is None else np.asarray(ivar) > 0
    return finish_spectrum(name, wave, flux, valid, medium, "option", {"format": "bulk-table"})


def read_rows(table, start: int, stop: int, layout: TableLayout, found: dict) -> tuple:
    """Rows ``start:stop`` of a bulk table as spectra, bad rows set aside.

    Parameters
    ----------
    table : ParquetTable or FitsTable
    start, stop : int
    layout : TableLayout
    found : dict
        From :func:`resolve_columns`.

    Returns
    -------
    names : list of str
        ``file`` of every good row (``TABLE#row`` or the id column's value).
    spectra : list of Spectrum
    carried : list of dict
        The carried columns of every good row.
    failures : list of (str, str)
    """
    wave_name, flux_name, ivar_name = found["wave"], found["flux"], found["ivar"]
    wanted = [n for n in [wave_name, flux_name, ivar_name, found["id"], *found["carried"]] if n is not None]
    data = table.read(start, stop, list(dict.fromkeys(wanted)))
    unit = table.unit(wave_name)
    names, spectra, carried, failures = [], [], [], []
    for i in range(stop - start):
        name = f"{table.path}#{start + i}"
        if found["id"] is not None:
            name = str(data[found["id"]][i])
        try:
            wave = data[wave_name][i]
            ivar = data[ivar_name][i] if ivar_name is not None else None
            spectra.append(row_spectrum(name, wave, data[flux_name][i], ivar, unit, layout.medium))
        except FormatError as exc:
            failures.append((name, str(exc)))
            continue
        names.append(name)
        carried.append({column: data[column][i] for column in found["carried"]})
    return names, spectra, carried, failures
