"""Micrographs and particle coordinates: files -> arrays and tables (no torch here).

Micrographs are read from MRC/MRCS (mrcfile), TIFF, JPEG and PNG (Pillow) into
``float32`` arrays. Coordinates are read from and written to RELION STAR
(starfile), EMAN BOX, CryoPPP CSV and cryoSPARC ``.cs`` files, always as a
table of particle *centres* with columns ``x`` (column index), ``y`` (row
index of the array as read) and ``score``. No file format changes the frame
silently: flipping y between the MRC and the image frame is the explicit
:func:`flip_y`, and the BOX corner <-> centre shift uses the box size stored
in the file.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.files import atomic_path, read_head
from deepscope.errors import FormatError, OutputError

MICROGRAPH_SUFFIXES = (".mrc", ".mrcs", ".tif", ".tiff", ".jpg", ".jpeg", ".png")
COORDINATE_SUFFIXES = (".star", ".box", ".csv", ".cs")

# CASSPER's class_dict.csv; colours not listed (a few anti-aliased edge
# pixels) become IGNORE_LABEL and are left out of the loss.
REGION_CLASSES = ("protein", "ice", "background", "carbon")
REGION_COLOURS = ((255, 0, 0), (255, 255, 0), (0, 0, 255), (0, 255, 0))
IGNORE_LABEL = 255

_IMAGE_MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sniff_micrograph(path):
    """Name the format of a micrograph from its first bytes.

    MRC has no magic number at the start; it is recognised by the ``MAP``
    stamp at byte 208 (MRC2014) or, failing that, by its extension.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        ``"mrc"``, ``"tiff"``, ``"jpeg"`` or ``"png"``.

    Raises
    ------
    FormatError
        If the file is empty, unreadable or of an unsupported format.
    """
    path = Path(path)
    head = read_head(path, 1024)
    for magic, name in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return name
    if head[208:211] == b"MAP" or path.suffix.lower() in (".mrc", ".mrcs"):
        return "mrc"
    msg = f"{path}: not a supported micrograph (MRC, MRCS, TIFF, JPEG or PNG)"
    raise FormatError(msg)


def _read_mrc(path):
    import mrcfile

    try:
        # permissive=False so a truncated or header-only file fails here with
        # mrcfile's precise reason instead of yielding data=None.
        with mrcfile.open(path, permissive=False) as mrc:
            data = np.asarray(mrc.data, dtype=np.float32)
    except (ValueError, OSError, EOFError) as exc:
        msg = f"{path}: not a readable MRC file ({_first_line(exc)})"
        raise FormatError(msg) from None
    return data


def _read_pillow(path, kind, reduce):
    from PIL import Image, ImageSequence

    try:
        with warnings.catch_warnings():
            # Pillow warns about corrupt TIFF/EXIF tags and then either
            # decodes the pixels or fails; the failure is reported below
            warnings.simplefilter("ignore")
            image = Image.open(path)
        with image:
            width = image.width
            if kind == "jpeg" and reduce > 1:
                # JPEG can decode at 1/2, 1/4 or 1/8 scale straight from the
                # DCT coefficients: an 8x faster read of a 4096x4096 micrograph.
                image.draft("L", (image.width // reduce, image.height // reduce))
            frames = []
            for frame in ImageSequence.Iterator(image):
                frame.load()
                if frame.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                    frame = frame.convert("L")
                frames.append(np.asarray(frame, dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - Pillow raises TypeError, KeyError ... for corrupt tags
        msg = f"{path}: cannot decode {kind.upper()} micrograph ({_first_line(exc)})"
        raise FormatError(msg) from None
    if len({frame.shape for frame in frames}) > 1:
        msg = f"{path}: frames of the stack differ in shape ({', '.join(str(f.shape) for f in frames[:3])} ...)"
        raise FormatError(msg)
    data = frames[0] if len(frames) == 1 else np.stack(frames)
    return data, width


def read_micrograph(path, reduce=1):
    """Read a micrograph as a 2-D ``float32`` array.

    Stacks (movie frames in MRCS or multi-page TIFF) are summed into one
    image, which is what a motion-free movie integrates to.

    Parameters
    ----------
    path : str or Path
        MRC, MRCS, TIFF, JPEG or PNG file.
    reduce : int
        Allowed integer downsampling hint: a JPEG may be decoded directly at
        1/2, 1/4 or 1/8 scale (never more than ``reduce``); other formats
        ignore it. Use :func:`read_micrograph_reduced` to know the factor.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns)`` array; x = column, y = row.

    Raises
    ------
    FormatError
        If the file is empty, truncated, header-only or not a micrograph.

    Examples
    --------
    >>> import numpy as np, mrcfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.mrc")
    >>> with mrcfile.new(path) as mrc:
    ...     mrc.set_data(np.ones((16, 24), np.float32))
    >>> read_micrograph(path).shape
    (16, 24)
    """
    return read_micrograph_reduced(path, reduce)[0]


def read_micrograph_reduced(path, reduce=1):
    """Read a micrograph, letting JPEG decode at a reduced scale.

    Parameters
    ----------
    path : str or Path
    reduce : int
        Largest acceptable integer reduction (see :func:`read_micrograph`).

    Returns
    -------
    image : numpy.ndarray
        2-D ``float32`` array.
    factor : float
        Full-resolution width divided by the returned width (1 unless a
        JPEG was decoded at reduced scale).

    Raises
    ------
    FormatError
        If the file cannot be read as a micrograph.
    """
    path = Path(path)
    kind = sniff_micrograph(path)
    if kind == "mrc":
        data, width = _read_mrc(path), None
    else:
        data, width = _read_pillow(path, kind, int(reduce))
    if data.ndim == 3:
        data = data.sum(axis=0, dtype=np.float32)
    if data.ndim != 2 or min(data.shape) < 8:
        msg = f"{path}: expected a 2-D micrograph, got an array of shape {data.shape}"
        raise FormatError(msg)
    if not np.isfinite(data).all():
        msg = f"{path}: micrograph contains NaN or infinite values"
        raise FormatError(msg)
    factor = 1.0 if width is None else width / data.shape[1]
    return np.ascontiguousarray(data, dtype=np.float32), factor


def write_mrc(image, path, pixel_size=1.0):
    """Write a 2-D image as a float32 MRC file, atomically.

    Parameters
    ----------
    image : numpy.ndarray
        2-D array; row 0 is written first (MRC y = array row).
    path : str or Path
    pixel_size : float
        Angstrom per pixel, stored in the header.
    """
    import mrcfile

    path = Path(path)
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.asarray(image, dtype=np.float32))
            mrc.voxel_size = pixel_size


def read_region_labels(path):
    """Read a CASSPER-style colour label image as class indices.

    Parameters
    ----------
    path : str or Path
        PNG with protein red, ice yellow, background blue, carbon green.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of :data:`REGION_CLASSES` indices, unknown colours
        set to :data:`IGNORE_LABEL`. Frame as stored (CASSPER's labels are
        y-flipped relative to the EMPIAR-10017 JPEGs: use ``[::-1]``).

    Raises
    ------
    FormatError
        If the file is not a readable colour image.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - Pillow raises TypeError, KeyError ... for corrupt files
        msg = f"{path}: cannot decode label image ({_first_line(exc)})"
        raise FormatError(msg) from None
    labels = np.full(rgb.shape[:2], IGNORE_LABEL, dtype=np.uint8)
    for index, colour in enumerate(REGION_COLOURS):
        labels[(rgb == colour).all(axis=-1)] = index
    return labels


def _coordinate_table(x, y, score=None):
    x = np.asarray(x, dtype=np.float64)
    table = pd.DataFrame({"x": x, "y": np.asarray(y, dtype=np.float64)})
    table["score"] = np.nan if score is None else np.asarray(score, dtype=np.float64)
    return table


def _read_star(path):
    import starfile

    try:
        data = starfile.read(path, always_dict=True)
    except Exception as exc:  # noqa: BLE001 - starfile raises many types for bad text
        msg = f"{path}: not a readable STAR file ({_first_line(exc)})"
        raise FormatError(msg) from None
    for block in data.values():
        if isinstance(block, pd.DataFrame) and {"rlnCoordinateX", "rlnCoordinateY"} <= set(block.columns):
            score = block.get("rlnAutopickFigureOfMerit")
            if score is not None:
                # RELION writes -999 for "no score"
                score = score.where(score != -999)
            try:
                return _coordinate_table(block["rlnCoordinateX"], block["rlnCoordinateY"], score)
            except (ValueError, TypeError):
                msg = f"{path}: non-numeric values in rlnCoordinateX, rlnCoordinateY or rlnAutopickFigureOfMerit"
                raise FormatError(msg) from None
    msg = f"{path}: STAR file has no loop with rlnCoordinateX and rlnCoordinateY"
    raise FormatError(msg)


def _read_box(path):
    try:
        values = np.loadtxt(path, ndmin=2, dtype=np.float64)
    except (ValueError, OSError) as exc:
        msg = f"{path}: not a readable EMAN BOX file ({_first_line(exc)})"
        raise FormatError(msg) from None
    if values.size == 0:
        return _coordinate_table([], [])
    if values.shape[1] < 4:
        msg = f"{path}: EMAN BOX rows need x, y, width, height; found {values.shape[1]} column(s)"
        raise FormatError(msg)
    # BOX stores the lower-left corner; the centre is half a box further.
    score = values[:, 4] if values.shape[1] > 4 else None
    return _coordinate_table(values[:, 0] + values[:, 2] / 2, values[:, 1] + values[:, 3] / 2, score)


def _read_csv(path):
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        msg = f"{path}: empty coordinate file"
        raise FormatError(msg) from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: not a readable CSV file ({_first_line(exc)})"
        raise FormatError(msg) from None
    for xname, yname in (("X-Coordinate", "Y-Coordinate"), ("x", "y")):
        if {xname, yname} <= set(table.columns):
            score = table["score"] if "score" in table.columns else None
            try:
                return _coordinate_table(table[xname], table[yname], score)
            except ValueError:
                msg = f"{path}: non-numeric coordinates in columns {xname}, {yname}"
                raise FormatError(msg) from None
    msg = f"{path}: CSV needs columns X-Coordinate, Y-Coordinate (CryoPPP) or x, y; found {list(table.columns)}"
    raise FormatError(msg)


def _read_cs(path):
    if read_head(path, 6) != b"\x93NUMPY":
        # np.load would also try zip (.npz) archives, and leaves the file
        # open when a fake one fails; cryoSPARC writes plain .npy arrays.
        msg = f"{path}: not a readable cryoSPARC .cs file (no numpy array header)"
        raise FormatError(msg)
    try:
        # Memory-mapped, so a header declaring a gigantic shape fails on the
        # file size instead of allocating it.
        data = np.load(path, mmap_mode="r", allow_pickle=False)
        names = data.dtype.names or ()
    except Exception as exc:  # noqa: BLE001 - numpy raises SyntaxError, TokenError ... for a corrupt header
        msg = f"{path}: not a readable cryoSPARC .cs file ({_first_line(exc)})"
        raise FormatError(msg) from None
    needed = ("location/center_x_frac", "location/center_y_frac", "location/micrograph_shape")
    if not set(needed) <= set(names):
        msg = f"{path}: cryoSPARC file lacks {', '.join(n for n in needed if n not in names)}"
        raise FormatError(msg)
    shape = np.asarray(data["location/micrograph_shape"])
    fractions = [np.asarray(data[name]) for name in needed[:2]]
    if data.ndim != 1 or shape.shape != (len(data), 2) or not all(
            np.issubdtype(a.dtype, np.number) for a in (shape, *fractions)):
        msg = f"{path}: cryoSPARC location fields are not numeric per-particle columns (shape {shape.shape})"
        raise FormatError(msg)
    # cryoSPARC stores fractions of the micrograph (rows, columns) shape.
    x = fractions[0] * shape[:, 1]
    y = fractions[1] * shape[:, 0]
    return _coordinate_table(x, y)


_READERS = {".star": _read_star, ".box": _read_box, ".csv": _read_csv, ".cs": _read_cs}


def read_coordinates(path, allow_empty=False):
    """Read particle centres from a STAR, BOX, CryoPPP CSV or cryoSPARC file.

    Parameters
    ----------
    path : str or Path
    allow_empty : bool
        Accept a file without coordinates (a picker may find nothing);
        otherwise that is an error.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y`` (particle centres in the file's own frame) and
        ``score`` (NaN when the file has none).

    Raises
    ------
    FormatError
        If the file is unreadable, of an unknown kind or has no coordinates.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.box"
    >>> _ = path.write_text("10 20 100 100\\n")
    >>> read_coordinates(path)[["x", "y"]].values.tolist()
    [[60.0, 70.0]]
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        msg = f"{path}: unknown coordinate format; use one of {', '.join(COORDINATE_SUFFIXES)}"
        raise FormatError(msg)
    if not path.is_file():
        msg = f"{path}: no such coordinate file"
        raise FormatError(msg)
    if path.stat().st_size == 0:
        msg = f"{path}: empty coordinate file"
        raise FormatError(msg)
    table = reader(path)
    if not np.isfinite(table[["x", "y"]].to_numpy()).all():
        msg = f"{path}: coordinates contain NaN or non-numeric values"
        raise FormatError(msg)
    if len(table) == 0 and not allow_empty:
        msg = f"{path}: no coordinates in file"
        raise FormatError(msg)
    return table


def write_coordinates(table, path, box_size=None, shape=None):
    """Write particle centres, atomically, in the format named by the suffix.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``x``, ``y`` and optionally ``score`` (and ``rot``,
        ``tilt``, ``psi`` Euler angles, kept in STAR files).
    path : str or Path
        ``.star`` (RELION), ``.box`` (EMAN), ``.csv`` (CryoPPP) or ``.cs``
        (cryoSPARC).
    box_size : float, optional
        Box (or particle diameter) in pixels; required for ``.box`` (which
        stores corners) and ``.csv`` (CryoPPP's Diameter column).
    shape : tuple of int, optional
        Micrograph ``(rows, columns)``; required for ``.cs``.

    Raises
    ------
    OutputError
        If the format is unknown, a required size is missing, or the write
        fails.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    x = table["x"].to_numpy(dtype=np.float64)
    y = table["y"].to_numpy(dtype=np.float64)
    score = table["score"].to_numpy(dtype=np.float64) if "score" in table else np.full(len(x), np.nan)
    if suffix in (".box", ".csv") and box_size is None:
        msg = f"{path}: writing {suffix} needs the box size / particle diameter"
        raise OutputError(msg)
    if suffix == ".cs" and shape is None:
        msg = f"{path}: writing cryoSPARC .cs needs the micrograph shape"
        raise OutputError(msg)
    if suffix not in _READERS:
        msg = f"{path}: unknown coordinate format; use one of {', '.join(COORDINATE_SUFFIXES)}"
        raise OutputError(msg)
    try:
        with atomic_path(path) as tmp:
            if suffix == ".star":
                import starfile

                frame = pd.DataFrame({
                    "rlnCoordinateX": x, "rlnCoordinateY": y,
                    "rlnAutopickFigureOfMerit": np.where(np.isfinite(score), score, -999.0),
                })
                # simulated particles carry their true orientation
                for column, name in (("rot", "rlnAngleRot"), ("tilt", "rlnAngleTilt"), ("psi", "rlnAnglePsi")):
                    if column in table:
                        frame[name] = table[column].to_numpy(dtype=np.float64)
                starfile.write(frame, tmp, overwrite=True)
            elif suffix == ".box":
                half = box_size / 2
                rows = np.column_stack([np.round(x - half), np.round(y - half),
                                        np.full(len(x), box_size), np.full(len(x), box_size)])
                if np.isfinite(score).all() and len(x):
                    rows = np.column_stack([rows, score])
                np.savetxt(tmp, rows, fmt="%.6g", delimiter="\t")
            elif suffix == ".csv":
                pd.DataFrame({"X-Coordinate": x, "Y-Coordinate": y, "Diameter": box_size,
                              "score": score}).to_csv(tmp, index=False)
            else:
                records = np.zeros(len(x), dtype=[
                    ("location/center_x_frac", "<f4"), ("location/center_y_frac", "<f4"),
                    ("location/micrograph_shape", "<u4", (2,)),
                ])
                records["location/center_x_frac"] = x / shape[1]
                records["location/center_y_frac"] = y / shape[0]
                records["location/micrograph_shape"] = shape
                with open(tmp, "wb") as fh:
                    np.save(fh, records)
    except OSError as exc:
        msg = f"{path}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None


def flip_y(table, height):
    """Flip coordinates vertically: ``y -> height - 1 - y``.

    This maps between the MRC frame (row 0 at the bottom in most viewers)
    and an image frame in which the same micrograph was stored upside
    down, e.g. EMPIAR-10017's peer picks versus its JPEGs (height 4096).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``x``, ``y`` ...
    height : int
        Micrograph height in pixels.

    Returns
    -------
    pandas.DataFrame
        A copy with ``y`` flipped.

    Examples
    --------
    >>> flip_y(pd.DataFrame({"x": [1.0], "y": [0.0]}), 4096)["y"].tolist()
    [4095.0]
    """
    flipped = table.copy()
    flipped["y"] = (height - 1) - flipped["y"]
    return flipped


def coordinate_files_by_stem(directory, what="coordinate"):
    """Map micrograph stems to the coordinate files of a directory.

    Parameters
    ----------
    directory : str or Path
    what : str
        Word used in error messages ("truth", "picks" ...).

    Returns
    -------
    dict of str -> Path

    Raises
    ------
    FormatError
        If the directory is missing or holds no coordinate files, or two
        files share a stem.
    """
    directory = Path(directory)
    if not directory.is_dir():
        msg = f"{directory}: {what} directory not found"
        raise FormatError(msg)
    found = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix.lower() in COORDINATE_SUFFIXES:
            if path.stem in found:
                msg = f"{path}: two {what} files for micrograph {path.stem!r} ({found[path.stem].name})"
                raise FormatError(msg)
            found[path.stem] = path
    if not found:
        msg = f"{directory}: no {what} files ({', '.join(COORDINATE_SUFFIXES)})"
        raise FormatError(msg)
    return found
