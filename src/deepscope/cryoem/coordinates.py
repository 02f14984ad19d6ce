"""Particle coordinate files: RELION STAR, EMAN BOX, CryoPPP CSV, cryoSPARC ``.cs``.

Every reader returns a table of particle *centres* with columns ``x``
(column index), ``y`` (row index of the micrograph array as read) and
``score`` (NaN when the file has none). No format changes the frame
silently: flipping y between the MRC and the image frame is the explicit
:func:`flip_y`, and the BOX corner <-> centre shift uses the box size stored
in the file. No torch here.

What RELION 4 and cryoSPARC read: STAR files carry RELION's ``# version
30001`` line before each data block; a pick directory has an index,
``coordinate_files.star`` (``data_coordinate_files``: ``rlnMicrographName``,
``rlnMicrographCoordinates``), as RELION's picking jobs write; a ``.cs`` file
carries a ``uid`` derived from the micrograph and the pick's index (the same
on every write), the micrograph's uid, path, shape and pixel size, and the
pick score as ``pick_stats/ncc_score``, as cryoSPARC's pickers write it.
Every path written into these files is relative to the folder of the file
that names it (absolute when they share no folder but the root).
"""

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.files import atomic_output, read_head
from deepscope.errors import FormatError, OutputError, first_line

COORDINATE_SUFFIXES = (".star", ".box", ".csv", ".cs")
# The index of a pick directory (RELION 4's name): not the coordinates of a micrograph.
COORDINATE_INDEX = "coordinate_files.star"
# RELION 3.1+ reads a STAR file without this line as the older layout.
RELION_VERSION_LINE = "# version 30001"


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
        msg = f"{path}: not a readable STAR file ({first_line(exc)})"
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
        msg = f"{path}: not a readable EMAN BOX file ({first_line(exc)})"
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
        msg = f"{path}: not a readable CSV file ({first_line(exc)})"
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
        msg = f"{path}: not a readable cryoSPARC .cs file ({first_line(exc)})"
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
    score = None
    if "pick_stats/ncc_score" in names and np.issubdtype(data["pick_stats/ncc_score"].dtype, np.number):
        score = np.asarray(data["pick_stats/ncc_score"])
    return _coordinate_table(x, y, score)


_READERS = {".star": _read_star, ".box": _read_box, ".csv": _read_csv, ".cs": _read_cs}


def read_coordinates(path: str | Path, allow_empty: bool = False) -> pd.DataFrame:
    """Read particle centres from a STAR, BOX, CryoPPP CSV or cryoSPARC file.

    Parameters
    ----------
    path : str or Path
    allow_empty : bool
        Accept a file without coordinates (a picker may find nothing).

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


def relative_path(path: str | Path, folder: str | Path) -> str:
    """``path`` as written in a file that lies in ``folder``: relative to that folder (``..`` where needed).

    Absolute when the two share no folder but the file system's root (a
    relative name would climb all the way up). Neither is resolved through
    symbolic links, so the name keeps the folders the user gave.

    Examples
    --------
    >>> relative_path("data/mics/a.mrc", "out/picks")
    '../../data/mics/a.mrc'
    >>> relative_path("/data/a.mrc", "/home/me/picks")
    '/data/a.mrc'
    """
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    if os.path.commonpath([path, folder]) == os.path.abspath(os.sep):
        return Path(path).as_posix()
    return Path(os.path.relpath(path, folder)).as_posix()


def write_relion_star(blocks: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Write STAR data blocks (name -> table) as RELION 3.1+ does, each after a ``# version 30001`` line.

    Not atomic: write into a temporary path (:func:`deepscope.core.files.atomic_path`).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.star"
    >>> write_relion_star({"": pd.DataFrame({"rlnCoordinateX": [1.5]})}, path)
    >>> path.read_text().splitlines()[:3]
    ['# version 30001', '', 'data_']
    """
    import starfile

    path = Path(path)
    texts = []
    for name, frame in blocks.items():
        starfile.write({name: frame}, path, overwrite=True)
        text = path.read_text()
        # starfile opens with a comment naming itself; the block starts at its data_ line
        texts.append(f"{RELION_VERSION_LINE}\n\n{text[text.index(f'data_{name}'):]}")
    path.write_text("\n".join(texts))


def stable_uid(text: str) -> int:
    """A 64-bit unsigned id derived from ``text`` (BLAKE2b): the same in every process and on every machine.

    Examples
    --------
    >>> stable_uid("m1/0") == stable_uid("m1/0") != stable_uid("m1/1")
    True
    """
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _cs_records(x, y, score, shape, stem, stored, pixel_size):
    """cryoSPARC's particle location fields; uids from the micrograph's ``stem`` and the pick's index."""
    stored = stored.encode()
    fields = [("uid", "<u8"), ("location/micrograph_uid", "<u8"),
              ("location/micrograph_path", f"S{max(len(stored), 1)}"), ("location/micrograph_shape", "<u4", (2,))]
    if pixel_size is not None:
        fields.append(("location/micrograph_psize_A", "<f4"))
    fields += [("location/center_x_frac", "<f4"), ("location/center_y_frac", "<f4"), ("pick_stats/ncc_score", "<f4")]
    records = np.zeros(len(x), dtype=fields)
    records["uid"] = [stable_uid(f"{stem}/{index}") for index in range(len(x))]
    records["location/micrograph_uid"] = stable_uid(stem)
    records["location/micrograph_path"] = stored
    records["location/micrograph_shape"] = shape
    if pixel_size is not None:
        records["location/micrograph_psize_A"] = pixel_size
    records["location/center_x_frac"] = x / shape[1]
    records["location/center_y_frac"] = y / shape[0]
    records["pick_stats/ncc_score"] = score
    return records


def write_coordinates(table: pd.DataFrame, path: str | Path, box_size: float | None = None,
                      shape: tuple[int, int] | None = None, micrograph: str | Path | None = None,
                      pixel_size: float | None = None) -> None:
    """Write particle centres, atomically, in the format named by the suffix.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``x``, ``y`` and optionally ``score`` (and ``rot``,
        ``tilt``, ``psi`` Euler angles, kept in STAR files).
    path : str or Path
        ``.star`` (RELION, with its version line), ``.box`` (EMAN), ``.csv``
        (CryoPPP) or ``.cs`` (cryoSPARC).
    box_size : float, optional
        Box (or particle diameter) in pixels; required for ``.box`` (which
        stores corners) and ``.csv`` (CryoPPP's Diameter column).
    shape : tuple of int, optional
        Micrograph ``(rows, columns)``; required for ``.cs``.
    micrograph : str or Path, optional
        ``.cs`` only: the micrograph file, stored relative to ``path``'s
        folder as ``location/micrograph_path``; its stem gives
        ``location/micrograph_uid`` and, with each pick's row index, ``uid``
        (default: the stem of ``path``, stored as the path).
    pixel_size : float, optional
        ``.cs`` only: Angstrom per micrograph pixel,
        ``location/micrograph_psize_A`` (left out when not given).

    Raises
    ------
    OutputError
        If the format is unknown, a required size is missing, or the write
        fails.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "m1.cs"
    >>> write_coordinates(pd.DataFrame({"x": [10.0], "y": [30.0], "score": [0.9]}), path, shape=(100, 50))
    >>> records = np.load(path)
    >>> records["location/center_x_frac"].tolist(), int(records["uid"][0]) == stable_uid("m1/0")
    ([0.20000000298023224], True)
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
    with atomic_output(path) as tmp:
        if suffix == ".star":
            frame = pd.DataFrame({
                "rlnCoordinateX": x, "rlnCoordinateY": y,
                "rlnAutopickFigureOfMerit": np.where(np.isfinite(score), score, -999.0),
            })
            # simulated particles carry their true orientation
            for column, name in (("rot", "rlnAngleRot"), ("tilt", "rlnAngleTilt"), ("psi", "rlnAnglePsi")):
                if column in table:
                    frame[name] = table[column].to_numpy(dtype=np.float64)
            write_relion_star({"": frame}, tmp)
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
            stem, stored = (path.stem, path.stem) if micrograph is None else (
                Path(micrograph).stem, relative_path(micrograph, path.parent))
            records = _cs_records(x, y, score, shape, stem, stored, pixel_size)
            with open(tmp, "wb") as fh:
                np.save(fh, records)


def write_coordinate_index(pairs, path: str | Path) -> Path:
    """Write RELION 4's index of coordinate files (``data_coordinate_files``), atomically.

    Parameters
    ----------
    pairs : sequence of (str or Path, str or Path)
        Micrograph file and its coordinate file; both are written relative
        to ``path``'s folder (``rlnMicrographName``, ``rlnMicrographCoordinates``).
    path : str or Path
        Usually ``<pick directory>/coordinate_files.star``.

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        If the file cannot be written.
    """
    path = Path(path)
    folder = path.parent
    frame = pd.DataFrame({"rlnMicrographName": [relative_path(m, folder) for m, _ in pairs],
                          "rlnMicrographCoordinates": [relative_path(c, folder) for _, c in pairs]})
    with atomic_output(path) as tmp:
        write_relion_star({"coordinate_files": frame}, tmp)
    return path


def check_coordinate_directory(out_dir: str | Path) -> None:
    """Refuse an output directory named like a coordinate file (``--out picks.star``), unless it is one already.

    Raises
    ------
    OutputError

    Examples
    --------
    >>> check_coordinate_directory("picks")
    >>> check_coordinate_directory("e1.star")
    Traceback (most recent call last):
    ...
    deepscope.errors.OutputError: e1.star: --out is a directory (one coordinate file per micrograph and \
coordinate_files.star go in it), not a .star file; name a directory, e.g. --out e1
    """
    out_dir = Path(out_dir)
    if out_dir.suffix.lower() in COORDINATE_SUFFIXES and not out_dir.is_dir():
        msg = (f"{out_dir}: --out is a directory (one coordinate file per micrograph and {COORDINATE_INDEX} go in "
               f"it), not a {out_dir.suffix} file; name a directory, e.g. --out {out_dir.with_suffix('')}")
        raise OutputError(msg)


def flip_y(table: pd.DataFrame, height: int) -> pd.DataFrame:
    """A copy of ``table`` (``x``, ``y`` ...) flipped vertically: ``y -> height - 1 - y``.

    This maps between the MRC frame and an image frame in which the same
    micrograph is stored upside down, e.g. EMPIAR-10017's peer picks versus
    its JPEGs (height 4096).

    Examples
    --------
    >>> flip_y(pd.DataFrame({"x": [1.0], "y": [0.0]}), 4096)["y"].tolist()
    [4095.0]
    """
    flipped = table.copy()
    flipped["y"] = (height - 1) - flipped["y"]
    return flipped


def coordinate_files_by_stem(directory: str | Path, what: str = "coordinate") -> dict[str, Path]:
    """Map micrograph stems to the coordinate files of a directory (``what`` names them in errors).

    The directory's ``coordinate_files.star`` (:data:`COORDINATE_INDEX`) is
    an index, not a micrograph's coordinates, and is left out.

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
        if path.is_file() and path.suffix.lower() in COORDINATE_SUFFIXES and path.name != COORDINATE_INDEX:
            if path.stem in found:
                msg = f"{path}: two {what} files for micrograph {path.stem!r} ({found[path.stem].name})"
                raise FormatError(msg)
            found[path.stem] = path
    if not found:
        msg = f"{directory}: no {what} files ({', '.join(COORDINATE_SUFFIXES)})"
        raise FormatError(msg)
    return found
