"""Survey frames resampled onto a cutout's own sky grid.

Why resample rather than cut: SDSS bands of one field are offset by tens of
pixels, frames are not north up, and a galaxy near a field's edge lies on
two frames, so a plain pixel cut would misregister the colours, turn the
image, or leave a hole. When one frame holds the whole field it alone is
used; otherwise every overlapping frame of the band is sampled through its
own WCS (cubic spline, ``scipy.ndimage.map_coordinates``) and the overlaps
averaged: what ``reproject``'s mosaicking does, without the extra dependency.
"""

import math

import numpy as np

# Pixels the cubic spline reaches beyond the position it is evaluated at.
SPLINE_REACH = 2


def cutout_wcs(ra, dec, field_arcsec, size):
    """A north-up, east-left gnomonic WCS of a square field: centre ``ra, dec`` (degrees), side in arcsec and pixels.

    Examples
    --------
    >>> wcs = cutout_wcs(150.0, 2.0, 19.2, 64)
    >>> [round(float(v), 6) for v in wcs.pixel_to_world_values(31.5, 31.5)]
    [150.0, 2.0]
    """
    from astropy.wcs import WCS

    scale = field_arcsec / size / 3600.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    # FITS pixels are 1-based: the centre of an N-pixel axis is (N + 1) / 2.
    wcs.wcs.crpix = [(size + 1) / 2.0, (size + 1) / 2.0]
    wcs.wcs.cd = np.array([[-scale, 0.0], [0.0, scale]])
    return wcs


def _sample(frame, x, y):
    """Frame pixel values at fractional positions (cubic spline), reading only the patch needed."""
    from astropy.nddata import Cutout2D
    from scipy.ndimage import map_coordinates

    from deepscope.galaxy.cutouts.frames import read_frame_pixels

    data = read_frame_pixels(frame.path)
    x_lo, x_hi = math.floor(x.min()) - SPLINE_REACH, math.ceil(x.max()) + SPLINE_REACH
    y_lo, y_hi = math.floor(y.min()) - SPLINE_REACH, math.ceil(y.max()) + SPLINE_REACH
    # The spline prefilter runs over the whole array it is given: a patch
    # instead of a 3-Mpx SDSS frame makes a cutout ~100 times faster.
    patch = Cutout2D(data, ((x_lo + x_hi) / 2, (y_lo + y_hi) / 2), (y_hi - y_lo + 1, x_hi - x_lo + 1),
                     mode="trim", copy=False)
    x0, y0 = patch.origin_original
    return map_coordinates(np.asarray(patch.data, dtype=np.float64), [y - y0, x - x0], order=3, mode="nearest")


def _edge_distance(frame, ra, dec):
    """Smallest distance (frame pixels) from positions to the frame's edges; negative when off it."""
    x, y = frame.pixels(ra, dec)
    height, width = frame.shape
    distance = float(np.min([x + 0.5, width - 0.5 - x, y + 0.5, height - 0.5 - y]))
    return distance if math.isfinite(distance) else -math.inf


def resample_band(frames, grid_ra, grid_dec, corner_ra, corner_dec):
    """One band on a cutout grid: from the frame holding the whole field, else averaged over frames.

    ``frames`` are the band's frames that reach the field; ``grid_ra``,
    ``grid_dec`` the sky positions (degrees) of the grid's pixel centres,
    flat; the field's four corners find a frame holding all of it. Returns
    ``float64`` values at the grid positions, NaN where no frame covers them.

    Raises
    ------
    FormatError
        If a frame's pixels cannot be read.
    """
    margins = [_edge_distance(f, corner_ra, corner_dec) for f in frames]
    best = int(np.argmax(margins))
    use = [frames[best]] if margins[best] >= SPLINE_REACH else frames
    total = np.zeros(grid_ra.shape)
    count = np.zeros(grid_ra.shape)
    for frame in use:
        x, y = frame.pixels(grid_ra, grid_dec)
        inside = frame.holds(x, y)
        if inside.any():
            total[inside] += _sample(frame, x[inside], y[inside])
            count[inside] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
