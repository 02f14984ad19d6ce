"""Re-centring picks on the micrograph itself, as 2D classification does.

A picker's map locates a particle to a fraction of its working pixel; the
image holds the rest. Each pick's box is cross-correlated with one reference
built from all the picks: their average, rotationally averaged (particles
lie in every in-plane orientation, so a round reference is unbiased and
centred on the particles' centre of mass). The correlation peak, refined by
a parabola through its neighbours, moves each pick; the reference is rebuilt
from the moved boxes and the search repeated, as RELION / cryoSPARC 2D
classification re-centre. Batched over the stack with real FFTs.

Where the truth is the particle's own centre (simulated micrographs) this
beats the picker's map; against labels that are another picker's integer
positions (EMPIAR-10017's CryoPPP labels) it does worse, so
:class:`~deepscope.cryoem.predictor.Picker` applies it only when asked
(docs/cryoem.md, "Centres").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.classify2d.align import circular_mask
from deepscope.cryoem.io import read_micrograph_reduced
from deepscope.cryoem.preprocess import rescale
from deepscope.errors import InputError

# Search radius, rounds, box side and reference mask radius, in particle diameters
# (flat over a range on the training micrographs; rounds and the low-pass chosen
# on simulated micrographs, whose truth is exact).
SEARCH_FRACTION = 0.25
ITERATIONS = 2
BOX_FRACTION = 1.5
MASK_FRACTION = 0.5
# Gaussian low-pass of the boxes and the reference, in diameters: a raw box's
# own noise otherwise pulls the peak.
LOW_PASS_FRACTION = 0.06
# Particle diameter, in pixels, at which micrographs are read for re-centring
# (a 108 px particle at a quarter size): twice as fine scatters hardly less
# and costs four times as much.
RECENTRE_DIAMETER = 27.0


def load_for_recentring(path: str | Path, diameter: float) -> np.ndarray:
    """Read a micrograph at an integer reduction that leaves the particle about :data:`RECENTRE_DIAMETER` px across.

    ``diameter`` is the particle diameter in pixels of the file. JPEGs are
    decoded at the reduced size, other formats box-averaged; the image is
    :meth:`~deepscope.cryoem.predictor.Picker.pick`'s ``micrograph``.

    Raises
    ------
    FormatError
        If the file cannot be read.
    """
    reduce = max(1, int(diameter / RECENTRE_DIAMETER))
    image, factor = read_micrograph_reduced(path, reduce)
    return image if factor == reduce else rescale(image, factor / reduce)


def rotational_average(image: np.ndarray) -> np.ndarray:
    """Average a square image over rotations about pixel ``size // 2``.

    Each pixel's radius is split linearly between the two nearest integer
    radii, so the ``float64`` result has no ring artefacts.

    Examples
    --------
    >>> image = np.zeros((5, 5)); image[2, 3] = 4.0
    >>> out = rotational_average(image)
    >>> bool(np.isclose(out[2, 1], out[1, 2])), bool(np.isclose(out[2, 3], out[3, 2]))
    (True, True)
    """
    size = image.shape[-1]
    grid = np.arange(size) - size // 2
    radius = np.hypot(grid[:, None], grid[None, :]).ravel()
    lower = np.floor(radius).astype(np.int64)
    upper_weight = radius - lower
    n_bins = int(lower.max()) + 2
    values = np.asarray(image, dtype=np.float64).ravel()
    totals = (np.bincount(lower, values * (1 - upper_weight), n_bins)
              + np.bincount(lower + 1, values * upper_weight, n_bins))
    counts = np.bincount(lower, 1 - upper_weight, n_bins) + np.bincount(lower + 1, upper_weight, n_bins)
    profile = totals / np.maximum(counts, 1e-12)
    return (profile[lower] * (1 - upper_weight) + profile[lower + 1] * upper_weight).reshape(size, size)


def subpixel_peaks(maps: np.ndarray, search: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Highest point of each map within ``search`` px of pixel ``size // 2``, to a fraction of a pixel.

    A parabola through the peak and its two neighbours along each axis
    gives the sub-pixel position (clipped to one pixel). ``maps`` is
    ``(n, size, size)``, zero shift at ``size // 2``.

    Returns
    -------
    dx, dy : numpy.ndarray
        Peak positions relative to ``size // 2``.
    height : numpy.ndarray
        Map value at the peak pixel.

    Examples
    --------
    >>> grid = np.arange(9) - 4.0
    >>> bump = -((grid[None, :] - 1.25) ** 2 + (grid[:, None] + 0.5) ** 2)
    >>> dx, dy, _ = subpixel_peaks(bump[None], 3)
    >>> float(dx[0]), float(dy[0])
    (1.25, -0.5)
    """
    n, size, _ = maps.shape
    grid = np.arange(size) - size // 2
    inside = grid[:, None] ** 2 + grid[None, :] ** 2 <= search**2
    flat = np.where(inside, maps, -np.inf).reshape(n, -1).argmax(axis=1)
    rows, cols = np.divmod(flat, size)
    index = np.arange(n)
    rows_c, cols_c = np.clip(rows, 1, size - 2), np.clip(cols, 1, size - 2)
    centre = maps[index, rows_c, cols_c]

    def vertex(before, after):
        curvature = before - 2 * centre + after
        # a flat or upward-curved neighbourhood has no vertex to move to
        safe = np.where(curvature < 0, curvature, -1.0)
        return np.clip(np.where(curvature < 0, 0.5 * (before - after) / safe, 0.0), -1, 1)

    dx = cols - size // 2 + vertex(maps[index, rows_c, cols_c - 1], maps[index, rows_c, cols_c + 1])
    dy = rows - size // 2 + vertex(maps[index, rows_c - 1, cols_c], maps[index, rows_c + 1, cols_c])
    return dx, dy, maps[index, rows, cols]


def _cutter(image: np.ndarray, size: int):
    """A function ``(x, y) -> (n, size, size)`` boxes centred on the rounded points, all cut at once.

    The image is padded by its mean, so boxes may cross the edge.
    """
    half = size // 2
    padded = np.pad(image, size, constant_values=float(image.mean()))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    rows, cols = image.shape

    def cut(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        top = np.clip(np.round(y).astype(np.int64) - half, -size, rows) + size
        left = np.clip(np.round(x).astype(np.int64) - half, -size, cols) + size
        return windows[top, left]

    return cut


def recentre_picks(image: np.ndarray, picks: pd.DataFrame, diameter: float,
                   search_fraction: float = SEARCH_FRACTION, iterations: int = ITERATIONS,
                   box_fraction: float = BOX_FRACTION, mask_fraction: float = MASK_FRACTION,
                   low_pass_fraction: float = LOW_PASS_FRACTION) -> pd.DataFrame:
    """Move picks to the centre of the particle in the image.

    Parameters
    ----------
    image : numpy.ndarray
        2-D micrograph, in the frame of ``picks`` (any contrast: the
        reference is built from the image itself).
    picks : pandas.DataFrame
        ``x``, ``y`` in pixels of ``image`` (other columns are kept).
    diameter : float
        Particle diameter in pixels of ``image``.
    search_fraction, box_fraction, mask_fraction, low_pass_fraction : float
        Largest move, box side, reference mask radius and the Gaussian
        low-pass of boxes and reference (0: none), in diameters.
    iterations : int
        Reference-building and search rounds.

    Returns
    -------
    pandas.DataFrame
        A copy with moved ``x``, ``y`` and a ``correlation`` column: the
        correlation peak over the box's and the reference's norms.

    Raises
    ------
    InputError
        If ``diameter``, ``search_fraction`` or ``iterations`` is not positive.

    Examples
    --------
    >>> rows, cols = np.mgrid[:96, :96]
    >>> image = -np.exp(-((cols - 30.0) ** 2 + (rows - 40.0) ** 2) / 18.0)
    >>> image -= np.exp(-((cols - 64.0) ** 2 + (rows - 60.0) ** 2) / 18.0)
    >>> picks = pd.DataFrame({"x": [33.0, 62.0], "y": [38.0, 61.5]})
    >>> recentre_picks(image, picks, 16.0)[["x", "y"]].round(1).values.tolist()
    [[30.0, 40.0], [64.0, 60.0]]
    """
    if diameter <= 0 or search_fraction <= 0 or iterations < 1:
        msg = (f"recentring needs a positive diameter, search fraction and iteration count; got "
               f"diameter={diameter}, search_fraction={search_fraction}, iterations={iterations}")
        raise InputError(msg)
    if picks.empty:
        return picks.assign(correlation=np.zeros(0))
    from scipy import fft

    # an even side with small prime factors: a side of 2 x 41 takes ten times as long to transform
    size = fft.next_fast_len(int(2 * np.ceil(box_fraction * diameter / 2)), real=True)
    size += size % 2
    x, y = picks["x"].to_numpy(dtype=np.float64), picks["y"].to_numpy(dtype=np.float64)
    x0, y0 = np.round(x), np.round(y)
    cut = _cutter(np.asarray(image, dtype=np.float32), size)
    boxes = cut(x0, y0)
    boxes -= boxes.mean(axis=(1, 2), keepdims=True)
    norms = np.sqrt((boxes.astype(np.float64) ** 2).sum(axis=(1, 2)))
    frequency2 = fft.fftfreq(size)[:, None] ** 2 + fft.rfftfreq(size)[None, :] ** 2
    low_pass = np.exp(-2 * (np.pi * low_pass_fraction * diameter) ** 2 * frequency2)
    spectra = fft.rfft2(boxes) * low_pass.astype(np.float32)
    mask = circular_mask(size, mask_fraction * diameter, max(diameter / 8, 1.0)).numpy().astype(np.float64)
    x_now, y_now = x, y
    for _ in range(iterations):
        # boxes re-cut on the current centres (to the pixel: the rotational average blurs
        # the reference by more than the rounding), averaged and symmetrised
        average = rotational_average(cut(x_now, y_now).mean(axis=0))
        reference = fft.irfft2(fft.rfft2(average) * low_pass, s=(size, size))
        # zero mean under the mask: a brighter or darker patch of ice does not attract the peak
        reference = (reference - (reference * mask).sum() / mask.sum()) * mask
        reference_spectrum = np.conj(fft.rfft2(reference)).astype(np.complex64)
        maps = fft.irfft2(spectra * reference_spectrum, s=(size, size))
        dx, dy, height = subpixel_peaks(fft.fftshift(maps, axes=(-2, -1)), search_fraction * diameter)
        x_now, y_now = x0 + dx, y0 + dy
    correlation = height / np.maximum(norms * np.sqrt((reference**2).sum()), 1e-12)
    return picks.assign(x=x_now, y=y_now, correlation=correlation)
