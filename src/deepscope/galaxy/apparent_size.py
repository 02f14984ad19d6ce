"""Apparent size, the confound of the bar sample: measured, and controlled for.

Barred galaxies of ``sdss_gz2_bars`` look larger than unbarred ones
(DATA.md), so a network can score well by size alone. Training weights the
loss so both classes count equally in every size bin
(:func:`size_balancing_weights`); evaluation also reports a subset with equal
class counts per size bin (:func:`size_matched_indices`), where size says
nothing about the label. A model records the range of apparent sizes it was
trained on (:func:`trained_size_range`), and predictions flag galaxies
outside it (:func:`scale_flags`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from deepscope.galaxy.preprocess import input_to_pixels

# Pixels brighter than this (of 255, in the mean of g, r, i) count towards a
# galaxy's apparent size; DATA.md measures the size confound with this level.
BRIGHT_LEVEL = 40
# A model's trained size range: these percentiles of its training cutouts' bright fractions.
SIZE_PERCENTILES = (1.0, 99.0)


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
    >>> rgb = np.zeros((8, 8, 3), np.uint8)
    >>> rgb[2:4, 2:5] = 200
    >>> int(bright_pixel_count(rgb))
    6
    """
    return (rgb.mean(axis=-1) > level).sum(axis=(-2, -1))


def size_bins(sizes: ArrayLike, n_bins: int) -> np.ndarray:
    """The quantile bin of each size, ``0 .. n_bins - 1`` (fewer where sizes repeat).

    Examples
    --------
    >>> size_bins([1, 2, 3, 4], 2).tolist()
    [0, 0, 1, 1]
    """
    sizes = np.asarray(sizes, float)
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, n_bins + 1)))
    return np.clip(np.searchsorted(edges, sizes, side="right") - 1, 0, max(len(edges) - 2, 0))


def size_balancing_weights(sizes: ArrayLike, labels: ArrayLike, n_bins: int = 5,
                           max_weight: float = 4.0) -> np.ndarray:
    """Loss weights that give both classes equal weight in every size quantile bin.

    Parameters
    ----------
    sizes : array-like
        Apparent sizes (:func:`bright_pixel_count`).
    labels : array-like of int
    n_bins : int
    max_weight : float
        Cap on a class's factor in a bin (before normalising): a bin with
        very few members of one class would otherwise make the gradients noisy.

    Returns
    -------
    numpy.ndarray of float32
        Mean 1.

    Examples
    --------
    >>> size_balancing_weights([1, 2, 3, 4], [0, 1, 1, 1], n_bins=1).tolist()
    [2.0, 0.6666666865348816, 0.6666666865348816, 0.6666666865348816]
    """
    labels = np.asarray(labels)
    bins = size_bins(sizes, n_bins)
    weights = np.zeros(len(labels))
    for b in np.unique(bins):
        in_bin = bins == b
        for c in np.unique(labels[in_bin]):
            members = in_bin & (labels == c)
            weights[members] = min(in_bin.sum() / (2.0 * members.sum()), max_weight)
    return (weights / weights.mean()).astype(np.float32)


def size_matched_indices(sizes: ArrayLike, labels: ArrayLike, n_bins: int = 10, seed: int = 0) -> np.ndarray:
    """Indices of a subset with equal class counts in every size quantile bin.

    Parameters
    ----------
    sizes : array-like
        Apparent size of each galaxy (:func:`bright_pixel_count`).
    labels : array-like of {0, 1}
    n_bins : int
        Number of quantile bins of ``sizes``.
    seed : int
        Seed of the random subsampling of the majority class in each bin.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices into ``sizes``.

    Examples
    --------
    >>> size_matched_indices([1, 2, 3, 4], [0, 0, 1, 1], n_bins=1).tolist()
    [0, 1, 2, 3]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    bins = size_bins(sizes, n_bins)
    keep = []
    for b in np.unique(bins):
        members = [np.flatnonzero((bins == b) & (labels == c)) for c in (0, 1)]
        n = min(len(m) for m in members)
        keep += [rng.choice(m, n, replace=False) for m in members]
    return np.sort(np.concatenate(keep)) if keep else np.array([], int)


def bright_fraction(batch: np.ndarray, level: float = BRIGHT_LEVEL) -> np.ndarray:
    """Apparent size of each cutout of a batch ``(N, C, S, S)``: the share of its pixels brighter than ``level``.

    :func:`bright_pixel_count` over the pixel count, so that it reads the same
    at any input size. ``uint8`` pixels, or floats in [0, 1] (read as 8-bit
    pixels, so a float copy of a ``uint8`` batch gives the same shares).

    Examples
    --------
    >>> x = np.zeros((1, 3, 4, 4), np.uint8)
    >>> x[:, :, :2, :2] = 200
    >>> bright_fraction(x).tolist(), bright_fraction(x / np.float32(255)).tolist()
    ([0.25], [0.25])
    """
    batch = input_to_pixels(batch)
    # The sum of the bands against 3 x level: the mean's test, in integers.
    light = batch.sum(axis=1, dtype=np.uint16).reshape(len(batch), -1)
    return np.count_nonzero(light > 3 * level, axis=1) / light.shape[1]


def trained_size_range(fractions: ArrayLike) -> dict:
    """The range of apparent sizes a model was trained on, as its ``meta["size_range"]`` records it.

    Parameters
    ----------
    fractions : array-like of float
        :func:`bright_fraction` of the training cutouts.

    Returns
    -------
    dict
        ``measure`` (``bright_fraction``), ``low`` and ``high`` (the
        :data:`SIZE_PERCENTILES` of ``fractions``) and ``percentiles``.

    Examples
    --------
    >>> trained_size_range(np.linspace(0, 1, 101))
    {'measure': 'bright_fraction', 'low': 0.01, 'high': 0.99, 'percentiles': [1.0, 99.0]}
    """
    low, high = np.percentile(np.asarray(fractions, float), SIZE_PERCENTILES)
    return {"measure": "bright_fraction", "low": round(float(low), 6), "high": round(float(high), 6),
            "percentiles": list(SIZE_PERCENTILES)}


def scale_flags(fractions: ArrayLike, size_range: dict) -> list[str]:
    """``small``, ``large`` or empty: where apparent sizes lie against a model's trained range.

    Parameters
    ----------
    fractions : array-like of float
        :func:`bright_fraction` of the cutouts, at the model's input size.
    size_range : dict
        The model's ``meta["size_range"]`` (:func:`trained_size_range`).

    Examples
    --------
    >>> scale_flags([0.05, 0.3, 1.0], {"measure": "bright_fraction", "low": 0.1, "high": 0.9})
    ['small', '', 'large']
    """
    fractions = np.asarray(fractions, float)
    low, high = size_range["low"], size_range["high"]
    return ["small" if f < low else "large" if f > high else "" for f in fractions]
