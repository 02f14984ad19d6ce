"""Cross-matching a galaxy sample with label catalogues on the sky.

Each label catalogue is matched to the sample by nearest neighbour on the
sky (astropy ``match_to_catalog_sky``); positions come from coordinate
columns found by name (:data:`COORD_COLUMNS`, any case) or from SDSS-style
J-names (:func:`jname_positions`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from deepscope.errors import InputError
from deepscope.galaxy.catalog import find_column, has_column, numeric_column

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import pandas as pd

logger = logging.getLogger(__name__)

# Sky coordinate column pairs, in order of preference (SDSS, upper-case
# FITS, VizieR J2000 and ICRS names, and the target positions of SDSS
# spectroscopic and MaNGA tables).
COORD_COLUMNS = (("ra", "dec"), ("RAJ2000", "DEJ2000"), ("_RAJ2000", "_DEJ2000"), ("RA_ICRS", "DE_ICRS"),
                 ("objra", "objdec"))


def coordinate_columns(table: pd.DataFrame, ra_column: str | None = None, dec_column: str | None = None,
                       source: str = "table") -> tuple[str, str]:
    """The right ascension and declination columns of a table (``source`` names its file in errors).

    The names given, or the first pair of :data:`COORD_COLUMNS` present (any case).

    Raises
    ------
    InputError
        If a named column is missing, or no known pair is present.
    """
    if (ra_column is None) != (dec_column is None):
        msg = f"{source}: give both the ra and the dec column, or neither"
        raise InputError(msg)
    if ra_column is not None:
        return find_column(table, ra_column, source), find_column(table, dec_column, source)
    for ra, dec in COORD_COLUMNS:
        if has_column(table, ra) and has_column(table, dec):
            return find_column(table, ra, source), find_column(table, dec, source)
    tried = ", ".join(f"{ra}/{dec}" for ra, dec in COORD_COLUMNS)
    msg = f"{source}: no sky coordinate columns (tried {tried}, any case); name them explicitly"
    raise InputError(msg)


def _sky_coords(table, ra_column, dec_column, source):
    """SkyCoord of a table's rows; rows with missing coordinates are flagged."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra = numeric_column(table, ra_column, source)
    dec = numeric_column(table, dec_column, source)
    valid = np.isfinite(ra) & np.isfinite(dec)
    if np.any(np.abs(dec[valid]) > 90):
        bad = dec[valid][np.abs(dec[valid]) > 90][0]
        msg = f"{source}: column {dec_column!r} has {bad}, outside [-90, 90]: declinations must be in degrees"
        raise InputError(msg)
    coords = SkyCoord(np.where(valid, ra, 0.0) * u.deg, np.where(valid, dec, 0.0) * u.deg)
    return coords, valid


def crossmatch(
    sample: pd.DataFrame, labels: list[tuple[str, pd.DataFrame]], radius_arcsec: float, keep_unmatched: bool = False,
    ra_column: str | None = None, dec_column: str | None = None, label_ra_column: str | None = None,
    label_dec_column: str | None = None, sample_name: str = "sample", label_sources: list[str] | None = None,
) -> pd.DataFrame:
    """Attach the nearest label-catalogue row within a radius to each sample row.

    Each label catalogue is matched against the sample's positions
    independently (nearest neighbour on the sky). Its columns are added
    under their own names, or as ``{name}_{column}`` where that name is
    already taken; the separation goes into ``{name}_sep_arcsec``.

    Parameters
    ----------
    sample : pandas.DataFrame
    labels : list of tuple of (str, pandas.DataFrame)
        ``(name, table)`` per label catalogue; the name (e.g. the file stem) prefixes colliding columns.
    radius_arcsec : float
        Largest separation accepted as a match.
    keep_unmatched : bool
        Keep sample rows without a match in some catalogue (its columns empty) instead of dropping them.
    ra_column, dec_column, label_ra_column, label_dec_column : str, optional
        Coordinate columns (degrees) of the sample and of every label catalogue (:func:`coordinate_columns`).
    sample_name : str
    label_sources : list of str, optional
        Names of the sample's and the catalogues' files, for messages (default: the ``labels`` names).

    Returns
    -------
    pandas.DataFrame
        The sample rows with the label columns added, index reset.

    Raises
    ------
    InputError
        If the radius is not positive, a table is empty, or coordinate
        columns are missing or not in degrees.
    """
    import astropy.units as u
    import pandas as pd

    if not (np.isfinite(radius_arcsec) and radius_arcsec > 0):
        msg = f"match radius must be a positive number of arcsec, got {radius_arcsec}"
        raise InputError(msg)
    if sample.empty:
        msg = f"{sample_name}: the sample has no rows"
        raise InputError(msg)
    ra, dec = coordinate_columns(sample, ra_column, dec_column, sample_name)
    sample_coords, sample_valid = _sky_coords(sample, ra, dec, sample_name)
    result = sample.reset_index(drop=True).copy()
    matched_all = sample_valid.copy()
    label_sources = [name for name, _ in labels] if label_sources is None else label_sources
    for (name, table), source in zip(labels, label_sources, strict=True):
        if table.empty:
            msg = f"{source}: the label catalogue has no rows"
            raise InputError(msg)
        lra, ldec = coordinate_columns(table, label_ra_column, label_dec_column, source)
        coords, valid = _sky_coords(table, lra, ldec, source)
        if not valid.any():
            msg = f"{source}: no row has finite coordinates in {lra!r}, {ldec!r}"
            raise InputError(msg)
        table = table[valid].reset_index(drop=True)
        index, separation, _ = sample_coords.match_to_catalog_sky(coords[valid])
        separation = separation.to_value(u.arcsec)
        matched = sample_valid & (separation <= radius_arcsec)
        if not matched.all():
            # Empty cells would turn integer columns into float64, which
            # corrupts 64-bit SDSS objIDs (> 2**53): use nullable dtypes.
            nullable = {c: "Int64" for c in table.columns if pd.api.types.is_integer_dtype(table[c])}
            nullable |= {c: "boolean" for c in table.columns if pd.api.types.is_bool_dtype(table[c])}
            table = table.astype(nullable)
        # Label -1 is absent from the RangeIndex, so unmatched rows come out
        # empty instead of carrying a too-distant neighbour's labels.
        added = table.reindex(np.where(matched, index, -1)).reset_index(drop=True)
        renamed = {}
        for column in added.columns:
            renamed[column] = f"{name}_{column}" if column in result.columns else column
            if renamed[column] in result.columns:
                msg = f"{source}: column {column!r} collides with {renamed[column]!r} already in the output"
                raise InputError(msg)
        sep_column = f"{name}_sep_arcsec"
        if sep_column in result.columns or sep_column in renamed.values():
            msg = f"{source}: output column {sep_column!r} already exists; rename the file"
            raise InputError(msg)
        result = pd.concat([result, added.rename(columns=renamed)], axis=1)
        result[sep_column] = np.where(matched, separation, np.nan)
        matched_all &= matched
        repeats = int(pd.Series(index[matched]).duplicated().sum())
        logger.info(
            "%s: %d of %d sample rows matched within %g arcsec (%d label rows matched more than once)",
            source, int(matched.sum()), len(result), radius_arcsec, repeats,
        )
    if not keep_unmatched:
        result = result[matched_all].reset_index(drop=True)
    logger.info("%d of %d sample rows matched every catalogue", int(matched_all.sum()), len(matched_all))
    return result


def jname_positions(names: Iterable[str], source: str = "table") -> tuple[np.ndarray, np.ndarray]:
    """Sky positions encoded in SDSS-style J-names (``J000251.73+002545.6``).

    ``names`` are names or file names (a directory and suffix are ignored)
    holding ``JHHMMSS.ss+DDMMSS.s`` (any number of decimals). Returns ``ra``,
    ``dec`` in degrees: SDSS truncates, not rounds, the coordinates in its
    names, so they lie up to ~0.15 arcsec from the catalogue position.

    Raises
    ------
    InputError
        If a name holds no J-name.

    Examples
    --------
    >>> ra, dec = jname_positions(["images/J000251.73+002545.6.jpeg"])
    >>> round(float(ra[0]), 5), round(float(dec[0]), 5)
    (0.71554, 0.42933)
    """
    import re

    pattern = re.compile(r"J(\d{2})(\d{2})(\d{2}(?:\.\d*)?)([+-])(\d{2})(\d{2})(\d{2}(?:\.\d*)?)")
    ra, dec = [], []
    for name in names:
        found = pattern.search(str(name).replace("\\", "/").rsplit("/", 1)[-1])
        if found is None:
            msg = f"{source}: {name!r} holds no J-name (JHHMMSS.ss+DDMMSS.s)"
            raise InputError(msg)
        hours, minutes, seconds, sign, degrees, arcmin, arcsec = found.groups()
        ra.append(15.0 * (int(hours) + int(minutes) / 60.0 + float(seconds) / 3600.0))
        value = int(degrees) + int(arcmin) / 60.0 + float(arcsec) / 3600.0
        dec.append(-value if sign == "-" else value)
    return np.asarray(ra), np.asarray(dec)


def sample_positions(rows: pd.DataFrame, source: str = "table") -> tuple[np.ndarray, np.ndarray]:
    """Sky positions of a labels table's rows: its ``ra``/``dec`` columns, else the J-names of its files.

    Raises
    ------
    InputError
        If there are no coordinates and a file name holds no J-name.

    Examples
    --------
    >>> import pandas as pd
    >>> ra, dec = sample_positions(pd.DataFrame({"file": ["J000251.73+002545.6.jpeg"]}))
    >>> round(float(ra[0]), 3), round(float(dec[0]), 3)
    (0.716, 0.429)
    """
    if {"ra", "dec"} <= set(rows.columns):
        return rows["ra"].to_numpy(float), rows["dec"].to_numpy(float)
    return jname_positions(rows["file"], source)


def unique_names(paths: Iterable[str | Path]) -> list[str]:
    """Short, distinct names for label files: their stems, numbered if repeated.

    Examples
    --------
    >>> from pathlib import Path
    >>> unique_names([Path("a/gz2.csv"), Path("b/gz2.fits"), Path("na10.csv")])
    ['gz2', 'gz2_2', 'na10']
    """
    names, seen = [], {}
    for path in paths:
        stem = path.name.split(".")[0]
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def crossmatch_files(sample: str | Path, labels: list[str | Path], out: str | Path, radius_arcsec: float,
                     **options) -> tuple[int, int]:
    """Read a sample and label catalogues, :func:`crossmatch` them and write the result.

    Parameters
    ----------
    sample : str or Path
        Sample table (CSV, FITS or Parquet).
    labels : list of str or Path
        Label catalogues; colliding columns are prefixed with the file stem (:func:`unique_names`).
    out : str or Path
        ``.csv`` or ``.parquet`` output, checked before anything is read.
    radius_arcsec : float
    **options
        ``keep_unmatched`` and the coordinate column names of :func:`crossmatch`.

    Returns
    -------
    written, total : int
        Rows written and rows in the sample.

    Raises
    ------
    OutputError
        If ``out`` has another suffix or cannot be written.
    FormatError, InputError
        If a table cannot be read or lacks its coordinates.
    """
    from pathlib import Path

    from deepscope.core.files import check_table_output, read_table, write_table

    check_table_output(out)
    table = read_table(sample)
    paths = [Path(p) for p in labels]
    catalogues = [(name, read_table(path)) for name, path in zip(unique_names(paths), paths, strict=True)]
    result = crossmatch(table, catalogues, radius_arcsec, sample_name=str(sample),
                        label_sources=[str(p) for p in labels], **options)
    write_table(result, out)
    return len(result), len(table)
