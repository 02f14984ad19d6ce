"""Micrograph and label-image files -> arrays, and micrographs paired with their coordinate files.

Micrographs are read from MRC/MRCS (mrcfile), TIFF, JPEG and PNG (Pillow) into
``float32`` arrays; CASSPER colour label images into class indices. The
coordinate formats of :mod:`deepscope.cryoem.coordinates` are re-exported, so
all cryo-EM file reading and writing imports from here. No torch here.
"""

import warnings
from pathlib import Path

import numpy as np

from deepscope.core.files import atomic_path, read_head
from deepscope.cryoem.coordinates import (  # noqa: F401 - re-exported: io is the domain's file API
    COORDINATE_SUFFIXES, coordinate_files_by_stem, flip_y, read_coordinates, write_coordinates,
)
from deepscope.errors import FormatError, InputError, first_line

__all__ = [
    "COORDINATE_SUFFIXES", "IGNORE_LABEL", "MICROGRAPH_SUFFIXES", "REGION_CLASSES", "REGION_COLOURS",
    "coordinate_files_by_stem", "flip_y", "pair_micrographs", "read_coordinates", "read_micrograph",
    "read_micrograph_reduced", "read_region_labels", "sniff_micrograph", "write_coordinates", "write_mrc",
]

MICROGRAPH_SUFFIXES = (".mrc", ".mrcs", ".tif", ".tiff", ".jpg", ".jpeg", ".png")
# The largest micrograph read (1 GiB as float32): above a K3 super-resolution frame
# (11520 x 8184); a larger one would exhaust memory before a single pick.
MAX_MICROGRAPH_PIXELS = 16384 * 16384

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


def sniff_micrograph(path: str | Path) -> str:
    """Name the format of a micrograph from its first bytes: ``"mrc"``, ``"tiff"``, ``"jpeg"`` or ``"png"``.

    MRC has no magic number at the start; it is recognised by the ``MAP``
    stamp at byte 208 (MRC2014) or, failing that, by its extension.

    Raises
    ------
    FormatError
        If the file is empty or unreadable, or neither its bytes nor its
        extension name a supported format.
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


def read_micrograph_header(path: str | Path) -> tuple[tuple[int, int], float | None]:
    """A micrograph's ``(rows, columns)`` and, for MRC, its pixel size in Angstrom, from the header alone.

    Returns
    -------
    shape : tuple of int
    pixel_size : float or None
        None where the file has none (TIFF, JPEG, PNG; an MRC header with 0).

    Raises
    ------
    FormatError
        If the file is not a readable micrograph.
    """

    kind = sniff_micrograph(path)
    if kind == "mrc":
        import mrcfile

        try:
            with mrcfile.open(path, header_only=True) as mrc:
                shape, pixel_size = (int(mrc.header.ny), int(mrc.header.nx)), float(mrc.voxel_size.x)
        except (ValueError, OSError, EOFError) as exc:
            msg = f"{path}: not a readable MRC file ({first_line(exc)})"
            raise FormatError(msg) from None
        return shape, pixel_size if np.isfinite(pixel_size) and pixel_size > 0 else None
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd tags; a bad file fails below
            with Image.open(path) as image:
                return (image.height, image.width), None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for corrupt files
        msg = f"{path}: cannot decode {kind.upper()} micrograph ({first_line(exc)})"
        raise FormatError(msg) from None


def check_micrograph_size(path: str | Path, width: int, height: int) -> None:
    """Refuse a micrograph larger than :data:`MAX_MICROGRAPH_PIXELS`, from its header, before decoding.

    Raises
    ------
    FormatError

    Examples
    --------
    >>> check_micrograph_size("big.mrc", 28000, 28000)
    Traceback (most recent call last):
    ...
    deepscope.errors.FormatError: big.mrc: 28000 x 28000 pixels is more than a micrograph may have (268,435,456 pixels, e.g. 16384 x 16384); bin it first
    """
    if width * height > MAX_MICROGRAPH_PIXELS:
        msg = (f"{path}: {width} x {height} pixels is more than a micrograph may have "
               f"({MAX_MICROGRAPH_PIXELS:,} pixels, e.g. 16384 x 16384); bin it first")
        raise FormatError(msg)


def _read_mrc(path):
    import mrcfile

    try:
        # permissive=False so a truncated or header-only file fails here with
        # mrcfile's precise reason instead of yielding data=None; mmap so the
        # size is known before any pixel is read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on absurd declared sizes, then fails
            with mrcfile.mmap(path, mode="r", permissive=False) as mrc:
                check_micrograph_size(path, int(mrc.header.nx), int(mrc.header.ny))
                data = np.array(mrc.data, dtype=np.float32)
    except (ValueError, OverflowError, OSError, EOFError) as exc:  # mmap overflows on negative sizes
        msg = f"{path}: not a readable MRC file ({first_line(exc)})"
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
            check_micrograph_size(path, image.width, image.height)
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
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises TypeError, KeyError ... for corrupt tags
        msg = f"{path}: cannot decode {kind.upper()} micrograph ({first_line(exc)})"
        raise FormatError(msg) from None
    if len({frame.shape for frame in frames}) > 1:
        msg = f"{path}: frames of the stack differ in shape ({', '.join(str(f.shape) for f in frames[:3])} ...)"
        raise FormatError(msg)
    data = frames[0] if len(frames) == 1 else np.stack(frames)
    return data, width


def read_micrograph(path: str | Path, reduce: int = 1) -> np.ndarray:
    """Read a micrograph as a 2-D ``float32`` array.

    Stacks (movie frames in MRCS or multi-page TIFF) are summed into one
    image, which is what a motion-free movie integrates to.

    Parameters
    ----------
    path : str or Path
        MRC, MRCS, TIFF, JPEG or PNG file.
    reduce : int
        Allowed downsampling: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale
        (never more than ``reduce``); :func:`read_micrograph_reduced` says by how much.

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


def read_micrograph_reduced(path: str | Path, reduce: int = 1) -> tuple[np.ndarray, float]:
    """Read a micrograph, letting a JPEG decode at up to ``reduce`` times smaller (see :func:`read_micrograph`).

    Returns
    -------
    image : numpy.ndarray
        2-D ``float32`` array.
    factor : float
        Full-resolution width over the returned width (1 unless a JPEG was decoded smaller).

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


def write_mrc(image: np.ndarray, path: str | Path, pixel_size: float = 1.0) -> None:
    """Write a 2-D image as a float32 MRC file (row 0 first), atomically, with ``pixel_size`` Angstrom per pixel."""
    import mrcfile

    path = Path(path)
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.asarray(image, dtype=np.float32))
            mrc.voxel_size = pixel_size


def read_region_labels(path: str | Path) -> np.ndarray:
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
        msg = f"{path}: cannot decode label image ({first_line(exc)})"
        raise FormatError(msg) from None
    labels = np.full(rgb.shape[:2], IGNORE_LABEL, dtype=np.uint8)
    for index, colour in enumerate(REGION_COLOURS):
        labels[(rgb == colour).all(axis=-1)] = index
    return labels


def pair_micrographs(micrographs: list[Path], coordinate_files: dict[str, Path],
                     what: str = "coordinate") -> list[tuple[Path, Path]]:
    """Pair micrograph files with coordinate files (by stem, :func:`coordinate_files_by_stem`).

    Returns
    -------
    list of (Path, Path)
        ``(micrograph, coordinates)``, sorted by stem; ``what`` names the files in errors.

    Raises
    ------
    InputError
        If a coordinate file names no micrograph, or no pair is found.

    Examples
    --------
    >>> pair_micrographs([Path("b.mrc"), Path("a.mrc")], {"a": Path("a.star")})
    [(PosixPath('a.mrc'), PosixPath('a.star'))]
    """
    stems = {p.stem: p for p in micrographs}
    orphans = sorted(set(coordinate_files) - set(stems))
    if orphans:
        msg = (f"{coordinate_files[orphans[0]]}: {what} file matches no micrograph "
               f"({len(orphans)} such file(s); names must equal the micrograph stems)")
        raise InputError(msg)
    pairs = [(stems[s], coordinate_files[s]) for s in sorted(stems) if s in coordinate_files]
    if not pairs:
        msg = f"no micrograph has a {what} file with the same stem"
        raise InputError(msg)
    return pairs
