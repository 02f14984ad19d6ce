"""Micrograph preprocessing: resampling, normalisation, contrast enhancement, targets.

Picking works at a fixed *working* particle diameter (a few pixels across
the particle is enough for a segmentation network), so every micrograph is
first resampled by ``working_diameter / particle_diameter``. This is also
what lets a model trained at one particle size pick another: the micrograph
is rescaled, not the network. Coordinates move between the micrograph and
the working frame with :func:`to_working_frame` / :func:`to_micrograph_frame`,
and training targets are disks drawn at working scale (:func:`disk_mask`).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.io import read_micrograph_reduced
from deepscope.errors import InputError


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Resample an image by ``scale`` (< 1 shrinks).

    Shrinking uses a box filter (the mean over each output pixel's
    footprint), which averages noise down instead of aliasing it.

    Parameters
    ----------
    image : numpy.ndarray
        2-D array.
    scale : float
        Output size / input size.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``round(shape * scale)``.

    Examples
    --------
    >>> rescale(np.ones((8, 8)), 0.25).shape
    (2, 2)
    """
    from PIL import Image

    if scale <= 0:
        msg = f"scale must be positive, got {scale}"
        raise InputError(msg)
    rows, cols = image.shape
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    if size == (cols, rows):
        return np.asarray(image, dtype=np.float32)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    out = Image.fromarray(np.asarray(image, dtype=np.float32), mode="F").resize(size, resample)
    return np.asarray(out, dtype=np.float32)


def normalize(image: np.ndarray, clip: float = 4.0) -> np.ndarray:
    """Standardise to zero median and unit robust spread, then clip outliers.

    Parameters
    ----------
    image : numpy.ndarray
    clip : float
        Values beyond ``clip`` robust standard deviations are clipped (hot
        pixels, carbon edges).

    Returns
    -------
    numpy.ndarray
        ``float32`` array.

    Examples
    --------
    >>> out = normalize(np.arange(100.0).reshape(10, 10))
    >>> bool(abs(np.median(out)) < 1e-6)
    True
    """
    image = np.asarray(image, dtype=np.float32)
    centre = np.median(image)
    low, high = np.percentile(image, [25, 75])
    # the interquartile range / 1.349 is the standard deviation of a normal
    # distribution, but is not dragged up by hot pixels or ice crystals
    spread = (high - low) / 1.349
    if not spread > 0:
        spread = float(image.std()) or 1.0
    return np.clip((image - centre) / spread, -clip, clip).astype(np.float32)


def enhance_contrast(image: np.ndarray, diameter: float) -> np.ndarray:
    """Automatic contrast enhancement of a raw micrograph.

    A raw micrograph is dominated by shot noise at high spatial frequency
    and by slow ice-thickness gradients at low frequency; the particles live
    in between. This band-passes the image around the particle size and
    then equalises the histogram, the "original -> contrast enhanced" step
    of CASSPER.

    Parameters
    ----------
    image : numpy.ndarray
        2-D raw micrograph (any scale).
    diameter : float
        Particle diameter in pixels of ``image``.

    Returns
    -------
    numpy.ndarray
        ``float32`` image in ``[0, 1]`` with a flat histogram.
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float32)
    # sigma d/8 keeps particle shape (a Gaussian of FWHM ~ d/3.4) while
    # removing pixel noise; 2 d removes gradients larger than a particle
    # without eating into the particles themselves.
    smooth = ndimage.gaussian_filter(image, max(diameter / 8, 0.5))
    background = ndimage.gaussian_filter(image, 2 * diameter)
    band = smooth - background
    # rank-based equalisation: robust to any noise distribution
    ranks = np.argsort(np.argsort(band, axis=None), axis=None)
    return (ranks.reshape(band.shape) / max(band.size - 1, 1)).astype(np.float32)


def load_for_picking(path: str | Path, diameter: float, working_diameter: float,
                     enhance: str = "auto") -> tuple[np.ndarray, float, tuple[int, int]]:
    """Read a micrograph and bring it to the network's working scale.

    Parameters
    ----------
    path : str or Path
        Micrograph file.
    diameter : float
        Particle diameter in pixels of the file.
    working_diameter : float
        Particle diameter the model works at.
    enhance : {"auto", "on", "off"}
        Contrast enhancement; ``"auto"`` enables it for MRC and TIFF files
        (raw detector data), not for 8-bit JPEG/PNG, which are already
        processed images.

    Returns
    -------
    image : numpy.ndarray
        Normalised ``float32`` image at working scale.
    scale : float
        Working pixels per file pixel (divide coordinates by it to return
        to the file's frame).
    shape : tuple of int
        ``(rows, columns)`` of the file at full resolution.

    Raises
    ------
    FormatError
        If the file cannot be read.
    """
    if enhance not in ("auto", "on", "off"):
        msg = f"enhance must be auto, on or off, got {enhance!r}"
        raise InputError(msg)
    scale = working_diameter / diameter
    reduce = max(1, int(1 / scale)) if scale < 1 else 1
    raw, factor = read_micrograph_reduced(path, reduce)
    full_shape = (round(raw.shape[0] * factor), round(raw.shape[1] * factor))
    image = rescale(raw, scale * factor)
    suffix = str(path).lower().rsplit(".", 1)[-1]
    if enhance == "on" or (enhance == "auto" and suffix in ("mrc", "mrcs", "tif", "tiff")):
        image = enhance_contrast(image, working_diameter)
    return normalize(image), image.shape[1] / full_shape[1], full_shape


def to_working_frame(table: pd.DataFrame, scale: float) -> pd.DataFrame:
    """Micrograph pixel coordinates -> the working-scale image's.

    Working pixel ``i`` covers micrograph pixels ``[i/scale, (i+1)/scale)``;
    with coordinates at pixel centres, micrograph ``x`` is working
    ``(x + 0.5) * scale - 0.5``, not ``x * scale`` (which would shift every
    point by half a working pixel towards the origin).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``x``, ``y`` (and any others, kept).
    scale : float
        Working pixels per micrograph pixel.

    Returns
    -------
    pandas.DataFrame
        A copy with ``x``, ``y`` in working pixels.

    Examples
    --------
    >>> to_working_frame(pd.DataFrame({"x": [3.5], "y": [0.0]}), 0.25)[["x", "y"]].values.tolist()
    [[0.5, -0.375]]
    """
    return table.assign(x=(table["x"] + 0.5) * scale - 0.5, y=(table["y"] + 0.5) * scale - 0.5)


def to_micrograph_frame(table: pd.DataFrame, scale: float) -> pd.DataFrame:
    """Working-scale coordinates -> the micrograph's pixels (inverse of :func:`to_working_frame`).

    Parameters
    ----------
    table, scale
        As in :func:`to_working_frame`.

    Returns
    -------
    pandas.DataFrame
        A copy, its ``x`` and ``y`` now in micrograph pixels.

    Examples
    --------
    >>> to_micrograph_frame(pd.DataFrame({"x": [0.0], "y": [1.0]}), 0.25)[["x", "y"]].values.tolist()
    [[1.5, 5.5]]
    """
    return table.assign(x=(table["x"] + 0.5) / scale - 0.5, y=(table["y"] + 0.5) / scale - 0.5)


def disk_mask(shape: tuple[int, int], centres: np.ndarray, radius: float) -> np.ndarray:
    """Binary mask with a disk of ``radius`` at every centre: the particle target.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    centres : numpy.ndarray
        ``(n, 2)`` array of ``x`` (column), ``y`` (row).
    radius : float

    Returns
    -------
    numpy.ndarray
        ``float32`` mask.

    Examples
    --------
    >>> float(disk_mask((5, 5), np.array([[2.0, 2.0]]), 1.0).sum())
    5.0
    """
    mask = np.zeros(shape, dtype=np.float32)
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    for x, y in np.asarray(centres, dtype=np.float64).reshape(-1, 2):
        cx, cy = int(round(x)), int(round(y))
        inside = (dx + cx - x) ** 2 + (dy + cy - y) ** 2 <= radius**2
        rows, cols = dy[inside] + cy, dx[inside] + cx
        keep = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        mask[rows[keep], cols[keep]] = 1.0
    return mask
