"""Galaxy catalogues: finding columns, and the sample selection cuts.

Catalogues are pandas tables with SDSS column names (CSV, Parquet or FITS
on disk, read by :func:`deepscope.core.files.read_table`). Column names
are matched exactly first, then ignoring case, because FITS tables often
come with upper-case names (``PETROMAG_R``). Cross-matching with label
catalogues on the sky is in :mod:`deepscope.galaxy.crossmatch`.
"""

from __future__ import annotations

import logging
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

def find_column(table: pd.DataFrame, name: str, source: str = "table") -> str:
    """The column of ``table`` called ``name``, exactly or ignoring case.

    Parameters
    ----------
    table : pandas.DataFrame
    name : str
    source : str
        Name of the table's file, for the error message.

    Returns
    -------
    str
        The column's name as spelled in ``table``.

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
    if matches:
        msg = f"{source}: column {name!r} is ambiguous: {', '.join(map(str, matches))}"
    else:
        msg = f"{source}: missing column {name!r}; found {', '.join(map(str, table.columns))}"
    raise InputError(msg)


def has_column(table: pd.DataFrame, name: str) -> bool:
    """Whether ``table`` has a column called ``name``, exactly or ignoring case."""
    return name in table.columns or any(str(c).lower() == name.lower() for c in table.columns)


def numeric_column(table: pd.DataFrame, column: str, source: str = "table") -> np.ndarray:
    """A column as float, refusing text (a wrong column would cut silently)."""
    import pandas as pd

    values = table[column]
    if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        msg = f"{source}: column {column!r} is not numeric (first value {values.iloc[0]!r})"
        raise InputError(msg)
    return values.astype(float).to_numpy()


def magnitude_column(table: pd.DataFrame, mag_column: str | None = None, source: str = "table") -> str:
    """The r-band magnitude column to cut on.

    Parameters
    ----------
    table : pandas.DataFrame
    mag_column : str, optional
        Use this column; by default the first present of ``MAG_COLUMNS``
        (``petroMag_r``, ``modelMag_r``, ``r``, ``cModelMag_r``).
    source : str
        Name of the table's file, for the error message.

    Returns
    -------
    str

    Raises
    ------
    InputError
        If the column (or every default) is missing.
    """
    if mag_column is not None:
        return find_column(table, mag_column, source)
    for name in MAG_COLUMNS:
        if has_column(table, name):
            return find_column(table, name, source)
    msg = f"{source}: no r-band magnitude column (tried {', '.join(MAG_COLUMNS)}); name one with --mag-column"
    raise InputError(msg)


def select_sample(
    table: pd.DataFrame, r_min: float = 14.0, r_max: float = 17.4, z_max: float = 0.2, radius_min: float = 5.0,
    radius_max: float = 30.0, mag_column: str | None = None, z_column: str = Z_COLUMN,
    radius_column: str = RADIUS_COLUMN, source: str = "table",
) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Apply the galaxy sample cuts: bright, nearby and well resolved.

    A row passes when ``r_min < mag < r_max``, ``z < z_max`` and
    ``radius_min <= radius <= radius_max`` (arcsec). Missing values
    (NaN, or SDSS's ``-9999``) fail the cut they are in.

    Parameters
    ----------
    table : pandas.DataFrame
    r_min, r_max : float
        Magnitude range (exclusive).
    z_max : float
        Redshift upper bound (exclusive).
    radius_min, radius_max : float
        Half-light radius range in arcsec (inclusive).
    mag_column : str, optional
        See :func:`magnitude_column`.
    z_column, radius_column : str
        Redshift and radius columns.
    source : str
        Name of the table's file, for messages.

    Returns
    -------
    selected : pandas.DataFrame
        The rows that pass every cut, index reset.
    counts : list of tuple of (str, int)
        ``(cut, rows left after it)`` in order, starting with all rows.

    Raises
    ------
    InputError
        If a column is missing or not numeric, or a range is empty.

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
    mag = magnitude_column(table, mag_column, source)
    z = find_column(table, z_column, source)
    radius = find_column(table, radius_column, source)
    mag_values = numeric_column(table, mag, source)
    z_values = numeric_column(table, z, source)
    radius_values = numeric_column(table, radius, source)
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

    Parameters
    ----------
    catalog : str or Path
        CSV, FITS or Parquet catalogue.
    out : str or Path
        ``.csv`` or ``.parquet`` output, checked before the catalogue is read.
    **cuts
        Keyword arguments of :func:`select_sample` (``r_min``, ``z_max``, ``mag_column`` ...).

    Returns
    -------
    selected, total : int
        Rows written and rows in the catalogue.

    Raises
    ------
    OutputError
        If ``out`` has another suffix or cannot be written.
    FormatError, InputError
        If the catalogue cannot be read, or a column is missing or not numeric.
    """
    from deepscope.core.files import read_table, write_table
    from deepscope.galaxy.io import check_table_output

    check_table_output(out)
    table = read_table(catalog)
    selected, counts = select_sample(table, source=str(catalog), **cuts)
    write_table(selected, out)
    return len(selected), counts[0][1]
