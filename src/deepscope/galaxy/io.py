"""Galaxy image files -> RGB arrays (no torch here).

Format dispatch is by magic bytes first, extension second, so a mislabelled
file is still read or rejected with a clear reason. Colour cutouts (JPEG,
PNG) are read here and returned as they are; FITS images in the SDSS g, r
and i bands (one 3-plane cube or three files) are read by
:mod:`deepscope.galaxy.fits_bands` and become an asinh colour composite
(:mod:`deepscope.galaxy.cutouts.composite`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from deepscope.core.files import opening, read_head
from deepscope.errors import FormatError, first_line
from deepscope.galaxy.cutouts.composite import lupton_composite

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fz")
GALAXY_SUFFIXES = IMAGE_SUFFIXES + FITS_SUFFIXES
BANDS = ("g", "r", "i")

# The largest JPEG/PNG cutout read: survey cutouts are tens to hundreds of pixels;
# a whole frame or mosaic given by mistake would take gigabytes before failing.
MAX_CUTOUT_PIXELS = 2048 * 2048

_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"SIMPLE  ": "fits"}
# Pillow tries only these decoders (a cutout is one of them, by its magic bytes).
_PILLOW_FORMATS = ("JPEG", "PNG")


def sniff_format(path: str | Path) -> str:
    """Name the format of a file from its first bytes.

    Parameters
    ----------
    path : str or Path
        Galaxy cutout or FITS image, whatever its extension says.

    Returns
    -------
    str
        ``"jpeg"``, ``"png"``, ``"fits"`` or ``"gzip"``.

    Raises
    ------
    FormatError
        If the file is empty, unreadable or of an unsupported format.
    """
    return _format_of(read_head(path, 8), path)


def _format_of(head: bytes, path: str | Path) -> str:
    """:func:`sniff_format` on a file's first bytes, already read."""
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


def read_rgb_image(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """Read a JPEG or PNG colour cutout as 8-bit RGB.

    Greyscale, palette, RGBA and CMYK images are converted to RGB. Deeper
    greyscale images (16-bit PNG, 32-bit integer or float) are scaled by
    the range their values really use - the smallest of 8, 10, 12, 14 or
    16 bits that holds the brightest pixel (1.0 for floats) - instead of
    being clipped at 255, which would saturate every pixel.

    Parameters
    ----------
    path : str or Path
        The file, read unless ``data`` is given, and named in errors.
    data : bytes, optional
        The file's bytes, already read.

    Returns
    -------
    numpy.ndarray
        The image converted to RGB (grey, palette and alpha images too):
        ``uint8``, shape ``(height, width, 3)``.

    Raises
    ------
    FormatError
        If the file is truncated, not a decodable image, or larger than
        :data:`MAX_CUTOUT_PIXELS` (checked from the header, before decoding).
    """
    from PIL import Image

    try:
        with Image.open(path if data is None else io.BytesIO(data), formats=_PILLOW_FORMATS) as image:
            if image.width * image.height > MAX_CUTOUT_PIXELS:
                msg = (f"{path}: {image.width} x {image.height} pixels is more than a cutout may have "
                       f"({MAX_CUTOUT_PIXELS:,} pixels, e.g. 2048 x 2048); cut the galaxy out first")
                raise FormatError(msg)
            # load() forces the full decode, so a truncated file fails here
            # rather than yielding a half-grey galaxy.
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return np.repeat(_deep_grey_to_uint8(np.asarray(image))[..., None], 3, axis=2)
            array = np.asarray(image.convert("RGB"))
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises TypeError, KeyError ... for corrupt files
        msg = f"{path}: cannot decode image ({first_line(exc)})"
        raise FormatError(msg) from None
    return array


def _deep_grey_to_uint8(values: np.ndarray) -> np.ndarray:
    """8-bit copy of a deeper greyscale image, scaled by the bit depth its values use.

    Examples
    --------
    >>> _deep_grey_to_uint8(np.array([[0, 257 * 200, 65535]], dtype=np.uint16)).tolist()
    [[0, 200, 255]]
    >>> _deep_grey_to_uint8(np.array([[0, 100, 255]], dtype=np.int32)).tolist()  # 8-bit values in a wide type
    [[0, 100, 255]]
    """
    is_float = np.issubdtype(values.dtype, np.floating)
    values = np.nan_to_num(values.astype(np.float64), nan=0.0)
    brightest = float(values.max(initial=0.0))
    if is_float and brightest <= 1.0:
        full_scale = 1.0
    else:
        bits = next((b for b in (8, 10, 12, 14, 16) if brightest < 2**b), 32)
        full_scale = 2.0**bits - 1
    return np.clip(np.rint(values / full_scale * 255.0), 0, 255).astype(np.uint8)


def read_galaxy_image(path: str | Path) -> np.ndarray:
    """Read any supported galaxy cutout as an RGB array.

    Parameters
    ----------
    path : str or Path
        JPEG or PNG colour cutout, or FITS cube with the g, r, i bands as
        its 3 planes (rendered by :func:`~deepscope.galaxy.cutouts.composite.lupton_composite`). For three
        single-band FITS files use :func:`~deepscope.galaxy.fits_bands.read_gri_composite`.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(height, width, 3)``, whatever the format.

    Raises
    ------
    FormatError
        If the file cannot be read as a galaxy image (truncated, not an
        image, single-band or wrongly shaped FITS, no finite pixel).
    """
    from deepscope.galaxy.fits_bands import read_fits_bands

    # One open for a colour cutout: its first bytes name the format, the rest is decoded from memory.
    with opening(path), open(path, "rb") as handle:
        head = handle.read(8)
        kind = _format_of(head, path)
        data = head + handle.read() if kind in ("jpeg", "png") else None
    if data is not None:
        return read_rgb_image(path, data)
    # "gzip": astropy reads gzipped FITS transparently and rejects anything else.
    bands, _ = read_fits_bands(path)
    return lupton_composite(*bands)

