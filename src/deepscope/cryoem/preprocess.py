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


# Laplacian-of-Gaussian scale, in particle diameters, at which the polarity is read: a blob
# filter a little smaller than the particle responds to its core (docs/cryoem.md, "Polarity and particle size").
POLARITY_SIGMA_FRACTION = 0.25
# Asymmetry (:func:`particle_contrast`) beyond which particles count as bright; between
# -this and 0 the pixels barely say, and the usual convention (dark particles) stands.
BRIGHT_BELOW = -0.05
POLARITIES = ("auto", "dark", "bright")


def particle_contrast(image: np.ndarray, diameter: float) -> float:
    """How much darker than their surroundings the particle-sized blobs of an image are: > 0 dark, < 0 bright.

    Particles are blobs of one sign; ice, noise and carbon edges give
    responses of both. So the Laplacian of Gaussian at
    :data:`POLARITY_SIGMA_FRACTION` of the diameter has a longer tail on the
    particles' side: the statistic is Bowley's quantile skewness of that
    response (:func:`blob_skewness`), in ``[-1, 1]``, a border of at least
    5% left out (striped or blank micrograph edges). Inverting the image
    negates it exactly.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    diameter : float
        Particle diameter in pixels of ``image``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows, cols = np.mgrid[:128, :128]
    >>> dark = rng.normal(0, 0.3, (128, 128))
    >>> for x, y in rng.uniform(16, 112, (20, 2)):
    ...     dark -= np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 18.0)
    >>> particle_contrast(dark, 10.0) > 0.1, particle_contrast(-dark, 10.0) < -0.1
    (True, True)
    """
    image = np.asarray(image, dtype=np.float32)
    sigma = POLARITY_SIGMA_FRACTION * diameter
    if sigma > 2 and min(image.shape) >= 64:
        # half the pixels in each direction lose nothing at this scale and cost a quarter
        rows, cols = (n - n % 2 for n in image.shape)
        image = image[:rows, :cols].reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3))
        sigma /= 2
    return blob_skewness(image, sigma)


def blob_skewness(image: np.ndarray, sigma: float) -> float:
    """Bowley skewness of the Laplacian of Gaussian of ``image`` at ``sigma``: > 0 when dark blobs stand out.

    The quantile skewness between the 1st and 99th percentiles of the
    response, in ``[-1, 1]``, with a border of ``3 sigma`` (at least 5% of
    the side) left out; the Laplacian of a dark blob is positive at its
    centre, so blobs darker than their surroundings lengthen the upper tail.

    Examples
    --------
    >>> blob_skewness(np.zeros((64, 64)), 2.0)
    0.0
    """
    from scipy import ndimage

    response = ndimage.gaussian_laplace(image, sigma)
    margin = max(int(3 * sigma), int(0.05 * min(image.shape)))
    if min(image.shape) > 4 * margin:
        response = response[margin:-margin, margin:-margin]
    low, middle, high = np.percentile(response, [1, 50, 99])
    return float((high + low - 2 * middle) / (high - low)) if high > low else 0.0


def decide_polarity(image: np.ndarray, diameter: float, polarity: str = "auto") -> str:
    """``"dark"`` or ``"bright"``: as given, or for ``"auto"`` read from the pixels (:func:`particle_contrast`).

    Raises
    ------
    InputError
        If ``polarity`` is not auto, dark or bright.

    Examples
    --------
    >>> decide_polarity(np.zeros((64, 64)), 10.0), decide_polarity(np.zeros((64, 64)), 10.0, "bright")
    ('dark', 'bright')
    """
    if polarity not in POLARITIES:
        msg = f"polarity must be auto, dark or bright, got {polarity!r}"
        raise InputError(msg)
    if polarity != "auto":
        return polarity
    return "bright" if particle_contrast(image, diameter) < BRIGHT_BELOW else "dark"


def load_for_picking(path: str | Path, diameter: float, working_diameter: float, enhance: str = "auto",
                     polarity: str = "auto") -> tuple[np.ndarray, float, tuple[int, int]]:
    """Read a micrograph and bring it to the network's working scale, particles dark.

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
    polarity : {"auto", "dark", "bright"}
        Whether particles are darker than the ice in the file (the usual
        convention) or brighter (some pipelines write them inverted); a
        bright micrograph is inverted, so the network always sees dark
        particles. ``"auto"`` decides from the pixels
        (:func:`decide_polarity`), micrograph by micrograph.

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
        If ``enhance`` or ``polarity`` is not one of its three choices.
    """
    if enhance not in ("auto", "on", "off"):
        msg = f"enhance must be auto, on or off, got {enhance!r}"
        raise InputError(msg)
    if polarity not in POLARITIES:
        msg = f"polarity must be auto, dark or bright, got {polarity!r}"
        raise InputError(msg)
    scale = working_diameter / diameter
    reduce = max(1, int(1 / scale)) if scale < 1 else 1
    raw, factor = read_micrograph_reduced(path, reduce)
    full_shape = (round(raw.shape[0] * factor), round(raw.shape[1] * factor))
    image = rescale(raw, scale * factor)
    # read before enhancement, whose equalisation flattens the tails the decision rests on
    polarity = decide_polarity(image, working_diameter, polarity)
    if enhance == "on":
        image = enhance_contrast(image, working_diameter)
    elif enhance == "auto":
        image = match_training_domain(image, working_diameter)
    image = normalize(image)
    # normalisation is symmetric (median, quartiles, clip), so inverting after it is inverting the file
    return (-image if polarity == "bright" else image), image.shape[1] / full_shape[1], full_shape


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
