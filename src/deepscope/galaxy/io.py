"""Galaxy image files -> arrays (no torch here): JPEG/PNG colour cutouts, FITS bands, their WCS.

Format dispatch is by magic bytes first, extension second, so a mislabelled
file is still read or rejected with a clear reason. Colour cutouts (JPEG,
PNG) are returned as they are; a FITS cube of the SDSS g, r and i bands
becomes an asinh colour composite (:mod:`deepscope.galaxy.cutouts.composite`).
FITS files are checked before their data are read: a corrupt size,
truncation or an all-NaN band is a one-line
:class:`~deepscope.errors.FormatError`, never a numpy or astropy trace.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.core.files import DEFLATE_MAX_RATIO, check_fits_sizes, opening, read_head
from deepscope.errors import FormatError, first_line
from deepscope.galaxy.cutouts.composite import lupton_composite

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.wcs import WCS

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
    """The format of a file from its first bytes, whatever its extension says: ``jpeg``, ``png``, ``fits`` or ``gzip``.

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
        The file, read unless ``data`` (its bytes) is given, and named in errors.
    data : bytes, optional

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(height, width, 3)``.

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
    """Any supported galaxy cutout as ``uint8`` RGB ``(height, width, 3)``.

    JPEG and PNG colour cutouts are read as they are; a FITS cube with the g,
    r, i bands as its 3 planes is rendered by
    :func:`~deepscope.galaxy.cutouts.composite.lupton_composite`.

    Raises
    ------
    FormatError
        If the file cannot be read as a galaxy image (truncated, not an image,
        single-band or wrongly shaped FITS, no finite pixel).
    """
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


# --- FITS --------------------------------------------------------------------

def _first_image_hdu(hdul, path):
    """The first HDU holding an image array (tile-compressed ones included)."""
    from astropy.io import fits

    for hdu in hdul:
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and hdu.data is not None:
            return hdu
    msg = f"{path}: FITS file has no image data (only tables or empty HDUs)"
    raise FormatError(msg)


def _read_fits_array(path):
    """Read the first image array of a FITS file as float32, with its header."""
    from astropy.io import fits

    path = Path(path)
    kind = sniff_format(path)
    available = os.path.getsize(path) * (DEFLATE_MAX_RATIO if kind == "gzip" else 1)
    # A plain file is read from memory: astropy seeks past each HDU's
    # declared data, and a corrupt NAXIS (10**12) makes that seek fail with
    # a bare "Invalid argument" on a real file, before any size check.
    source = io.BytesIO(path.read_bytes()) if kind == "fits" else path
    truncated = f"{path}: FITS file is truncated"
    with warnings.catch_warnings(record=True) as caught:
        # astropy reports truncation as a warning and then fails (or not) in
        # various ways; record it so the user hears "truncated", not a
        # numpy buffer error. Its other warnings (non-standard cards fixed
        # on the fly) are dropped: the data are checked below.
        warnings.simplefilter("always")
        try:
            with fits.open(source, memmap=False) as hdul:
                check_fits_sizes(hdul, path, available)
                hdu = _first_image_hdu(hdul, path)
                data = np.asarray(hdu.data, dtype=np.float32)
                header = hdu.header.copy()
        except FormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - any astropy failure means a bad file
            if any("truncated" in str(w.message) for w in caught):
                msg = truncated
            else:
                msg = f"{path}: cannot read FITS image ({first_line(exc)})"
            raise FormatError(msg) from None
    if any("truncated" in str(w.message) for w in caught):
        raise FormatError(truncated)
    # Degenerate leading axes (NAXIS3 = 1 ...) carry no information.
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    return data, header


def _finite_band(band, path, label):
    """Replace non-finite pixels by the band's median; refuse all-NaN bands."""
    finite = np.isfinite(band)
    if not finite.any():
        msg = f"{path}: {label} has no finite pixels (all NaN or infinite)"
        raise FormatError(msg)
    if not finite.all():
        # Masked pixels (bad columns, off-chip) are mostly sky; the median
        # is the least conspicuous value to put there.
        band = np.where(finite, band, np.median(band[finite])).astype(np.float32)
    return band


def read_fits_band(path: str | Path) -> tuple[np.ndarray, fits.Header]:
    """A single-band FITS image (optionally gzipped or tile-compressed) and its header.

    Returns
    -------
    image : numpy.ndarray
        ``float32`` ``(height, width)``; non-finite pixels replaced by the median of the finite ones.
    header : astropy.io.fits.Header

    Raises
    ------
    FormatError
        If the file is not a readable FITS image, is not 2-D or has no finite pixel.
    """
    data, header = _read_fits_array(path)
    if data.ndim != 2:
        msg = f"{path}: expected a 2-D single-band FITS image, got shape {data.shape}"
        raise FormatError(msg)
    return _finite_band(data, path, "image"), header


def read_fits_bands(path: str | Path) -> tuple[np.ndarray, fits.Header]:
    """A FITS cube whose first image HDU holds the g, r and i bands as its 3 planes, and its header.

    Returns
    -------
    bands : numpy.ndarray
        ``float32`` ``(3, height, width)`` in the order g, r, i.
    header : astropy.io.fits.Header

    Raises
    ------
    FormatError
        If the image is single-band, has another shape, or a plane has no finite pixel.
    """
    data, header = _read_fits_array(path)
    if data.ndim == 2:
        msg = (
            f"{path}: single-band FITS image; a colour composite needs three bands (g, r, i): "
            "give a cube with 3 planes"
        )
        raise FormatError(msg)
    if data.ndim != 3 or data.shape[0] != 3:
        msg = f"{path}: expected a FITS cube of shape (3, height, width) with planes g, r, i; got shape {data.shape}"
        raise FormatError(msg)
    bands = np.stack([_finite_band(data[k], path, f"{name} plane") for k, name in enumerate(BANDS)])
    return bands, header


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The 2-D celestial WCS of a FITS header (survey headers' non-standard cards tolerated); None without one."""
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        # Survey headers often carry non-standard cards that astropy fixes
        # and reports; the user cannot act on that here.
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(header).celestial
        except Exception:  # noqa: BLE001 - an unparsable WCS is the same as none
            return None
    return wcs if wcs.has_celestial and wcs.naxis == 2 else None


def fits_pixel_scale(header: fits.Header) -> float | None:
    """Arcseconds per pixel (mean of the two axes) of a FITS header's celestial WCS; None without one.

    Examples
    --------
    >>> from astropy.io import fits
    >>> header = fits.Header({"NAXIS": 2, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
    ...                       "CDELT1": -0.396 / 3600, "CDELT2": 0.396 / 3600})
    >>> round(fits_pixel_scale(header), 3)
    0.396
    """
    from astropy.wcs.utils import proj_plane_pixel_scales

    wcs = celestial_wcs(header)
    if wcs is None:
        return None
    scales = proj_plane_pixel_scales(wcs) * 3600.0
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        return None
    return float(np.mean(scales))
