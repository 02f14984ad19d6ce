"""Array work on galaxy images: network input, apparent size, cutouts scaled to the galaxy.

:func:`to_model_input` turns an RGB cutout into what the networks read;
:func:`bright_pixel_count` measures apparent size, the confound of the bar
sample (DATA.md).

A galaxy's apparent size depends on its distance; a network that sees
cutouts of a fixed angular field learns size as much as shape.
:func:`scale_to_radius` and :func:`fits_cutout` scale the field to a fixed
multiple of the galaxy's de Vaucouleurs radius (arcsec, e.g. SDSS
``deVRad_r``) and resample it to a fixed pixel size, so every galaxy fills
the frame alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.errors import FormatError, InputError
from deepscope.galaxy import fits_bands
from deepscope.galaxy.cutouts.composite import DEFAULT_Q, lupton_composite, sky_level

if TYPE_CHECKING:
    from collections.abc import Sequence

# Pixels brighter than this (of 255, in the mean of g, r, i) count towards a
# galaxy's apparent size; DATA.md measures the size confound with this level.
BRIGHT_LEVEL = 40

# Field side in de Vaucouleurs radii: leaves the disc outskirts (a few
# r_dV for typical SDSS spirals) inside the frame.
DEFAULT_N_RADII = 10.0
# Output side in pixels, as the SDSS cutouts of the bundled data.
DEFAULT_SIZE = 64


def to_model_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB cutout to the model's input size, as float32 CHW in [0, 1].

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` array ``(H, W, 3)``.
    size : int
        Output side in pixels.

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(3, size, size)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = to_model_input(np.full((80, 80, 3), 255, np.uint8), 64)
    >>> x.shape, x.dtype, float(x.max())
    ((3, 64, 64), dtype('float32'), 1.0)
    """
    return pixels_to_input(to_model_pixels(rgb, size))


def to_model_pixels(rgb: np.ndarray, size: int) -> np.ndarray:
    """:func:`to_model_input` before the scaling to [0, 1]: ``uint8 (3, size, size)``.

    A quarter of the bytes, for handing cutouts between processes.
    """
    if rgb.shape[:2] != (size, size):
        from PIL import Image

        # PIL's bilinear resize, as the shipped models were trained with.
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def pixels_to_input(pixels: np.ndarray) -> np.ndarray:
    """``uint8`` pixels (one cutout or a batch) as the network's float32 input in [0, 1].

    Examples
    --------
    >>> pixels_to_input(np.array([0, 51, 255], np.uint8)).tolist()
    [0.0, 0.20000000298023224, 1.0]
    """
    # One pass, in float32: the values of astype(float32) / 255, at a third of the time.
    return np.divide(pixels, np.float32(255), dtype=np.float32)


def bright_pixel_count(rgb: np.ndarray, level: float = BRIGHT_LEVEL) -> int | np.ndarray:
    """Apparent size of a galaxy: pixels brighter than ``level`` in the mean of the bands.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` array ``(H, W, 3)`` or a stack ``(N, H, W, 3)``.
    level : float
        Brightness threshold, of 255.

    Returns
    -------
    int or numpy.ndarray
        One count per image.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.zeros((8, 8, 3), np.uint8)
    >>> rgb[2:4, 2:5] = 200
    >>> int(bright_pixel_count(rgb))
    6
    """
    return (rgb.mean(axis=-1) > level).sum(axis=(-2, -1))


def resample_square(
    image: np.ndarray, field_px: float, size: int = DEFAULT_SIZE, center: tuple[float, float] | None = None,
    fill: float = 0.0,
) -> np.ndarray:
    """Cut a square field around a centre and resample it to ``size`` pixels.

    The field is cut with astropy's ``Cutout2D`` on whole input pixels (the
    centre rounded to the nearest pixel, the side to a whole number of
    pixels; parts outside the image take ``fill``), then resampled with
    scikit-image's ``resize``: bilinear, with a Gaussian anti-aliasing
    prefilter when shrinking.

    Parameters
    ----------
    image : numpy.ndarray
        ``(height, width)`` or ``(height, width, channels)``.
    field_px : float
        Side of the square field, in input pixels.
    size : int
        Side of the output, pixels.
    center : tuple of float, optional
        ``(x, y)`` of the field centre in input pixels (x = column); the
        image centre by default.
    fill : float
        Value outside the image.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` or ``(size, size, channels)``, same dtype as ``image``.

    Raises
    ------
    InputError
        If the field or the output size is not positive, or the image is
        not 2-D or 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(16.0).reshape(4, 4)
    >>> resample_square(image, field_px=4, size=4).tolist() == image.tolist()
    True
    """
    from astropy.nddata import Cutout2D, NoOverlapError
    from skimage.transform import resize

    image = np.asarray(image)
    if image.ndim not in (2, 3):
        msg = f"expected an image of shape (height, width[, channels]); got {image.shape}"
        raise InputError(msg)
    if not (np.isfinite(field_px) and field_px > 0) or int(size) < 1:
        msg = f"field and output size must be positive; got field_px={field_px}, size={size}"
        raise InputError(msg)
    height, width = image.shape[:2]
    position = ((width - 1) / 2, (height - 1) / 2) if center is None else center
    side = max(1, int(round(field_px)))
    planes = image[..., None] if image.ndim == 2 else image
    out_shape = (size, size, planes.shape[2])
    try:
        # Cutout2D takes one 2-D plane; float so that any fill value fits.
        field = np.stack([Cutout2D(planes[..., c].astype(np.float64), position, side, mode="partial",
                                   fill_value=fill).data for c in range(planes.shape[2])], axis=-1)
        out = resize(field, out_shape, order=1, mode="edge", anti_aliasing=side > size, preserve_range=True)
    except NoOverlapError:
        out = np.full(out_shape, fill, dtype=np.float64)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(image.dtype)
    return out[..., 0] if image.ndim == 2 else out


def scale_to_radius(
    image: np.ndarray, radius_arcsec: float, pixel_scale: float, n_radii: float = DEFAULT_N_RADII,
    size: int = DEFAULT_SIZE, center: tuple[float, float] | None = None, fill: float = 0.0,
) -> np.ndarray:
    """Resample a cutout so its field spans ``n_radii`` de Vaucouleurs radii.

    Parameters
    ----------
    image : numpy.ndarray
        ``(height, width)`` or ``(height, width, channels)``, e.g. an RGB
        cutout from :func:`deepscope.galaxy.io.read_galaxy_image`.
    radius_arcsec : float
        The galaxy's de Vaucouleurs radius (e.g. SDSS ``deVRad_r``), arcsec.
    pixel_scale : float
        Arcseconds per input pixel (0.396 for SDSS frames; 0.3 for the
        bundled SDSS JPEG cutouts).
    n_radii : float
        Side of the output field in units of ``radius_arcsec``.
    size : int
        Side of the output, pixels.
    center : tuple of float, optional
        ``(x, y)`` of the galaxy in input pixels; the image centre by default.
    fill : float
        Value where the field extends beyond the image.

    Returns
    -------
    numpy.ndarray
        ``(size, size[, channels])``, same dtype as ``image``.

    Raises
    ------
    InputError
        If the radius, pixel scale or ``n_radii`` is not a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((100, 100, 3), dtype=np.uint8)
    >>> scale_to_radius(image, radius_arcsec=4.0, pixel_scale=0.4, size=32).shape
    (32, 32, 3)
    """
    for name, value in (("radius_arcsec", radius_arcsec), ("pixel_scale", pixel_scale), ("n_radii", n_radii)):
        if value is None or not np.isfinite(value) or value <= 0:
            msg = f"{name} must be a positive number, got {value}"
            raise InputError(msg)
    field_px = n_radii * radius_arcsec / pixel_scale
    return resample_square(image, field_px, size=size, center=center, fill=fill)


def fits_cutout(
    paths: str | Path | Sequence[str | Path], radius_arcsec: float, pixel_scale: float | None = None,
    position: tuple[float, float] | None = None, n_radii: float = DEFAULT_N_RADII, size: int = DEFAULT_SIZE,
    q: float = DEFAULT_Q, stretch: float | None = None,
) -> np.ndarray:
    """Colour cutout from FITS bands, scaled to the galaxy's de Vaucouleurs radius.

    The bands are resampled in linear flux (sky subtracted, so the area
    beyond the image edge is sky), then turned into an asinh composite.

    Parameters
    ----------
    paths : str or Path, or sequence of three
        One FITS cube with the g, r, i planes, or the g, r and i files.
    radius_arcsec : float
        de Vaucouleurs radius of the galaxy, arcsec.
    pixel_scale : float, optional
        Arcseconds per pixel; read from the (r-band) WCS when not given.
    position : tuple of float, optional
        ``(ra, dec)`` of the galaxy in degrees, located through the WCS;
        the image centre by default.
    n_radii, size
        See :func:`scale_to_radius`.
    q, stretch
        See :func:`deepscope.galaxy.cutouts.composite.lupton_composite`.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(size, size, 3)``.

    Raises
    ------
    FormatError
        If the files cannot be read as g, r, i bands, or the pixel scale or
        position is needed but the file has no celestial WCS.
    InputError
        If ``paths`` is neither one path nor three, or the radius is invalid.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    if isinstance(paths, (str, Path)):
        source = Path(paths)
        bands, header = fits_bands.read_fits_bands(source)
    elif len(paths) == 3:
        source = Path(paths[1])
        bands, header = fits_bands.read_gri_bands(*paths)
    else:
        msg = f"give one FITS cube or three band files (g, r, i), got {len(paths)} path(s)"
        raise InputError(msg)
    if pixel_scale is None:
        pixel_scale = fits_bands.fits_pixel_scale(header)
        if pixel_scale is None:
            msg = f"{source}: no celestial WCS to read the pixel scale from; give the pixel scale (arcsec/px)"
            raise FormatError(msg)
    center = None
    if position is not None:
        wcs = fits_bands.celestial_wcs(header)
        if wcs is None:
            msg = f"{source}: no celestial WCS to locate ra, dec = {position}"
            raise FormatError(msg)
        x, y = wcs.world_to_pixel(SkyCoord(position[0] * u.deg, position[1] * u.deg))
        center = (float(x), float(y))
    bands = np.stack([band - sky_level(band) for band in bands], axis=-1)
    scaled = scale_to_radius(bands, radius_arcsec, pixel_scale, n_radii=n_radii, size=size, center=center, fill=0.0)
    return lupton_composite(*np.moveaxis(scaled, -1, 0), q=q, stretch=stretch, subtract_sky=False)
