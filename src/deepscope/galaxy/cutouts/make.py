"""``galaxy cutout``: colour cutouts of catalogued galaxies from survey frames.

For each catalogue row the g, r and i frames holding the galaxy are
resampled onto one grid centred on it, north up and east left as SDSS colour
cutouts are (:mod:`deepscope.galaxy.cutouts.mosaic`), shrunk to the output
size with anti-aliasing and rendered as an asinh composite
(:func:`~deepscope.galaxy.cutouts.composite.lupton_composite`), the sky taken
from each whole frame (a cutout a few galaxy radii wide is mostly galaxy).
The field is a fixed number of arcsec, or ``size_factor`` times the galaxy's
radius (Abraham et al. 2018); each PNG records it (:mod:`deepscope.galaxy.field`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from deepscope.errors import BatchError, DeepscopeError, FormatError, InputError, first_line

logger = logging.getLogger(__name__)

DEFAULT_SIZE_FACTOR = 5.0
DEFAULT_PIXELS = 64
DEFAULT_RADIUS_COLUMN = "deVRad_r"
COLOUR_BANDS = "gri"
# Largest resampling grid, in output pixels per side: enough for the
# anti-aliasing filter, bounded memory for huge fields.
MAX_OVERSAMPLING = 8
# Columns cutouts.csv adds to the catalogue's own.
ADDED_COLUMNS = ("file", "status", "field_arcsec")


class CutoutSkipped(DeepscopeError):
    """A catalogue row that gets no cutout (off the frames, a band missing ...)."""


@dataclass(frozen=True)
class CutoutOptions:
    """How cutouts are cut and named (see the ``galaxy cutout`` options of the same names)."""

    pixels: int = DEFAULT_PIXELS  # output side
    size_factor: float = DEFAULT_SIZE_FACTOR  # field side as a multiple of the radius column ...
    fixed_arcsec: float | None = None  # ... or one side in arcsec for every galaxy (no radius needed)
    radius_column: str = DEFAULT_RADIUS_COLUMN  # arcsec; an array column takes an index (deVRad[2])
    name_column: str | None = None  # names the output files; SDSS J-names from ra/dec by default
    ra_column: str | None = None  # degrees; ra/dec, RAJ2000/DEJ2000 ... by default
    dec_column: str | None = None
    progress: bool = True  # a progress bar on stderr

    def check(self):
        """Refuse impossible settings, naming the option (InputError)."""
        if self.pixels < 8:
            msg = f"--pixels must be at least 8, got {self.pixels}"
            raise InputError(msg)
        if not (math.isfinite(self.size_factor) and self.size_factor > 0):
            msg = f"--size-factor must be a positive number, got {self.size_factor}"
            raise InputError(msg)
        if self.fixed_arcsec is not None and not (math.isfinite(self.fixed_arcsec) and self.fixed_arcsec > 0):
            msg = f"--fixed-arcsec must be a positive number of arcsec, got {self.fixed_arcsec}"
            raise InputError(msg)

    @property
    def field(self) -> dict:
        """The field convention these options cut to, as a checkpoint records it (:mod:`deepscope.galaxy.field`)."""
        if self.fixed_arcsec is not None:
            return {"kind": "fixed", "arcsec": float(self.fixed_arcsec), "pixels": self.pixels}
        return {"kind": "radius", "scale": float(self.size_factor), "radius_column": self.radius_column,
                "pixels": self.pixels}

    @classmethod
    def for_field(cls, field: dict, fixed_arcsec: float | None = None, size_factor: float | None = None,
                  radius_column: str | None = None, pixels: int | None = None, **options) -> CutoutOptions:
        """Options that cut to a model's field, unless ``fixed_arcsec``, or ``size_factor`` or
        ``radius_column`` (radius-scaled; the other from ``field`` or the defaults), say otherwise.

        Examples
        --------
        >>> CutoutOptions.for_field({"kind": "fixed", "arcsec": 19.2, "pixels": 64}).field
        {'kind': 'fixed', 'arcsec': 19.2, 'pixels': 64}
        >>> CutoutOptions.for_field({"kind": "fixed", "arcsec": 19.2, "pixels": 64}, size_factor=4.0).field
        {'kind': 'radius', 'scale': 4.0, 'radius_column': 'deVRad_r', 'pixels': 64}
        """
        scaled = field["kind"] == "radius"
        if fixed_arcsec is None and size_factor is None and radius_column is None and not scaled:
            fixed_arcsec = field["arcsec"]
        return cls(pixels=pixels or field["pixels"], fixed_arcsec=fixed_arcsec,
                   size_factor=size_factor or (field["scale"] if scaled else DEFAULT_SIZE_FACTOR),
                   radius_column=radius_column or field.get("radius_column", DEFAULT_RADIUS_COLUMN), **options)


def sdss_jname(ra, dec):
    """SDSS-style J-name of a sky position in degrees (``JHHMMSS.ss+DDMMSS.s``).

    Seconds are rounded (with carry), which reproduces the names of the
    shared SDSS cutouts (``J000251.73+002545.6.jpeg``).

    Examples
    --------
    >>> sdss_jname(0.7155255, 0.4293444)
    'J000251.73+002545.6'
    >>> sdss_jname(359.9999999, -0.5)
    'J000000.00-003000.0'
    """
    centiseconds = round((float(ra) % 360.0) / 15.0 * 360000.0) % (24 * 360000)
    hours, rest = divmod(centiseconds, 360000)
    minutes, rest = divmod(rest, 6000)
    deciarcsec = round(abs(float(dec)) * 36000.0)
    degrees, drest = divmod(deciarcsec, 36000)
    arcmin, drest = divmod(drest, 600)
    sign = "-" if dec < 0 and deciarcsec > 0 else "+"
    return (f"J{hours:02d}{minutes:02d}{rest // 100:02d}.{rest % 100:02d}"
            f"{sign}{degrees:02d}{arcmin:02d}{drest // 10:02d}.{drest % 10}")


def cutout_bands(frames_by_band, ra, dec, field_arcsec, pixels=DEFAULT_PIXELS):
    """The g, r, i images of a square field around a position, from survey frames.

    Parameters
    ----------
    frames_by_band : dict of str to list of Frame
        Candidate frames per band (``g``, ``r``, ``i``); those that do not reach the field are ignored.
    ra, dec, field_arcsec : float
        Field centre (degrees) and side.
    pixels : int
        Output side.

    Returns
    -------
    bands : numpy.ndarray
        ``float32`` ``(3, pixels, pixels)``, g, r, i in the frames' flux units, sky-subtracted, north
        up and east left; parts of the field on no frame are 0 (the sky).
    off_fraction : float
        Largest fraction of the field on no frame, over the bands.

    Raises
    ------
    CutoutSkipped
        If no frame of some band holds the position.
    FormatError
        If a frame's pixels cannot be read.
    """
    from skimage.transform import resize

    from deepscope.galaxy.cutouts.mosaic import cutout_wcs, resample_band

    holding = {band: [f for f in frames_by_band.get(band, []) if f.holds(*f.pixels(ra, dec)).item()]
               for band in COLOUR_BANDS}
    missing = [band for band in COLOUR_BANDS if not holding[band]]
    if len(missing) == len(COLOUR_BANDS):
        raise CutoutSkipped("off every frame")
    if missing:
        msg = f"no {', '.join(missing)}-band frame holds it"
        raise CutoutSkipped(msg)
    finest = min(f.pixel_scale for band in COLOUR_BANDS for f in holding[band])
    # Resample at (at least) the frames' own resolution, then shrink with anti-aliasing: sampling a large
    # field straight onto 64 pixels would alias. Beyond MAX_OVERSAMPLING a finer grid only costs memory.
    size = min(max(pixels, math.ceil(field_arcsec / finest)), MAX_OVERSAMPLING * pixels)
    grid = cutout_wcs(ra, dec, field_arcsec, size)
    yy, xx = np.mgrid[:size, :size]
    grid_ra, grid_dec = grid.pixel_to_world_values(xx.ravel(), yy.ravel())
    corner_ra, corner_dec = grid.pixel_to_world_values(np.array([-0.5, size - 0.5, size - 0.5, -0.5]),
                                                       np.array([-0.5, -0.5, size - 0.5, size - 0.5]))
    images, off_fraction = [], 0.0
    for band in COLOUR_BANDS:
        near = [f for f in frames_by_band[band] if f.holds(*f.pixels(grid_ra, grid_dec)).any()]
        image = resample_band(near, grid_ra, grid_dec, corner_ra, corner_dec).reshape(size, size)
        covered = np.isfinite(image)
        off_fraction = max(off_fraction, 1.0 - covered.mean())
        # Off-frame pixels get the sky level (0: the frames are sky-subtracted).
        image = np.where(covered, image, 0.0)
        if size != pixels:
            image = resize(image, (pixels, pixels), order=1, anti_aliasing=True, preserve_range=True)
        images.append(image[::-1])  # grid row 0 is the south edge; images are shown north up
    return np.stack(images).astype(np.float32), float(off_fraction)


def _names(table, name_column, ra, dec, source):
    """Distinct, file-safe output names: the name column, or J-names."""
    from deepscope.galaxy.catalog import find_column

    if name_column is not None:
        column = find_column(table, name_column, source, "--name-column")
        raw = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in table[column]]
    else:
        raw = [sdss_jname(r, d) if np.isfinite(r) and np.isfinite(d) else "" for r, d in zip(ra, dec, strict=True)]
    names, seen = [], {}
    for row, value in enumerate(raw):
        # Path separators and shell-hostile characters out, so a name is a plain file name.
        name = re.sub(r"[^A-Za-z0-9._+-]", "_", value.strip()).strip(".") or f"row{row}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def _fields(table, options, source):
    """Field side in arcsec per row (NaN where the radius is unusable, with the reason), and the radii."""
    from deepscope.galaxy.catalog import column_values

    if options.fixed_arcsec is not None:
        return np.full(len(table), float(options.fixed_arcsec)), [None] * len(table), None
    try:
        label, radius = column_values(table, options.radius_column, "r", source, "--radius-column")
    except InputError as exc:
        msg = f"{exc}; or give a fixed field with --fixed-arcsec"
        raise InputError(msg) from None
    reasons = [None if np.isfinite(r) and r > 0 else f"radius {r:g} arcsec in {label} is not positive"
               for r in radius]
    return np.where(np.isfinite(radius) & (radius > 0), radius * options.size_factor, np.nan), reasons, radius


def _candidates(frames, ra, dec, fields):
    """Per row, the frames of one band whose sky circle comes near its field."""
    from deepscope.galaxy.cutouts.frames import angular_distance

    reach = np.nan_to_num(fields, nan=0.0) * math.sqrt(0.5) / 3600.0
    per_row = [[] for _ in range(len(ra))]
    for frame in frames:
        centre_ra, centre_dec, radius = frame.sky_circle()
        with np.errstate(invalid="ignore"):
            near = angular_distance(centre_ra, centre_dec, ra, dec) <= radius + reach
        for row in np.flatnonzero(near):
            per_row[row].append(frame)
    return per_row


def _write_png(rgb, path, field):
    """The cutout as a PNG whose ``deepscope:field`` text chunk records its field (JSON)."""
    from PIL import Image, PngImagePlugin

    from deepscope.core.files import atomic_path
    from deepscope.galaxy.field import PNG_KEY

    text = PngImagePlugin.PngInfo()
    text.add_text(PNG_KEY, json.dumps(field))
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG", pnginfo=text)


def make_cutouts(catalog, frame_paths, out_dir, options=None):
    """Cut every catalogued galaxy out of survey frames as a colour PNG, ``out_dir/<name>.png``.

    Every input is checked before anything is written. Rows that cannot be
    cut (off every frame, a band missing, a bad radius or position, an
    unreadable frame) are listed in ``status`` and do not stop the others.
    ``out_dir/cutouts.csv`` holds the catalogue's columns plus ``file`` (the
    PNG, relative to the table), ``status`` and ``field_arcsec``.

    Parameters
    ----------
    catalog : str or Path
        CSV, Parquet or FITS table with ra, dec (degrees) and, for radius-scaled fields, the radius column.
    frame_paths : sequence of str or Path
        Frame files or directories (:func:`~deepscope.galaxy.cutouts.frames.index_frames`).
    out_dir : str or Path
    options : CutoutOptions, optional

    Returns
    -------
    pandas.DataFrame
        The table written to ``cutouts.csv``.

    Raises
    ------
    InputError, FormatError
        Before any output: missing columns (naming their option), no frames of a band, bad options, a
        frame without WCS or band.
    BatchError
        After writing the good cutouts and the table, if some rows got none.
    """
    from deepscope.core.files import check_writable, read_table, write_table
    from deepscope.core.progress import progress_bar
    from deepscope.galaxy.catalog import column_values, find_column
    from deepscope.galaxy.crossmatch import coordinate_columns
    from deepscope.galaxy.cutouts.frames import index_frames
    from deepscope.galaxy.cutouts.composite import lupton_composite

    options = options or CutoutOptions()
    options.check()
    source = str(catalog)
    table = read_table(catalog)
    taken = [c for c in ADDED_COLUMNS if c in table.columns]
    if taken:
        msg = f"{source}: already has column(s) {', '.join(taken)}, which cutouts.csv adds; rename them"
        raise InputError(msg)
    if options.ra_column or options.dec_column:
        ra_name = find_column(table, options.ra_column or "ra", source, "--ra-column")
        dec_name = find_column(table, options.dec_column or "dec", source, "--dec-column")
    else:
        try:
            ra_name, dec_name = coordinate_columns(table, source=source)
        except InputError as exc:
            msg = f"{exc} with --ra-column and --dec-column"
            raise InputError(msg) from None
    ra = column_values(table, ra_name, None, source, "--ra-column")[1]
    dec = column_values(table, dec_name, None, source, "--dec-column")[1]
    fields, reasons, radii = _fields(table, options, source)
    names = _names(table, options.name_column, ra, dec, source)
    frames = index_frames(frame_paths, COLOUR_BANDS, options.progress)
    out_dir = check_writable(out_dir, is_dir=True)

    bad_position = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    candidates = {band: _candidates(frames[band], ra, dec, fields) for band in COLOUR_BANDS}
    files, statuses = [""] * len(table), [""] * len(table)
    failures = []
    # Rows taken frame by frame, so the cached frames are reused.
    order = sorted(range(len(table)), key=lambda k: str(candidates["r"][k][0].path) if candidates["r"][k] else "")
    for row in progress_bar(order, enabled=options.progress, desc="galaxy cutout", unit="galaxy"):
        try:
            if bad_position[row]:
                msg = f"no valid position (ra {ra[row]:g}, dec {dec[row]:g})"
                raise CutoutSkipped(msg)
            if reasons[row]:
                raise CutoutSkipped(reasons[row])
            by_band = {band: candidates[band][row] for band in COLOUR_BANDS}
            bands, off = cutout_bands(by_band, ra[row], dec[row], fields[row], options.pixels)
            # The frames' sky is already off (whole-frame median): the cutout's own median would be galaxy light.
            field = {**options.field, "arcsec": round(float(fields[row]), 4)}
            if radii is not None:
                field["radius_arcsec"] = round(float(radii[row]), 4)
            _write_png(lupton_composite(*bands, subtract_sky=False), out_dir / f"{names[row]}.png", field)
        except (CutoutSkipped, FormatError) as exc:
            statuses[row] = first_line(exc)
            failures.append((names[row], statuses[row]))
            continue
        files[row] = f"{names[row]}.png"
        statuses[row] = "ok" if off == 0 else f"edge: {off:.0%} of the field is off the frames (filled with sky)"
        if off:
            logger.warning("%s: %s", names[row], statuses[row])
    result = table.copy()
    result["file"] = files
    result["status"] = statuses
    result["field_arcsec"] = fields
    write_table(result, out_dir / "cutouts.csv")
    logger.info("%d of %d galaxies cut out -> %s", len(table) - len(failures), len(table), out_dir)
    if failures:
        raise BatchError(failures)
    return result
