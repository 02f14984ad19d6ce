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
    """In-memory cutouts with labels and random dihedral augmentation.

    A bar has no preferred orientation, so each training sample is rotated
    by a multiple of 90 degrees and possibly mirrored (the eight symmetries
    of the square: exact, no interpolation).

    Parameters
    ----------
    images : numpy.ndarray
        ``float32`` array ``(N, 3, S, S)`` from :func:`to_model_input`.
    labels : numpy.ndarray of int64
    augment : bool
    """

    def __init__(self, images, labels, augment=False):
        import torch

        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.augment = augment

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        import torch

        image = self.images[index]
        if self.augment:
            k = int(torch.randint(4, ()))
            image = torch.rot90(image, k, dims=(1, 2))
            if torch.rand(()) < 0.5:
                image = torch.flip(image, dims=(2,))
        return image, self.labels[index]


def cross_entropy(outputs, targets):
    """Classification loss on logits."""
    import torch.nn.functional as F

    return F.cross_entropy(outputs, targets)


def validation_score(outputs, targets):
    """Early-stopping score: ROC-AUC for two classes, else accuracy."""
    import torch

    probs = torch.softmax(outputs, dim=1).numpy()
    y = targets.numpy()
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
