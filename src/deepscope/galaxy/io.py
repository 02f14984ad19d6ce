"""Galaxy image files -> RGB arrays (no torch here).

Format dispatch is by magic bytes first, extension second, so a mislabelled
file is still read or rejected with a clear reason.
"""

from pathlib import Path

import numpy as np

from deepscope.errors import FormatError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
GALAXY_SUFFIXES = IMAGE_SUFFIXES + (".fits", ".fit", ".fits.gz", ".fz")

_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"SIMPLE  ": "fits"}


def sniff_format(path):
    """Name the format of a file from its first bytes.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        ``"jpeg"``, ``"png"``, ``"fits"`` or ``"gzip"``.

    Raises
    ------
    FormatError
        If the file is empty, unreadable or of an unsupported format.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        msg = f"{path}: cannot open ({exc.strerror or exc})"
        raise FormatError(msg) from None
    if not head:
        msg = f"{path}: empty file"
        raise FormatError(msg)
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    msg = f"{path}: not a supported galaxy image (JPEG, PNG or FITS)"
    raise FormatError(msg)


def read_rgb_image(path):
    """Read a JPEG or PNG colour cutout.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(height, width, 3)``.

    Raises
    ------
    FormatError
        If the file is truncated or not a decodable image.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            # load() forces the full decode, so a truncated file fails here
            # rather than yielding a half-grey galaxy.
            image.load()
            array = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        msg = f"{path}: cannot decode image ({exc})"
        raise FormatError(msg) from None
    return array


def read_galaxy_image(path):
    """Read any supported galaxy cutout as an RGB array.

    Parameters
    ----------
    path : str or Path
        JPEG or PNG cutout (FITS support: see :func:`read_fits_composite`).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(height, width, 3)``.

    Raises
    ------
    FormatError
        If the file cannot be read as a galaxy image.
    """
    kind = sniff_format(path)
    if kind in ("jpeg", "png"):
        return read_rgb_image(path)
    msg = f"{path}: FITS galaxy images are not supported yet"
    raise FormatError(msg)
