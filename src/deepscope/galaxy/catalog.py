"""Galaxy catalogues: finding columns, and the sample selection cuts.

Catalogues are pandas tables with SDSS column names (CSV, Parquet or FITS
on disk, read by :func:`deepscope.core.files.read_table`). Column names
are matched exactly first, then ignoring case, because FITS tables often
come with upper-case names (``PETROMAG_R``). photoObj-style array columns
(``PETROMAG`` holding the five bands u, g, r, i, z in each row) are read
one band at a time: ``petroMag[2]``, ``petroMag[r]``, or the column name
with a band (:func:`column_values`). Cross-matching with label catalogues
on the sky is in :mod:`deepscope.galaxy.crossmatch`.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import numpy as np

from deepscope.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

logger = logging.getLogger(__name__)

# r-band magnitude columns, in order of preference: the Petrosian magnitude
# defines the SDSS main galaxy sample (Strauss et al. 2002); SkyServer's
# plain ``r`` is the model magnitude.
MAG_COLUMNS = ("petroMag_r", "modelMag_r", "r", "cModelMag_r")
Z_COLUMN = "z"
RADIUS_COLUMN = "petroR50_r"
# Order of the bands in SDSS photoObj array columns (PETROMAG[5] ...).
SDSS_BANDS = "ugriz"
# "name[2]" or "name[r]": one element of an array column.
_SUBSCRIPT = re.compile(r"^(?P<name>.+?)\[\s*(?P<index>\d+|[ugriz])\s*\]$")


def find_column(table: pd.DataFrame, name: str, source: str = "table", option: str | None = None) -> str:
    """The column of ``table`` called ``name``, exactly or ignoring case, as ``table`` spells it.

    ``source`` (the table's file) and ``option`` (the command-line option
    naming the column, ``--z-column``) make the error say what to change.

    Raises
    ------
    InputError
        If there is no such column, or several that differ only in case.

    Examples
    --------
    >>> import pandas as pd
    >>> find_column(pd.DataFrame({"PETROMAG_R": [15.0]}), "petroMag_r")
    'PETROMAG_R'
    """
    if name in table.columns:
        return name
    matches = [c for c in table.columns if str(c).lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    hint = f"; name the right one with {option}" if option else ""
    if matches:
        msg = f"{source}: column {name!r} is ambiguous: {', '.join(map(str, matches))}{hint}"
    else:
        msg = f"{source}: missing column {name!r}{hint}; found {', '.join(map(str, table.columns))}"
    raise InputError(msg)


def has_column(table: pd.DataFrame, name: str) -> bool:
    """Whether ``table`` has a column called ``name``, exactly or ignoring case."""
    return name in table.columns or any(str(c).lower() == name.lower() for c in table.columns)


def _is_array_column(values):
    """Whether a column holds a sequence per row (photoObj's PETROMAG[5] ...)."""
    first = values.dropna()
    return values.dtype == object and not first.empty and isinstance(first.iloc[0], (list, tuple, np.ndarray))


def numeric_column(table: pd.DataFrame, column: str, source: str = "table",
                   option: str | None = None) -> np.ndarray:
    """A column as float, refusing text (a wrong column would cut silently)."""
    import pandas as pd

    values = table[column]
    if _is_array_column(values):
        length = len(values.dropna().iloc[0])
        how = f"{option} '{column}[2]'" if option else f"'{column}[2]'"
        msg = (f"{source}: column {column!r} holds {length} values per row (one per band); "
               f"pick one with {how} (u, g, r, i, z are 0-4)")
        raise InputError(msg)
    if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        msg = f"{source}: column {column!r} is not numeric (first value {values.iloc[0]!r})"
        raise InputError(msg)
    return values.astype(float).to_numpy()


def _band_index(index, band, column, source):
    """Position in a photoObj array of an explicit index or a band letter."""
    if index is None:
        index = band
    if index.isdigit():
        return int(index)
    if index not in SDSS_BANDS:
        msg = f"{source}: column {column!r}: unknown band {index!r}; use one of {', '.join(SDSS_BANDS)} or an index"
        raise InputError(msg)
    return SDSS_BANDS.index(index)


def column_values(table: pd.DataFrame, spec: str, band: str | None = None, source: str = "table",
                  option: str | None = None) -> tuple[str, np.ndarray]:
    """One numeric column of a catalogue, or one band of an array column.

    Parameters
    ----------
    table : pandas.DataFrame
    spec : str
        A column name (``petroMag_r``), or an array column with an index or band (``petroMag[2]``,
        ``petroMag[r]``); a column literally named ``spec`` wins over the subscript reading.
    band : str, optional
        Band taken from an array column named without a subscript; ignored for plain columns.
    source, option : str, optional
        The table's file and the option naming the column, for messages (:func:`find_column`).

    Returns
    -------
    label : str
        The column as spelled in ``table``, with its subscript (``PETROMAG[2]``), for logs.
    values : numpy.ndarray
        ``float64``, one per row; missing rows are NaN.

    Raises
    ------
    InputError
        If the column is missing, not numeric, an array column without a
        band, a plain column with a subscript, or the index is out of range.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"PETROMAG": [[18.0, 16.5, 15.2, 14.8, 14.5]]})
    >>> column_values(table, "petroMag[2]")
    ('PETROMAG[2]', array([15.2]))
    >>> column_values(table, "petroMag", band="i")[1]
    array([14.8])
    """
    parsed = _SUBSCRIPT.match(spec)
    if parsed is None or has_column(table, spec):
        name, index = spec, None
    else:
        name, index = parsed["name"], parsed["index"]
    column = find_column(table, name, source, option)
    values = table[column]
    if not _is_array_column(values):
        if index is not None:
            msg = f"{source}: column {column!r} holds one value per row; {option or 'the column'} takes no [{index}]"
            raise InputError(msg)
        return str(column), numeric_column(table, column, source, option)
    if index is None and band is None:
        return str(column), numeric_column(table, column, source, option)  # refuses with a hint
    position = _band_index(index, band, column, source)
    rows = [np.asarray(v, dtype=float) if isinstance(v, (list, tuple, np.ndarray)) else None for v in values]
    lengths = {len(v) for v in rows if v is not None}
    if any(position >= n for n in lengths):
        msg = f"{source}: column {column!r} has {min(lengths)} values per row, no index {position}"
        raise InputError(msg)
    picked = np.array([np.nan if v is None else v[position] for v in rows], dtype=float)
    return f"{column}[{position}]", picked


def magnitude_column(table: pd.DataFrame, mag_column: str | None = None, source: str = "table",
                     band: str = "r") -> str:
    """The magnitude column to cut on.

    ``mag_column`` if given (an array column may carry a subscript,
    ``petroMag[2]``); else the first present of :data:`MAG_COLUMNS` (with
    ``band``'s letter for another band), then of the photoObj array columns
    ``petroMag``, ``modelMag``, ``cModelMag``, whose band :func:`column_values`
    takes. ``source`` names the table's file in errors.

    Raises
    ------
    InputError
        If the column (or every default) is missing.
    """
    if mag_column is not None:
        if _SUBSCRIPT.match(mag_column) and not has_column(table, mag_column):
            return mag_column  # checked, with its subscript, by column_values
        return find_column(table, mag_column, source, "--mag-column")
    names = [name[:-1] + band if name.endswith("_r") else band if name == "r" else name for name in MAG_COLUMNS]
    names += [name[:-2] for name in MAG_COLUMNS if name.endswith("_r")]
    for name in names:
        if has_column(table, name):
            return find_column(table, name, source)
    msg = f"{source}: no {band}-band magnitude column (tried {', '.join(names)}); name one with --mag-column"
    raise InputError(msg)


def select_sample(
    table: pd.DataFrame, r_min: float = 14.0, r_max: float = 17.4, z_max: float = 0.2, radius_min: float = 5.0,
    radius_max: float = 30.0, mag_column: str | None = None, z_column: str = Z_COLUMN,
    radius_column: str = RADIUS_COLUMN, source: str = "table", band: str = "r",
) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Apply the galaxy sample cuts: bright, nearby and well resolved.

    A row passes when ``r_min < mag < r_max``, ``z < z_max`` and
    ``radius_min <= radius <= radius_max`` (arcsec). Missing values
    (NaN, or SDSS's ``-9999``) fail the cut they are in.

    Parameters
    ----------
    table : pandas.DataFrame
    r_min, r_max, z_max, radius_min, radius_max : float
        The cuts (magnitudes and redshift exclusive, radii in arcsec inclusive).
    mag_column : str, optional
        See :func:`magnitude_column`.
    z_column, radius_column : str
        Redshift and radius columns; magnitude and radius may be array columns with a subscript
        (:func:`column_values`).
    source : str
        The table's file, for messages.
    band : str
        Band read from array columns named without a subscript, and whose magnitude the default
        magnitude column holds.

    Returns
    -------
    selected : pandas.DataFrame
        The rows that pass every cut, index reset.
    counts : list of tuple of (str, int)
        ``(cut, rows left after it)`` in order, starting with all rows.

    Raises
    ------
    InputError
        If a column is missing or not numeric (naming its option), or a range is empty.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"petroMag_r": [15.0, 18.0], "z": [0.05, 0.05], "petroR50_r": [8.0, 8.0]})
    >>> selected, counts = select_sample(table)
    >>> len(selected), counts[-1][1]
    (1, 1)
    """
    if not r_min < r_max:
        msg = f"empty magnitude range: r_min {r_min} >= r_max {r_max}"
        raise InputError(msg)
    if not radius_min <= radius_max:
        msg = f"empty radius range: radius_min {radius_min} > radius_max {radius_max}"
        raise InputError(msg)
    mag, mag_values = column_values(table, magnitude_column(table, mag_column, source, band), band, source,
                                    "--mag-column")
    z, z_values = column_values(table, z_column, None, source, "--z-column")
    radius, radius_values = column_values(table, radius_column, band, source, "--radius-column")
    # NaN compares False, so missing values fail every cut they meet.
    cuts = (
        (f"{r_min:g} < {mag} < {r_max:g}", (mag_values > r_min) & (mag_values < r_max)),
        (f"{z} < {z_max:g}", z_values < z_max),
        (
            f"{radius_min:g} <= {radius} <= {radius_max:g} arcsec",
            (radius_values >= radius_min) & (radius_values <= radius_max),
        ),
    )
    keep = np.ones(len(table), dtype=bool)
    counts = [("all rows", len(table))]
    for name, passed in cuts:
        keep &= passed
        counts.append((name, int(keep.sum())))
        logger.info("%s: %d of %d rows pass (%d left)", name, int(passed.sum()), len(table), int(keep.sum()))
    if not keep.any():
        logger.warning("%s: no row passes every cut; check the columns' units (magnitudes, arcsec)", source)
    return table[keep].reset_index(drop=True), counts


def select_sample_file(catalog: str | Path, out: str | Path, **cuts) -> tuple[int, int]:
    """Read a catalogue, apply :func:`select_sample` and write the selected rows.

    ``out`` (``.csv`` or ``.parquet``) is checked before ``catalog`` (CSV,
    FITS or Parquet) is read; ``cuts`` are :func:`select_sample`'s. Returns
    the rows written and the rows in the catalogue.

    Raises
    ------
    OutputError
        If ``out`` has another suffix or cannot be written.
    FormatError, InputError
        If the catalogue cannot be read, or a column is missing or not numeric.
    """
    from deepscope.core.files import check_table_output, read_table, write_table

    check_table_output(out)
    table = read_table(catalog)
    selected, counts = select_sample(table, source=str(catalog), **cuts)
    write_table(selected, out)
    return len(selected), counts[0][1]
