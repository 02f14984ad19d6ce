"""Micrographs -> network input: resampling to the working scale, normalisation, contrast, targets.

Picking works at a fixed *working* particle diameter, so every micrograph is
first resampled by ``working_diameter / particle_diameter``: a model trained
at one particle size picks another by rescaling the micrograph, not the
network. Coordinates move between the frames with :func:`to_working_frame` /
:func:`to_micrograph_frame`; training targets are disks at working scale
(:func:`disk_mask`).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.io import read_micrograph_reduced
from deepscope.errors import InputError


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Resample a 2-D image by ``scale`` (output size / input size): ``float32``, shape ``round(shape * scale)``.

    Shrinking uses a box filter (the mean over each output pixel's
    footprint), which averages noise down instead of aliasing it.

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
    """Standardise to zero median and unit robust spread (``float32``), clipped at ``clip`` (hot pixels, carbon edges).

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
    """Automatic contrast enhancement of a raw micrograph (CASSPER's "original -> contrast enhanced").

    A raw micrograph is dominated by shot noise at high spatial frequency
    and by ice-thickness gradients at low frequency; the particles live in
    between. The image is band-passed around the particle size, then its
    histogram is equalised.

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


# Relative pixel noise (:func:`relative_noise`) above which "auto" low-passes the
# working-scale image: denoised micrographs such as the shipped model's training
# JPEGs sit well below it. Chosen as docs/cryoem.md ("Raw input") describes.
NOISY_ABOVE = 0.08
# Gaussian low-pass for noisy input, in particle diameters at working scale: one
# strength serves every noise level, and clean input loses nothing to it.
LOW_PASS_FRACTION = 0.7 / 13.5
# Relative noise above which the pixels are noise-dominated (raw micrographs, as
# `cryoem simulate` writes them): there band-pass and equalisation do better.
NOISE_DOMINATED_ABOVE = 0.9


def pixel_noise(image: np.ndarray) -> float:
    """Standard deviation of the white (pixel-to-pixel) noise in a 2-D image, in its units.

    Immerkaer's estimator (1996): a 3x3 kernel that annihilates any locally
    linear signal, so what it responds to is noise, not particles or ice
    gradients.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(pixel_noise(rng.normal(0, 2.0, (256, 256))), 1)
    2.0
    >>> pixel_noise(np.add.outer(np.arange(32.0), np.arange(32.0)))
    0.0
    """
    from scipy import ndimage

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = ndimage.convolve(np.asarray(image, dtype=np.float64), kernel)[1:-1, 1:-1]
    # E|N(0, s^2 * 36)| = 6 s sqrt(2 / pi)
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def relative_noise(image: np.ndarray) -> float:
    """Pixel noise (:func:`pixel_noise`) over the robust spread: near 0 denoised, near 1 white noise.

    Scale-free, so the same pixels give the same answer whatever their units
    (8-bit JPEG, 16-bit counts, float32 MRC).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(relative_noise(rng.normal(0, 1.0, (256, 256))), 1)
    1.0
    >>> relative_noise(np.zeros((16, 16)))
    0.0
    """
    low, high = np.percentile(image, [25, 75])
    spread = (high - low) / 1.349
    return float(pixel_noise(image) / spread) if spread > 0 else 0.0


def match_training_domain(image: np.ndarray, working_diameter: float) -> np.ndarray:
    """Bring a working-scale image towards the denoised micrographs the picker learned from.

    Decided from the pixels, never from the file type, by the relative
    noise (:func:`relative_noise`): up to :data:`NOISY_ABOVE` the image is
    returned unchanged (it looks like the denoised training micrographs);
    up to :data:`NOISE_DOMINATED_ABOVE` it is low-passed by a Gaussian of
    ``LOW_PASS_FRACTION * working_diameter``; beyond, it gets the band-pass
    and histogram equalisation of :func:`enhance_contrast`.

    ``working_diameter`` is the particle diameter in pixels of ``image``;
    the result is a ``float32`` image of the same shape.

    Examples
    --------
    >>> clean = np.add.outer(np.arange(32.0), np.arange(32.0))
    >>> bool((match_training_domain(clean, 13.5) == clean).all())
    True
    >>> rng = np.random.default_rng(0)
    >>> ramp = np.add.outer(np.arange(64.0), np.arange(64.0)) / 8
    >>> residual = match_training_domain(ramp + rng.normal(0, 0.5, (64, 64)), 13.5) - ramp  # noise std 0.5
    >>> round(float(residual[8:-8, 8:-8].std()), 1)
    0.2
    >>> float(match_training_domain(rng.normal(0, 1, (64, 64)), 13.5).max())  # equalised
    1.0
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float32)
    noise = relative_noise(image)
    if noise <= NOISY_ABOVE:
        return image
    if noise > NOISE_DOMINATED_ABOVE:
        return enhance_contrast(image, working_diameter)
    return ndimage.gaussian_filter(image, LOW_PASS_FRACTION * working_diameter)


def load_for_picking(path: str | Path, diameter: float, working_diameter: float,
                     enhance: str = "auto") -> tuple[np.ndarray, float, tuple[int, int]]:
    """Read a micrograph and bring it to the network's working scale.

    Parameters
    ----------
    path : str or Path
        Micrograph file.
    diameter, working_diameter : float
        Particle diameter in pixels of the file, and the one the model works at.
    enhance : {"auto", "on", "off"}
        ``"auto"`` decides from the pixels (:func:`match_training_domain`),
        so the same pixels give the same image in any container; ``"on"``
        forces :func:`enhance_contrast`; ``"off"`` uses the pixels as they are.

    Returns
    -------
    image : numpy.ndarray
        Normalised ``float32`` image at working scale.
    scale : float
        Working pixels per file pixel.
    shape : tuple of int
        ``(rows, columns)`` of the file at full resolution.

    Raises
    ------
    FormatError
        If the file cannot be read.
    InputError
        If ``enhance`` is not one of the three choices.
    """
    if enhance not in ("auto", "on", "off"):
        msg = f"enhance must be auto, on or off, got {enhance!r}"
        raise InputError(msg)
    scale = working_diameter / diameter
    reduce = max(1, int(1 / scale)) if scale < 1 else 1
    raw, factor = read_micrograph_reduced(path, reduce)
    full_shape = (round(raw.shape[0] * factor), round(raw.shape[1] * factor))
    image = rescale(raw, scale * factor)
    if enhance == "on":
        image = enhance_contrast(image, working_diameter)
    elif enhance == "auto":
        image = match_training_domain(image, working_diameter)
    return normalize(image), image.shape[1] / full_shape[1], full_shape


def to_working_frame(table: pd.DataFrame, scale: float) -> pd.DataFrame:
    """Micrograph pixel coordinates -> the working-scale image's.

    Working pixel ``i`` covers micrograph pixels ``[i/scale, (i+1)/scale)``;
    with coordinates at pixel centres, micrograph ``x`` is working
    ``(x + 0.5) * scale - 0.5``, not ``x * scale`` (which would shift every
    point by half a working pixel towards the origin). ``scale`` is working
    pixels per micrograph pixel; other columns of ``table`` are kept.

    Examples
    --------
    >>> to_working_frame(pd.DataFrame({"x": [3.5], "y": [0.0]}), 0.25)[["x", "y"]].values.tolist()
    [[0.5, -0.375]]
    """
    return table.assign(x=(table["x"] + 0.5) * scale - 0.5, y=(table["y"] + 0.5) * scale - 0.5)


def to_micrograph_frame(table: pd.DataFrame, scale: float) -> pd.DataFrame:
    """Working-scale coordinates -> the micrograph's pixels (inverse of :func:`to_working_frame`).

    Examples
    --------
    >>> to_micrograph_frame(pd.DataFrame({"x": [0.0], "y": [1.0]}), 0.25)[["x", "y"]].values.tolist()
    [[1.5, 5.5]]
    """
    return table.assign(x=(table["x"] + 0.5) / scale - 0.5, y=(table["y"] + 0.5) / scale - 0.5)


def disk_mask(shape: tuple[int, int], centres: np.ndarray, radius: float) -> np.ndarray:
    """``float32`` mask of ``shape`` with a disk of ``radius`` at every ``(x, y)`` centre: the particle target.

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
