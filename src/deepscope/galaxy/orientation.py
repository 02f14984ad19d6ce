"""Orientation: the eight rotations and mirror images of a cutout, and one canonical view among them.

A galaxy has no preferred orientation on the sky, so a bar classifier should
give the same answer for every turn and mirror image of a cutout. A network
trained with rotated copies comes close but not all the way; instead,
:func:`canonical_view_index` picks one fixed member of each cutout's
eight views (:func:`dihedral_view`), chosen by a rule on the view's own
pixels: the eight views of any view are the same eight arrays, so every
rotation and mirror image of a cutout reaches the network as the same pixels,
and its answer cannot change. The rule reads light moments (major axis
within 45 degrees of the rows, in the first quadrant; then the brighter
side), computed in integers, so that it is exact.
"""

from __future__ import annotations

import functools

import numpy as np

from deepscope.galaxy.preprocess import input_to_pixels

# Views 0-3 turn a cutout by 0, 90, 180, 270 degrees (numpy.rot90: counter-clockwise as displayed); 4-7
# mirror it left to right first.
N_VIEWS = 8


def dihedral_view(batch: np.ndarray, view: int) -> np.ndarray:
    """One of the 8 rotations and mirror images of a batch ``(N, C, S, S)`` (or of one ``(C, S, S)`` image).

    Views 0-3 turn it by 0, 90, 180, 270 degrees counter-clockwise; 4-7 mirror it left to right first.

    Examples
    --------
    >>> x = np.arange(4).reshape(1, 1, 2, 2)
    >>> dihedral_view(x, 1)[0, 0].tolist(), dihedral_view(x, 4)[0, 0].tolist()
    ([[1, 3], [0, 2]], [[1, 0], [3, 2]])
    """
    return np.rot90(batch[..., ::-1] if view >= 4 else batch, view % 4, axes=(-2, -1))


@functools.lru_cache(maxsize=8)
def _key_weights(size: int) -> np.ndarray:
    """``(size * size, N_VIEWS * 5)`` integer weights: the canonical rule's five keys of each view, as dot products.

    The keys of view ``g`` of an image ``x`` are ``<f_k, g(x)> = <g^-1(f_k), x>``
    (a view is a permutation of the pixels), so one matrix product gives all
    40. Every weight is an integer and every sum stays below 2**53, so the
    float64 product is exact: the same view gets the same keys whichever
    view it was computed from.
    """
    # Doubled coordinates about the centre: odd integers, symmetric under every view.
    u = np.arange(size) * 2 - (size - 1)
    cols, rows = np.meshgrid(u, u)
    # A round window keeps a star at the edge from deciding the axis (any function of the radius is symmetric).
    window = np.rint(64 * np.exp(-(cols**2 + rows**2) / (2 * (size / 2) ** 2)))
    rng = np.random.default_rng(20241)
    keys = [
        window * (cols**2 - rows**2),  # major axis along the rows rather than the columns
        window * cols * rows,  # ... and in the first quadrant
        window * cols,  # then the brighter side: right
        window * -rows,  # ... and up
        rng.integers(-64, 65, (size, size)),  # a generic last word, for symmetric light
    ]
    inverse = [_inverse_view(view) for view in range(N_VIEWS)]
    columns = [dihedral_view(key, inverse[view]).ravel() for view in range(N_VIEWS) for key in keys]
    return np.stack(columns, axis=1).astype(np.float64)


def _inverse_view(view: int) -> int:
    """The view that undoes ``view``."""
    probe = np.arange(9).reshape(3, 3)
    turned = dihedral_view(probe, view)
    return next(v for v in range(N_VIEWS) if np.array_equal(dihedral_view(turned, v), probe))


def canonical_view_index(batch: np.ndarray) -> np.ndarray:
    """Which of the 8 views (:func:`dihedral_view`) of each image is its canonical one.

    Parameters
    ----------
    batch : numpy.ndarray
        ``(N, C, S, S)``: ``uint8`` pixels, or floats in [0, 1] (read as
        pixels rounded to 1/255, so a float copy of a ``uint8`` cutout gets the same view).

    Returns
    -------
    numpy.ndarray of int, shape (N,)
        For every view ``g`` of an image, ``dihedral_view(g(x), index)``
        is the same array (exactly, barring images whose keys tie, which
        takes a symmetric image).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 255, (1, 3, 8, 8), dtype=np.uint8)
    >>> views = [dihedral_view(x, v) for v in range(8)]
    >>> canonical = [apply_views(v, canonical_view_index(v)) for v in views]
    >>> all(np.array_equal(canonical[0], c) for c in canonical)
    True
    """
    # Binned light turns with the views, so its keys are as exact, at a quarter of the work.
    light = _binned_light(batch)
    n, size = len(light), light.shape[-1]
    keys = (light.reshape(n, -1).astype(np.float64) @ _key_weights(size)).reshape(n, N_VIEWS, -1)
    candidates = np.ones((n, N_VIEWS), bool)
    # Lexicographic maximum over the keys: keep the views tied at the best value of each key in turn.
    for k in range(keys.shape[2]):
        values = np.where(candidates, keys[:, :, k], -np.inf)
        candidates &= values == values.max(axis=1, keepdims=True)
    return candidates.argmax(axis=1)


def apply_views(batch: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Each image of a batch ``(N, C, S, S)`` in its own view (:func:`dihedral_view`): ``index`` holds one per image.

    Examples
    --------
    >>> x = np.arange(8).reshape(2, 1, 2, 2)
    >>> apply_views(x, np.array([0, 1]))[:, 0].tolist()
    [[[0, 1], [2, 3]], [[5, 7], [4, 6]]]
    """
    out = batch.copy()
    for view in range(1, N_VIEWS):  # view 0 is the image as given
        chosen = np.flatnonzero(index == view)
        if len(chosen):
            out[chosen] = dihedral_view(batch[chosen], view)
    return out


def _binned_light(batch: np.ndarray) -> np.ndarray:
    """The light of each image of a batch ``(N, C, S, S)``: its channels summed, in 2 x 2 bins where ``S`` is even.

    Exact integers (``uint16``; floats in [0, 1] are read as 8-bit pixels), so
    that sums over them do not depend on their order; a bin turns with the image.
    """
    light = input_to_pixels(batch).sum(axis=1, dtype=np.uint16)
    if light.shape[-1] % 2:
        return light
    # Slices rather than reshape-and-sum: several times faster on uint16.
    return light[:, 0::2, 0::2] + light[:, 1::2, 0::2] + light[:, 0::2, 1::2] + light[:, 1::2, 1::2]
