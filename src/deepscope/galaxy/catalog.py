"""Galaxy catalogues: sample selection cuts and sky cross-matching.

Catalogues are pandas tables with SDSS column names (CSV, Parquet or FITS
on disk, read by :func:`deepscope.core.files.read_table`). Column names
are matched exactly first, then ignoring case, because FITS tables often
come with upper-case names (``PETROMAG_R``). photoObj-style array columns
(``PETROMAG`` holding the five bands u, g, r, i, z in each row) are read
one band at a time: ``petroMag[2]``, ``petroMag[r]``, or the column name
with a band (:func:`column_values`).
"""

import logging
import re

import numpy as np

from deepscope.errors import InputError

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

# Sky coordinate column pairs, in order of preference (SDSS, upper-case
# FITS, VizieR J2000 and ICRS names).
COORD_COLUMNS = (("ra", "dec"), ("RAJ2000", "DEJ2000"), ("_RAJ2000", "_DEJ2000"), ("RA_ICRS", "DE_ICRS"))


def find_column(table, name, source="table", option=None):
    """The column of ``table`` called ``name``, exactly or ignoring case.

    Parameters
    ----------
    table : pandas.DataFrame
    name : str
    source : str
        Name of the table's file, for the error message.
    option : str, optional
        Command-line option that names this column (``--z-column``), so
        the error tells the user what to change.

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
    hint = f"; name the right one with {option}" if option else ""
    if matches:
        msg = f"{source}: column {name!r} is ambiguous: {', '.join(map(str, matches))}{hint}"
    else:
        msg = f"{source}: missing column {name!r}{hint}; found {', '.join(map(str, table.columns))}"
    raise InputError(msg)


def _has_column(table, name):
    return name in table.columns or any(str(c).lower() == name.lower() for c in table.columns)


def _is_array_column(values):
    """Whether a column holds a sequence per row (photoObj's PETROMAG[5] ...)."""
    first = values.dropna()
    return values.dtype == object and not first.empty and isinstance(first.iloc[0], (list, tuple, np.ndarray))


def _numeric(table, column, source, option=None):
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


def column_values(table, spec, band=None, source="table", option=None):
    """One numeric column of a catalogue, or one band of an array column.

    Parameters
    ----------
    table : pandas.DataFrame
    spec : str
        A column name (``petroMag_r``), or an array column with an index or
        band (``petroMag[2]``, ``petroMag[r]``). A column literally named
        ``spec`` wins over the subscript reading.
    band : str, optional
        Band (``u, g, r, i, z``) taken from an array column named without
        a subscript; ignored for plain columns.
    source : str
        Name of the table's file, for messages.
    option : str, optional
        Command-line option that names the column, for messages.

    Returns
    -------
    label : str
        The column as spelled in ``table``, with its subscript
        (``PETROMAG[2]``), for logs.
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
    if parsed is None or _has_column(table, spec):
        name, index = spec, None
    else:
        name, index = parsed["name"], parsed["index"]
    column = find_column(table, name, source, option)
    values = table[column]
    if not _is_array_column(values):
        if index is not None:
            msg = f"{source}: column {column!r} holds one value per row; {option or 'the column'} takes no [{index}]"
            raise InputError(msg)
        return str(column), _numeric(table, column, source, option)
    if index is None and band is None:
        return str(column), _numeric(table, column, source, option)  # refuses with a hint
    position = _band_index(index, band, column, source)
    rows = [np.asarray(v, dtype=float) if isinstance(v, (list, tuple, np.ndarray)) else None for v in values]
    lengths = {len(v) for v in rows if v is not None}
    if any(position >= n for n in lengths):
        msg = f"{source}: column {column!r} has {min(lengths)} values per row, no index {position}"
        raise InputError(msg)
    picked = np.array([np.nan if v is None else v[position] for v in rows], dtype=float)
    return f"{column}[{position}]", picked


def magnitude_column(table, mag_column=None, source="table", band="r"):
    """The magnitude column to cut on.

    Parameters
    ----------
    table : pandas.DataFrame
    mag_column : str, optional
        Use this column (an array column may carry a subscript:
        ``petroMag[2]``); by default the first present of ``MAG_COLUMNS``
        (``petroMag_r``, ``modelMag_r``, ``r``, ``cModelMag_r``, with the
        band's letter for another band), then of the photoObj array columns
        ``petroMag``, ``modelMag``, ``cModelMag`` (``PETROMAG`` ...).
    source : str
        Name of the table's file, for the error message.
    band : str
        The band whose magnitude is wanted, for the defaults.

    Returns
    -------
    str
        The column's name, or the array column's name when the default is
        an array column (its band is then taken by :func:`column_values`).

    Raises
    ------
    InputError
        If the column (or every default) is missing.
    """
    if mag_column is not None:
        if _SUBSCRIPT.match(mag_column) and not _has_column(table, mag_column):
            return mag_column  # checked, with its subscript, by column_values
        return find_column(table, mag_column, source, "--mag-column")
    names = [name[:-1] + band if name.endswith("_r") else band if name == "r" else name for name in MAG_COLUMNS]
    names += [name[:-2] for name in MAG_COLUMNS if name.endswith("_r")]
    for name in names:
        if _has_column(table, name):
            return find_column(table, name, source)
    msg = f"{source}: no {band}-band magnitude column (tried {', '.join(names)}); name one with --mag-column"
    raise InputError(msg)


def select_sample(
    table, r_min=14.0, r_max=17.4, z_max=0.2, radius_min=5.0, radius_max=30.0, mag_column=None,
    z_column=Z_COLUMN, radius_column=RADIUS_COLUMN, source="table", band="r",
):
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
        Redshift and radius columns. The magnitude and radius may be
        array columns with a subscript (see :func:`column_values`).
    source : str
        Name of the table's file, for messages.
    band : str
        Band (``u, g, r, i, z``) read from array columns named without a
        subscript (``PETROMAG``, ``PETROR50``), and whose magnitude the
        default magnitude column holds.

    Returns
    -------
    selected : pandas.DataFrame
        The rows that pass every cut, index reset.
    counts : list of tuple of (str, int)
        ``(cut, rows left after it)`` in order, starting with all rows.

    Raises
    ------
    InputError
        If a column is missing or not numeric (each such error names its
        option: ``--mag-column``, ``--z-column``, ``--radius-column``), or
        a range is empty.

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


def coordinate_columns(table, ra_column=None, dec_column=None, source="table"):
    """The right ascension and declination columns of a table.

    Parameters
    ----------
    table : pandas.DataFrame
    ra_column, dec_column : str, optional
        Names to use; by default the first pair of ``COORD_COLUMNS``
        present (``ra/dec``, ``RA/DEC``, ``RAJ2000/DEJ2000`` ...).
    source : str
        Name of the table's file, for the error message.

    Returns
    -------
    tuple of str

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
        if _has_column(table, ra) and _has_column(table, dec):
            return find_column(table, ra, source), find_column(table, dec, source)
    tried = ", ".join(f"{ra}/{dec}" for ra, dec in COORD_COLUMNS)
    msg = f"{source}: no sky coordinate columns (tried {tried}, any case); name them explicitly"
    raise InputError(msg)


def _sky_coords(table, ra_column, dec_column, source):
    """SkyCoord of a table's rows; rows with missing coordinates are flagged."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra = _numeric(table, ra_column, source)
    dec = _numeric(table, dec_column, source)
    valid = np.isfinite(ra) & np.isfinite(dec)
    if np.any(np.abs(dec[valid]) > 90):
        bad = dec[valid][np.abs(dec[valid]) > 90][0]
        msg = f"{source}: column {dec_column!r} has {bad}, outside [-90, 90]: declinations must be in degrees"
        raise InputError(msg)
    coords = SkyCoord(np.where(valid, ra, 0.0) * u.deg, np.where(valid, dec, 0.0) * u.deg)
    return coords, valid


def crossmatch(
    sample, labels, radius_arcsec, keep_unmatched=False, ra_column=None, dec_column=None,
    label_ra_column=None, label_dec_column=None, sample_name="sample", label_sources=None,
):
    """Attach the nearest label-catalogue row within a radius to each sample row.

    Each label catalogue is matched against the sample's positions
    independently (nearest neighbour on the sky). Its columns are added
    under their own names, or as ``{name}_{column}`` where that name is
    already taken; the separation goes into ``{name}_sep_arcsec``.

    Parameters
    ----------
    sample : pandas.DataFrame
    labels : list of tuple of (str, pandas.DataFrame)
        ``(name, table)`` per label catalogue; the name (e.g. the file
        stem) prefixes colliding columns.
    radius_arcsec : float
        Largest separation accepted as a match.
    keep_unmatched : bool
        Keep sample rows without a match in some catalogue (its columns
        left empty) instead of dropping them.
    ra_column, dec_column : str, optional
        Sample coordinate columns (degrees); see :func:`coordinate_columns`.
    label_ra_column, label_dec_column : str, optional
        Coordinate columns of every label catalogue.
    sample_name : str
        Name of the sample's file, for messages.
    label_sources : list of str, optional
        Names of the label catalogues' files, for messages; the ``labels``
        names by default.

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


def jname_positions(names, source="table"):
    """Sky positions encoded in SDSS-style J-names (``J000251.73+002545.6``).

    Parameters
    ----------
    names : iterable of str
        Names or file names (a directory and suffix are ignored), with
        ``JHHMMSS.ss+DDMMSS.s`` (any number of decimals).
    source : str
        Name of the table's file, for the error message.

    Returns
    -------
    ra, dec : numpy.ndarray
        Degrees. SDSS truncates, not rounds, the coordinates in its names,
        so they lie up to ~0.15 arcsec from the catalogue position.

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


def unique_names(paths):
    """Short, distinct names for label files: their stems, numbered if repeated.

    Parameters
    ----------
    paths : list of Path

    Returns
    -------
    list of str

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
