"""The network on a whole micrograph -> probability maps -> picks.

Picks are the local maxima of the (lightly blurred) particle probability
map, thinned by non-maximum suppression at a fraction of the particle
diameter and scored by their probability; picks that the region head puts
on ice or carbon are dropped. All in the working-scale frame.
"""

import numpy as np
import pandas as pd

from deepscope.cryoem.io import REGION_CLASSES
from deepscope.errors import InputError

# regions on which no particle may be picked
EXCLUDED_REGIONS = ("ice", "carbon")


def predict_maps(model, image: np.ndarray, target: str, augment: int = 1,
                 run_with=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Run a picking network on a whole micrograph at working scale.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode, on any device (maps come back on the CPU).
    image : numpy.ndarray
        Normalised 2-D image.
    target : {"disks", "regions", "joint"}
        What the model's output channels mean.
    augment : int
        Test-time views: the maps are averaged over the first ``augment`` of
        the 8 rotations/flips of the image (particles have no preferred
        orientation, so each view is an equally valid prediction).
    run_with : callable, optional
        Runs the padded image instead of ``model`` (the ONNX export of the
        same weights); ``model`` still says how much to pad.

    Returns
    -------
    particle : numpy.ndarray
        Particle probability map, same shape as ``image``.
    regions : numpy.ndarray or None
        ``(4, rows, cols)`` region probabilities, None for ``disks``.

    Raises
    ------
    InputError
        If ``augment`` is not 1, 2, 4 or 8.
    """
    if augment not in (1, 2, 4, 8):
        msg = f"augment must be 1, 2, 4 or 8 views, got {augment}"
        raise InputError(msg)
    particle, regions = [], []
    for view in range(augment):
        turns, flip = view % 4, view >= 4
        viewed = np.rot90(image[:, ::-1] if flip else image, turns)
        p, r = _predict_view(model, np.ascontiguousarray(viewed), target, run_with or model)
        p = np.rot90(p, -turns)
        r = None if r is None else np.rot90(r, -turns, axes=(1, 2))
        if flip:
            p, r = p[:, ::-1], (None if r is None else r[:, :, ::-1])
        particle.append(p)
        regions.append(r)
    mean_regions = None if regions[0] is None else np.mean(regions, axis=0)
    return np.ascontiguousarray(np.mean(particle, axis=0)), mean_regions


def _predict_view(model, image, target, run_with):
    import torch
    from torch.nn import functional as F

    depth = len(model.down) - 1
    multiple = 2**depth
    rows, cols = image.shape
    pad_r, pad_c = (-rows) % multiple, (-cols) % multiple
    device = next(model.parameters()).device
    x = torch.from_numpy(np.pad(image, ((0, pad_r), (0, pad_c)), mode="reflect"))[None, None].to(device)
    with torch.inference_mode():
        out = run_with(x)[0, :, :rows, :cols]
        if target == "disks":
            return torch.sigmoid(out[0]).cpu().numpy(), None
        if target == "regions":
            regions = F.softmax(out, dim=0).cpu()
            return regions[REGION_CLASSES.index("protein")].numpy(), regions.numpy()
        return torch.sigmoid(out[0]).cpu().numpy(), F.softmax(out[1:], dim=0).cpu().numpy()


def find_picks(particle: np.ndarray, regions: np.ndarray | None, diameter: float, threshold: float,
               nms_fraction: float = 0.6, edge_fraction: float = 0.0) -> pd.DataFrame:
    """Turn a particle probability map into scored picks.

    Parameters
    ----------
    particle : numpy.ndarray
        Probability map.
    regions : numpy.ndarray or None
        ``(4, rows, cols)`` region probabilities; picks whose most likely
        region is ice or carbon are dropped.
    diameter : float
        Particle diameter in pixels of the map.
    threshold : float
        Minimum probability at a pick.
    nms_fraction : float
        Picks closer than ``nms_fraction * diameter`` to a better pick are
        suppressed (below 1: touching particles' centres can be closer than a diameter).
    edge_fraction : float
        Picks closer than ``edge_fraction * diameter`` to the image edge are
        dropped (a particle cut by the edge cannot be extracted).

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y``, ``score``, best first (ties in row-major order), in
        the map's pixel frame.

    Examples
    --------
    >>> m = np.zeros((32, 32)); m[10, 12] = 0.9; m[11, 12] = 0.8; m[25, 5] = 0.7
    >>> find_picks(m, None, 6.0, 0.5)[["x", "y"]].values.tolist()
    [[12.0, 10.0], [5.0, 25.0]]
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree
    from skimage.feature import peak_local_max

    # a light blur turns the mask's plateau into one peak per particle
    smooth = ndimage.gaussian_filter(particle, max(diameter / 10, 0.5))
    # 3x3 maxima away from the edge margin; the threshold applies to the
    # unblurred probability, so it is not peak_local_max's threshold_abs
    margin = int(np.ceil(edge_fraction * diameter))
    peaks = peak_local_max(smooth, min_distance=1, threshold_abs=-np.inf,
                           exclude_border=margin if margin > 0 else False)
    rows, cols = peaks[:, 0], peaks[:, 1]
    scores = particle[rows, cols]
    kept = scores >= threshold
    rows, cols, scores = rows[kept], cols[kept], scores[kept]
    if regions is not None and len(rows):
        region = regions[:, rows, cols].argmax(axis=0)
        allowed = ~np.isin(region, [REGION_CLASSES.index(name) for name in EXCLUDED_REGIONS])
        rows, cols, scores = rows[allowed], cols[allowed], scores[allowed]
    order = np.lexsort((cols, rows, -scores))
    rows, cols, scores = rows[order], cols[order], scores[order]
    points = np.column_stack([cols, rows]).astype(np.float64)
    keep = np.ones(len(points), dtype=bool)
    if len(points):
        tree = cKDTree(points)
        for i, neighbours in enumerate(tree.query_ball_point(points, nms_fraction * diameter)):
            if keep[i]:
                for j in neighbours:
                    if j > i:
                        keep[j] = False
    return pd.DataFrame({"x": points[keep, 0], "y": points[keep, 1], "score": scores[keep].astype(np.float64)})


# A blob pick's Laplacian-of-Gaussian response lies at least this many robust standard deviations
# above the image's median response: a conventional 2-sigma cut (3 keeps under a third of the
# particles of the ribosome and simulated-ring micrographs, docs/cryoem.md "Adapting without labels").
BLOB_Z = 2.0


def blob_picks(image: np.ndarray, diameter: float, z: float = BLOB_Z, nms_fraction: float = 0.5,
               edge_fraction: float = 1.0) -> pd.DataFrame:
    """Dark blobs the size of a particle, without a network: a Laplacian-of-Gaussian detector.

    Parameters
    ----------
    image : numpy.ndarray
        Normalised image, particles dark (as
        :func:`~deepscope.cryoem.preprocess.load_for_picking` gives it).
    diameter : float
        Particle diameter in pixels of ``image``.
    z : float
        Minimum response, in robust standard deviations (1.4826 x the
        median absolute deviation) above the median response.
    nms_fraction, edge_fraction : float
        See :func:`find_picks`.

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y``, ``score`` (the response in robust standard deviations), best first.

    Examples
    --------
    >>> rows, cols = np.mgrid[:64, :64]
    >>> image = np.random.default_rng(0).normal(0, 0.1, (64, 64))
    >>> image -= np.exp(-((cols - 20) ** 2 + (rows - 40) ** 2) / 18.0)
    >>> picks = blob_picks(image, 10.0)  # the blob first; noise peaks pass a 2-sigma cut too
    >>> picks.loc[0, ["x", "y"]].tolist(), bool(picks.loc[0, "score"] > 5 * picks.loc[1, "score"])
    ([20.0, 40.0], True)
    """
    from scipy import ndimage

    # a dark particle has a positive Laplacian at its centre; this sigma puts the
    # filter's zero crossing at 0.4 d, near the edge of the particle's core
    response = ndimage.gaussian_laplace(image.astype(np.float64), 0.8 * diameter / (2 * np.sqrt(2)))
    median = np.median(response)
    spread = 1.4826 * np.median(np.abs(response - median)) or 1.0
    return find_picks((response - median) / spread, None, diameter, z, nms_fraction, edge_fraction)


def refine_centres(particle: np.ndarray, picks: pd.DataFrame, radius: float) -> pd.DataFrame:
    """Move each pick to the probability-weighted centroid of the map around it.

    :func:`find_picks` returns pixels of the working-scale map, a grid as
    coarse as the binning; the centroid of the probability within ``radius``
    map pixels of the peak (windows clipped at the edge) takes coordinates
    off the grid. About a third of the particle diameter keeps a neighbour's
    probability out. Other columns of ``picks`` are kept.

    Examples
    --------
    >>> m = np.zeros((9, 9)); m[4, 4] = 1.0; m[4, 5] = 1.0
    >>> refine_centres(m, pd.DataFrame({"x": [4.0], "y": [4.0]}), 2.0)[["x", "y"]].values.tolist()
    [[4.5, 4.0]]
    """
    if picks.empty:
        return picks.copy()
    reach = int(np.ceil(radius))
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    inside = dx**2 + dy**2 <= radius**2
    dy, dx = dy[inside], dx[inside]
    rows = np.clip(np.rint(picks["y"].to_numpy()).astype(int)[:, None] + dy, 0, particle.shape[0] - 1)
    cols = np.clip(np.rint(picks["x"].to_numpy()).astype(int)[:, None] + dx, 0, particle.shape[1] - 1)
    weights = np.asarray(particle, dtype=np.float64)[rows, cols]
    total = weights.sum(axis=1)
    # a window of zeros (only in a degenerate map) keeps the peak as it was
    safe = np.where(total > 0, total, 1.0)
    x = np.where(total > 0, (weights * cols).sum(axis=1) / safe, picks["x"].to_numpy())
    y = np.where(total > 0, (weights * rows).sum(axis=1) / safe, picks["y"].to_numpy())
    return picks.assign(x=x, y=y)
