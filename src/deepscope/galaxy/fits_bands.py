"""FITS images of galaxies: single bands, g/r/i cubes and band triplets, their WCS and pixel scale.

The FITS half of :mod:`deepscope.galaxy.io` (which dispatches by format and
reads JPEG/PNG cutouts). Files are checked before their data are read: a
corrupt size, truncation or an all-NaN band is a one-line
:class:`~deepscope.errors.FormatError`, never a numpy or astropy trace.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.core.files import DEFLATE_MAX_RATIO, check_fits_sizes
from deepscope.errors import FormatError, first_line
from deepscope.galaxy.cutouts.composite import DEFAULT_Q, lupton_composite
from deepscope.galaxy.io import BANDS, sniff_format

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.wcs import WCS

# Largest misregistration (pixels) tolerated between three band files.
MAX_BAND_OFFSET_PX = 0.5


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
    """Read a single-band FITS image.

    Parameters
    ----------
    path : str or Path
        FITS file (optionally gzipped or tile-compressed) whose first image
        HDU is 2-D.

    Returns
    -------
    image : numpy.ndarray
        ``float32`` array of shape ``(height, width)``; non-finite pixels are
        replaced by the median of the finite ones.
    header : astropy.io.fits.Header

    Raises
    ------
    FormatError
        If the file is not a readable FITS image, is not 2-D or has no
        finite pixel.
    """
    data, header = _read_fits_array(path)
    if data.ndim != 2:
        msg = f"{path}: expected a 2-D single-band FITS image, got shape {data.shape}"
        raise FormatError(msg)
    return _finite_band(data, path, "image"), header


def read_fits_bands(path: str | Path) -> tuple[np.ndarray, fits.Header]:
    """Read a FITS cube holding the g, r and i bands as its three planes.

    Parameters
    ----------
    path : str or Path
        FITS file whose first image HDU has shape ``(3, height, width)``
        (``NAXIS3 = 3``), planes in the order g, r, i.

    Returns
    -------
    bands : numpy.ndarray
        ``float32`` array of shape ``(3, height, width)`` in the order g, r, i.
    header : astropy.io.fits.Header

    Raises
    ------
    FormatError
        If the image is single-band (three bands are needed), has another
        shape, or a plane has no finite pixel.
    """
    data, header = _read_fits_array(path)
    if data.ndim == 2:
        msg = (
            f"{path}: single-band FITS image; a colour composite needs three bands (g, r, i): "
            "give the three band files or a cube with 3 planes"
        )
        raise FormatError(msg)
    if data.ndim != 3 or data.shape[0] != 3:
        msg = f"{path}: expected a FITS cube of shape (3, height, width) with planes g, r, i; got shape {data.shape}"
        raise FormatError(msg)
    bands = np.stack([_finite_band(data[k], path, f"{name} plane") for k, name in enumerate(BANDS)])
    return bands, header


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The 2-D celestial WCS of a FITS header.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Image header; the non-standard cards of survey headers are tolerated.

    Returns
    -------
    astropy.wcs.WCS or None
        ``None`` when the header has no (parsable) celestial WCS.
    """
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
    """Pixel scale of a FITS image from its celestial WCS.

    Parameters
    ----------
    header : astropy.io.fits.Header

    Returns
    -------
    float or None
        Arcseconds per pixel (mean of the two axes), or ``None`` when the
        header has no celestial WCS.

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


def read_gri_bands(g_path: str | Path, r_path: str | Path,
                   i_path: str | Path) -> tuple[np.ndarray, fits.Header]:
    """Read three single-band FITS files (g, r, i) onto one pixel grid.

    Parameters
    ----------
    g_path, r_path, i_path : str or Path
        Single-band FITS images of the same field and shape.

    Returns
    -------
    bands : numpy.ndarray
        ``float32`` array of shape ``(3, height, width)`` in the order g, r, i.
    header : astropy.io.fits.Header
        Header of the r-band file (the reference grid).

    Raises
    ------
    FormatError
        If a file is unreadable or not 2-D, the shapes differ, or the WCS
        of the files show they are not registered pixel to pixel.
    """
    paths = {"g": Path(g_path), "r": Path(r_path), "i": Path(i_path)}
    images, headers = {}, {}
    for band, path in paths.items():
        images[band], headers[band] = read_fits_band(path)
    shape = images["r"].shape
    for band in ("g", "i"):
        if images[band].shape != shape:
            msg = (
                f"{paths[band]}: {band}-band shape {images[band].shape} differs from the r band's {shape} "
                f"({paths['r']})"
            )
            raise FormatError(msg)
    reference = celestial_wcs(headers["r"])
    if reference is not None:
        # SDSS frames of one field are offset by many pixels between bands;
        # stacking them unregistered gives colour fringes, so refuse.
        centre = reference.pixel_to_world((shape[1] - 1) / 2, (shape[0] - 1) / 2)
        for band in ("g", "i"):
            wcs = celestial_wcs(headers[band])
            if wcs is None:
                continue
            x, y = wcs.world_to_pixel(centre)
            offset = float(np.hypot(x - (shape[1] - 1) / 2, y - (shape[0] - 1) / 2))
            if offset > MAX_BAND_OFFSET_PX:
                msg = (
                    f"{paths[band]}: {band} band is offset by {offset:.1f} px from the r band ({paths['r']}); "
                    "resample the bands onto one pixel grid first"
                )
                raise FormatError(msg)
    return np.stack([images[b] for b in BANDS]), headers["r"]


def read_gri_composite(g_path: str | Path, r_path: str | Path, i_path: str | Path, q: float = DEFAULT_Q,
                       stretch: float | None = None) -> np.ndarray:
    """Colour composite from three single-band FITS files.

    Parameters
    ----------
    g_path, r_path, i_path : str or Path
        Registered single-band FITS images of one field.
    q, stretch
        See :func:`~deepscope.galaxy.cutouts.composite.lupton_composite`.

    Returns
    -------
    numpy.ndarray
        As :func:`~deepscope.galaxy.cutouts.composite.lupton_composite` returns it.

    Raises
    ------
    FormatError
        See :func:`read_gri_bands`.
    """
    bands, _ = read_gri_bands(g_path, r_path, i_path)
    return lupton_composite(*bands, q=q, stretch=stretch)
