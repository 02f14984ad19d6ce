"""Rows of a bulk table -> checked spectra, exactly as a per-file reader would give them (no torch here).

Every bad row (arrays of unequal length, wavelengths not increasing or in
nanometres nobody announced, no finite flux, a null array) is set aside with
one line naming it ``TABLE#row``, and the good rows go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepscope.errors import FormatError, InputError
from deepscope.spectra.io.spectrum import ColumnNames, Spectrum, finish_spectrum, wavelength_scale

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
    rv_column : str, optional
        Column of each row's known radial velocity (km/s), undone instead of
        a measured one (a missing value: measured).
    """

    columns: ColumnNames = field(default_factory=lambda: ColumnNames("wavelength", "flux"))
    medium: str = "air"
    id_column: str | None = None
    rv_column: str | None = None


def resolve_columns(table, layout: TableLayout) -> dict:
    """A table's own spelling of each column the ``layout`` names, checked before any work.

    Returns ``wave``, ``flux``, ``ivar`` (or None), ``id`` (or None), ``rv``
    (or None), ``shared_wave`` (the one wavelength grid of a table that gives it once,
    else None) and ``carried``: the non-array columns copied into the output.

    Raises
    ------
    InputError
        Naming the table, the missing column and the option that named it.
    """
    from deepscope.spectra.io.fits import find_column

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
             "id": column(layout.id_column, "--id-column"), "rv": column(layout.rv_column, "--rv-column")}
    found["shared_wave"] = table.shared(found["wave"]) if found["wave"] in table.shared_names else None
    for key in ("wave", "flux", "ivar") if found["shared_wave"] is None else ("flux", "ivar"):
        if found[key] is not None and not table.is_array(found[key]):
            msg = f"{table.path}: column {found[key]!r} holds one number per row, not an array per spectrum"
            raise InputError(msg)
    if found["rv"] is not None and table.is_array(found["rv"]):
        msg = f"{table.path}: column {found['rv']!r} holds an array per row, not one radial velocity"
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
    """One table row, ``name`` ``TABLE#row``, as a :class:`Spectrum` in Angstrom, checked as a bulk row must be.

    ``unit`` is the wavelength column's (None: Angstrom); pixels with ``ivar <= 0`` are invalid.

    Raises
    ------
    FormatError
        For a null array, unequal lengths, decreasing or unannounced-nanometre
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


def _block(values, rows: np.ndarray, length: int) -> np.ndarray | None:
    """The ``rows`` of an array column as one ``(len(rows), length)`` float64 array (None for no column)."""
    if values is None:
        return None
    if isinstance(values, np.ndarray) and values.ndim == 2:
        return np.asarray(values if rows.size == len(values) else values[rows], dtype=np.float64)
    return np.array([values[i] for i in rows], dtype=np.float64).reshape(len(rows), length)


def _regular_rows(columns, n_rows: int) -> tuple[np.ndarray, int]:
    """Rows whose array columns are all present and of one common length: ``(rows, length)``.

    The length is the commonest one among rows whose columns agree; rows of
    other lengths, whose columns disagree or with a null array take the
    one-row path, which names what is wrong with them.
    """
    lengths = []
    for values in columns:
        if isinstance(values, np.ndarray) and values.ndim == 2:
            lengths.append(np.full(n_rows, values.shape[1]))
        elif isinstance(values, np.ndarray) and values.ndim == 1:  # a shared wavelength array
            lengths.append(np.full(n_rows, values.size))
        else:
            lengths.append(np.array([-1 if v is None else len(v) for v in values], dtype=int))
    lengths = np.stack(lengths)
    same = (lengths == lengths[0]).all(axis=0) & (lengths[0] >= 2)
    if not same.any():
        return np.zeros(0, int), 0
    length = int(np.bincount(lengths[0][same]).argmax())
    return np.flatnonzero(same & (lengths[0] == length)), length


def _block_spectra(wave, flux, ivar, unit, medium) -> tuple[np.ndarray, list]:
    """Rows of equal length that pass every check of :func:`row_spectrum`, as spectra built in bulk.

    ``wave`` is ``(n,)`` shared or ``(N, n)``; ``flux`` and ``ivar`` (or
    None) are ``(N, n)``. Returns ``ok``, ``(N,)``: the rows done here (the
    others, anything unusual, are left to :func:`row_spectrum`, which gives
    them its exact messages); and one spectrum per ``ok`` row, rows on
    identical wavelengths sharing one array, which lets the preparation
    resample them together.
    """
    try:
        scale = wavelength_scale("table", unit)
    except FormatError:
        return np.zeros(len(flux), bool), []
    # Survey tables repeat one grid: rows equal to the first are checked once, through it.
    same = np.ones(len(flux), bool) if wave.ndim == 1 else (wave == wave[0]).all(axis=1)
    distinct = np.atleast_2d(wave)[np.r_[0, np.flatnonzero(~same)]] if wave.ndim == 2 else wave[None]
    finite = np.isfinite(distinct).all(axis=1)
    increasing = (np.diff(distinct, axis=1) > 0).all(axis=1)
    # Sorted rows: the median is the mean of the middle values, as np.median takes it.
    median = 0.5 * (distinct[:, (distinct.shape[1] - 1) // 2] + distinct[:, distinct.shape[1] // 2])
    sound_distinct = (finite & increasing & (distinct[:, 0] * scale > 0)
                      & ((unit is not None) | (median >= SMALLEST_ANGSTROM_MEDIAN)))
    sound = np.full(len(flux), sound_distinct[0])
    sound[~same] = sound_distinct[1:]
    valid = np.isfinite(flux) & (flux != 0.0)
    if ivar is not None:
        valid &= ivar > 0
    ok = sound & valid.any(axis=1)
    if not valid.all():
        flux = np.where(valid, flux, 0.0)
    meta = {"format": "bulk-table"}
    if wave.ndim == 1:
        shared = [wave * scale] * len(flux)
    else:
        shared = _shared_grids(wave, ok & same, ok & ~same, scale)
    spectra = [Spectrum(shared[i], flux[i], valid[i], medium, "option", dict(meta)) for i in np.flatnonzero(ok)]
    return ok, spectra


def _shared_grids(wave: np.ndarray, first: np.ndarray, others: np.ndarray, scale: float) -> list:
    """One wavelength array per distinct grid, indexed by row: ``first`` rows share row 0's, ``others`` are hashed."""
    grids = [None] * len(wave)
    common = wave[0] * scale
    seen = {}
    for i in np.flatnonzero(first):
        grids[i] = common
    for i in np.flatnonzero(others):
        grids[i] = seen.setdefault(wave[i].tobytes(), wave[i] * scale)
    return grids


def _velocity(value) -> float:
    """A table cell as a radial velocity in km/s: NaN for a missing, non-numeric or infinite value."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return value if np.isfinite(value) else float("nan")


def read_rows(table, start: int, stop: int, layout: TableLayout, found: dict) -> tuple:
    """Rows ``start:stop`` of a bulk table as spectra, bad rows set aside (``found``: :func:`resolve_columns`).

    Rows of one length whose wavelengths are finite, increasing and in
    Angstrom (every row of a sound survey table) are checked and built as
    one block of arrays; any other row goes through :func:`row_spectrum`,
    which names what is wrong with it. The spectra are the same either way.

    Returns
    -------
    names : list of str
        ``file`` of every good row (``TABLE#row`` or the id column's value).
    spectra : list of Spectrum
        Rows on one wavelength grid share one ``wave`` array; with an
        ``rv`` column each carries its known velocity (``rv_kms``).
    carried : list of dict
        The carried columns of every good row.
    failures : list of (str, str)
    """
    wave_name, flux_name, ivar_name = found["wave"], found["flux"], found["ivar"]
    shared = found["shared_wave"]
    wanted = [wave_name if shared is None else None, flux_name, ivar_name, found["id"], found["rv"],
              *found["carried"]]
    wanted = [n for n in wanted if n is not None]
    data = table.read(start, stop, list(dict.fromkeys(wanted)))
    unit = table.unit(wave_name)
    n_rows = stop - start
    waves = data[wave_name] if shared is None else shared
    ivars = data[ivar_name] if ivar_name is not None else None
    rows, length = _regular_rows([c for c in (waves, data[flux_name], ivars) if c is not None], n_rows)
    built = {}
    if rows.size:
        block_wave = waves if shared is not None else _block(waves, rows, length)
        ok, spectra = _block_spectra(block_wave, _block(data[flux_name], rows, length),
                                     _block(ivars, rows, length), unit, layout.medium)
        built = dict(zip(rows[ok].tolist(), spectra))
    prefix = f"{table.path}#"
    ids = data[found["id"]] if found["id"] is not None else None
    rvs = data[found["rv"]] if found["rv"] is not None else None
    names, spectra, carried, failures = [], [], [], []
    for i in range(n_rows):
        name = str(ids[i]) if ids is not None else f"{prefix}{start + i}"
        spectrum = built.get(i)
        if spectrum is None:
            try:
                spectrum = row_spectrum(name, waves[i] if shared is None else shared, data[flux_name][i],
                                        ivars[i] if ivars is not None else None, unit, layout.medium)
            except FormatError as exc:
                failures.append((name, str(exc)))
                continue
        if rvs is not None:
            spectrum.rv_kms = _velocity(rvs[i])
        names.append(name)
        spectra.append(spectrum)
        carried.append({column: data[column][i] for column in found["carried"]})
    return names, spectra, carried, failures
