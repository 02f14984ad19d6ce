"""Apparent size, the confound of the bar sample: measured, and controlled for.

Barred galaxies of ``sdss_gz2_bars`` look larger than unbarred ones
(DATA.md), so a network can score well by size alone. Training weights the
loss so both classes count equally in every size bin
(:func:`size_balancing_weights`); evaluation also reports a subset with equal
class counts per size bin (:func:`size_matched_indices`), where size says
nothing about the label.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# Pixels brighter than this (of 255, in the mean of g, r, i) count towards a
# galaxy's apparent size; DATA.md measures the size confound with this level.
BRIGHT_LEVEL = 40


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
