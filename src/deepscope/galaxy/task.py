"""Galaxy classification task: targets, augmentation, loss, predictions, size matching.

A task is one categorical column of a labels table (``barred`` with values
0/1, or ``morphology`` with ``elliptical``/``spiral``); its classes are
sorted so that the positive class of a binary task (``1``, ``spiral``) is
class index 1.
"""

import numpy as np

# Pixels brighter than this (of 255, in the mean of g, r, i) count towards a
# galaxy's apparent size; DATA.md measures the size confound with this level.
BRIGHT_LEVEL = 40


def class_names_of(values):
    """Sorted class names of a label column, as strings.

    Parameters
    ----------
    values : array-like

    Returns
    -------
    list of str

    Examples
    --------
    >>> class_names_of([1, 0, 1])
    ['0', '1']
    """
    return sorted({str(v) for v in values})


def encode_labels(values, class_names):
    """Class indices of label values.

    Parameters
    ----------
    values : array-like
    class_names : list of str

    Returns
    -------
    numpy.ndarray of int64

    Raises
    ------
    deepscope.errors.InputError
        If a value is not one of ``class_names``.
    """
    from deepscope.errors import InputError

    lookup = {name: i for i, name in enumerate(class_names)}
    try:
        return np.array([lookup[str(v)] for v in values], dtype=np.int64)
    except KeyError as exc:
        msg = f"label {exc.args[0]!r} is not one of the model's classes {class_names}"
        raise InputError(msg) from None


def to_model_input(rgb, size):
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
    """
    if rgb.shape[:2] != (size, size):
        from PIL import Image

        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


def bright_pixel_count(rgb, level=BRIGHT_LEVEL):
    """Apparent size of a galaxy: pixels brighter than ``level`` in the mean of the bands.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` array ``(H, W, 3)`` or a stack ``(N, H, W, 3)``.
    level : float

    Returns
    -------
    int or numpy.ndarray
    """
    return (rgb.mean(axis=-1) > level).sum(axis=(-2, -1))


def size_matched_indices(sizes, labels, n_bins=10, seed=0):
    """Indices of a subset with equal class counts in every size quantile bin.

    The classes of the bar sample differ in apparent size (DATA.md); on this
    subset size alone carries no information about the label.

    Parameters
    ----------
    sizes : array-like
        Apparent size of each galaxy (e.g. :func:`bright_pixel_count`).
    labels : array-like of {0, 1}
    n_bins : int
        Number of quantile bins of ``sizes``.
    seed : int
        Seed of the random subsampling of the majority class in each bin.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices into ``sizes``.
    """
    sizes, labels = np.asarray(sizes, float), np.asarray(labels)
    rng = np.random.default_rng(seed)
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, sizes, side="right") - 1, 0, len(edges) - 2)
    keep = []
    for b in np.unique(bins):
        members = [np.flatnonzero((bins == b) & (labels == c)) for c in (0, 1)]
        n = min(len(m) for m in members)
        keep += [rng.choice(m, n, replace=False) for m in members]
    return np.sort(np.concatenate(keep)) if keep else np.array([], int)


class CutoutDataset:
    """In-memory cutouts with labels, sample weights and random augmentation.

    A bar has no preferred orientation, so each training sample is rotated
    by a random angle and possibly mirrored; it is also zoomed by a random
    factor, so that apparent size (a confound of the bar sample, DATA.md)
    is a weaker cue than morphology. Targets are dicts with the class index
    (``label``) and a loss ``weight``.

    Parameters
    ----------
    images : numpy.ndarray
        ``float32`` array ``(N, 3, S, S)`` from :func:`to_model_input`.
    labels : numpy.ndarray of int64
    weights : numpy.ndarray of float32, optional
        Per-sample loss weights (default 1).
    augment : bool
    max_zoom : float
        Zoom factors are drawn log-uniformly in ``[1 / max_zoom, max_zoom]``.
    """

    def __init__(self, images, labels, weights=None, augment=False, max_zoom=1.1):
        import torch

        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.weights = torch.ones(len(labels)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.augment = augment
        self.max_zoom = max_zoom

    def __len__(self):
        return len(self.labels)

    def _transform(self, image):
        import math

        import torch
        import torch.nn.functional as F

        angle = float(torch.rand(()) * 2 * math.pi)
        zoom = math.exp(float(torch.rand(()) * 2 - 1) * math.log(self.max_zoom))
        mirror = -1.0 if torch.rand(()) < 0.5 else 1.0
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([[cos * mirror, -sin, 0.0], [sin * mirror, cos, 0.0]])
        grid = F.affine_grid(theta[None], [1, *image.shape], align_corners=False)
        # Zeros outside the cutout: empty sky, as the fixed scaling expects.
        return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    def __getitem__(self, index):
        image = self.images[index]
        if self.augment:
            image = self._transform(image)
        return image, {"label": self.labels[index], "weight": self.weights[index]}


def size_balancing_weights(sizes, labels, n_bins=5, max_weight=4.0):
    """Loss weights that give both classes equal weight in every size quantile bin.

    Training with them removes the size shortcut from the loss: within a
    size bin, a barred and an unbarred galaxy count the same in total.

    Parameters
    ----------
    sizes : array-like
        Apparent sizes (:func:`bright_pixel_count`).
    labels : array-like of int
    n_bins : int
    max_weight : float
        Cap on a sample's weight (before normalising): a bin with very few
        members of one class would otherwise make the gradients noisy.

    Returns
    -------
    numpy.ndarray of float32
        Mean 1.
    """
    sizes, labels = np.asarray(sizes, float), np.asarray(labels)
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, sizes, side="right") - 1, 0, len(edges) - 2)
    weights = np.zeros(len(labels))
    for b in np.unique(bins):
        in_bin = bins == b
        for c in np.unique(labels[in_bin]):
            members = in_bin & (labels == c)
            weights[members] = min(in_bin.sum() / (2.0 * members.sum()), max_weight)
    return (weights / weights.mean()).astype(np.float32)


def cross_entropy(outputs, targets):
    """Weighted classification loss on logits (targets: ``label`` and ``weight``)."""
    import torch.nn.functional as F

    losses = F.cross_entropy(outputs, targets["label"], reduction="none")
    return (losses * targets["weight"]).sum() / targets["weight"].sum()


def validation_score(outputs, targets):
    """Early-stopping score: ROC-AUC for two classes, else accuracy."""
    import torch

    probs = torch.softmax(outputs, dim=1).numpy()
    y = targets["label"].numpy()
    if probs.shape[1] == 2 and len(np.unique(y)) == 2:
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, probs[:, 1]))
    return float(np.mean(probs.argmax(1) == y))


def balanced_threshold(y_true, p_positive):
    """Threshold that maximises balanced accuracy on a validation set.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    p_positive : array-like of float

    Returns
    -------
    float
    """
    y_true, p_positive = np.asarray(y_true), np.asarray(p_positive)
    candidates = np.unique(np.round(p_positive, 3))
    if len(np.unique(y_true)) < 2 or len(candidates) < 2:
        return 0.5
    scores = [
        0.5 * (np.mean(p_positive[y_true == 1] >= t) + np.mean(p_positive[y_true == 0] < t))
        for t in candidates
    ]
    return float(candidates[int(np.argmax(scores))])
