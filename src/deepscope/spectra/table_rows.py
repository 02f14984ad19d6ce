"""Rows of a bulk table -> checked spectra, exactly as a per-file reader would give them (no torch here).

Every bad row (arrays of unequal length, wavelengths not increasing or in
nanometres nobody announced, no finite flux, a null array) is set aside with
one line naming it ``TABLE#row``, and the good rows go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepscope.errors import FormatError, InputError
from deepscope.spectra.spectrum import ColumnNames, Spectrum, finish_spectrum, wavelength_scale

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


def resolve_columns(table, layout: TableLayout) -> dict:
    """The table's own spelling of each named column, checked before any work.

    Parameters
    ----------
    table : ParquetTable, FitsTable or Hdf5Table
    layout : TableLayout

    Returns
    -------
    dict
        ``wave``, ``flux``, ``ivar`` (or None), ``id`` (or None),
        ``shared_wave`` (the one wavelength grid of a table that gives it
        once, else None) and ``carried``: the non-array columns copied
        into the output.

    Raises
    ------
    InputError
        Naming the table, the missing column and the option that named it.
    """
    from deepscope.spectra.fits_readers import find_column

    def column(wanted, option):
        if wanted is None:
            return None
        if option == "--wave-column":
            shared = {name.lower(): name for name in table.shared_names}
            if wanted.lower() in shared and wanted.lower() not in {name.lower() for name in table.names}:
                return shared[wanted.lower()]
        try:
            return find_column(table.names, (), wanted, table.path, option)
        except FormatError as exc:
            raise InputError(str(exc)) from None

    found = {"wave": column(layout.columns.wave, "--wave-column"),
             "flux": column(layout.columns.flux, "--flux-column"),
             "ivar": column(layout.columns.ivar, "--ivar-column"),
             "id": column(layout.id_column, "--id-column")}
    found["shared_wave"] = table.shared(found["wave"]) if found["wave"] in table.shared_names else None
    for key in ("wave", "flux", "ivar") if found["shared_wave"] is None else ("flux", "ivar"):
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
        On the row's own wavelengths, in Angstrom.

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
    table : ParquetTable, FitsTable or Hdf5Table
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
    shared = found["shared_wave"]
    wanted = [wave_name if shared is None else None, flux_name, ivar_name, found["id"], *found["carried"]]
    wanted = [n for n in wanted if n is not None]
    data = table.read(start, stop, list(dict.fromkeys(wanted)))
    unit = table.unit(wave_name)
    names, spectra, carried, failures = [], [], [], []
    for i in range(stop - start):
        name = f"{table.path}#{start + i}"
        if found["id"] is not None:
            name = str(data[found["id"]][i])
        try:
            wave = data[wave_name][i] if shared is None else shared
            ivar = data[ivar_name][i] if ivar_name is not None else None
            spectra.append(row_spectrum(name, wave, data[flux_name][i], ivar, unit, layout.medium))
        except FormatError as exc:
            failures.append((name, str(exc)))
            continue
        names.append(name)
        carried.append({column: data[column][i] for column in found["carried"]})
    return names, spectra, carried, failures
