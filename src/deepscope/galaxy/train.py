"""Train a galaxy classifier from a labels table (``file`` + a target column).

The run directory, the fit (through :func:`deepscope.core.trainer.fit`) and
the post-fit tuning of the decision threshold (stored in the checkpoint's
metadata with :func:`deepscope.core.checkpoint.update_checkpoint_meta`), and
the training-only pieces they need: size-balancing loss weights, the
weighted loss, the early-stopping score and the threshold search.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from deepscope.config import TrainConfig, prepare_run_dir
from deepscope.core.checkpoint import BEST_NAME, load_checkpoint, model_from_checkpoint, update_checkpoint_meta
from deepscope.core.distributed import process_info
from deepscope.core.files import check_writable
from deepscope.core.manifest import manifest_from_labels, split_train_val
from deepscope.errors import BatchError
from deepscope.galaxy.classes import class_names_of, encode_labels
from deepscope.galaxy.dataset import CutoutDataset, load_cutouts
from deepscope.galaxy.predictor import GalaxyPredictor

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_CONFIG = TrainConfig(model="barnet", epochs=40, batch_size=64, lr=3e-3, patience=10)
DEFAULT_INPUT_SIZE = 64  # the SDSS cutouts in ../shared/data are 64x64 at 0.3"/px


def size_balancing_weights(sizes: ArrayLike, labels: ArrayLike, n_bins: int = 5,
                           max_weight: float = 4.0) -> np.ndarray:
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


def cross_entropy(outputs: torch.Tensor, targets: dict) -> torch.Tensor:
    """Weighted classification loss on logits (targets: ``label`` and ``weight``)."""
    import torch.nn.functional as F

    losses = F.cross_entropy(outputs, targets["label"], reduction="none")
    return (losses * targets["weight"]).sum() / targets["weight"].sum()


def validation_score(outputs: torch.Tensor, targets: dict) -> float:
    """Early-stopping score: ROC-AUC for two classes, else accuracy."""
    import torch

    probs = torch.softmax(outputs, dim=1).numpy()
    y = targets["label"].numpy()
    if probs.shape[1] == 2 and len(np.unique(y)) == 2:
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, probs[:, 1]))
    return float(np.mean(probs.argmax(1) == y))


def balanced_threshold(y_true: ArrayLike, p_positive: ArrayLike) -> float:
    """Threshold that maximises balanced accuracy on a validation set.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    p_positive : array-like of float

    Returns
    -------
    float
        0.5 when the set has one class or one distinct probability.

    Examples
    --------
    >>> balanced_threshold([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9])
    0.6
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


def train_galaxy(labels_path: str | Path, run_dir: str | Path, target: str = "barred",
                 config: TrainConfig = DEFAULT_CONFIG, input_size: int = DEFAULT_INPUT_SIZE,
                 balance_sizes: bool = True, resume: bool = False, progress: bool = True) -> dict:
    """Train a classifier on the non-test rows of a labels table.

    Validation rows (``split == "val"``, or a stratified random share of the
    training rows) drive early stopping and the decision threshold, which is
    set to maximise balanced accuracy on them. Rows with ``split == "test"``
    are never read.

    Parameters
    ----------
    labels_path : str or Path
        CSV/Parquet/FITS table with ``file`` (relative to the table) and ``target``.
    run_dir : str or Path
        Output run directory (config, checkpoints, history).
    target : str
        Label column, e.g. ``barred`` or ``morphology``.
    config : TrainConfig
    input_size : int
        Side of the network input; cutouts of other sizes are resampled.
    balance_sizes : bool
        For two classes, weight the loss so both classes count equally in
        every apparent-size bin (:func:`size_balancing_weights`).
    resume : bool
        Continue from ``run_dir/last.pt``.
    progress : bool

    Returns
    -------
    dict
        Best validation score and epoch, threshold, class names, sizes.

    Raises
    ------
    ModelError
        If ``config.model`` is not a trainable galaxy network (before any data is read).
    BatchError
        If some training images cannot be read (none is silently dropped).
    """
    from deepscope.core.trainer import fit, predict_dataset
    from deepscope.registry import check_arch

    check_arch(config.model, "galaxy")
    check_writable(run_dir, is_dir=True)
    manifest = manifest_from_labels(labels_path, "file", required=[target])
    train_rows, val_rows = split_train_val(manifest, config.val_fraction, config.seed, stratify=target)
    class_names = class_names_of(manifest[target])
    log.info("%s: %d training and %d validation rows, classes %s", labels_path, len(train_rows),
             len(val_rows), class_names)

    images, sizes, failures = load_cutouts(list(train_rows["path"]) + list(val_rows["path"]), input_size,
                                           progress=progress)
    if failures:
        raise BatchError(failures)
    n_train = len(train_rows)
    labels = encode_labels(list(train_rows[target]) + list(val_rows[target]), class_names)
    weights = None
    if balance_sizes and len(class_names) == 2:
        weights = size_balancing_weights(sizes[:n_train], labels[:n_train])
    train_set = CutoutDataset(images[:n_train], labels[:n_train], weights, augment=True)
    val_set = CutoutDataset(images[n_train:], labels[n_train:])

    model_kwargs = {"n_classes": len(class_names), "input_size": input_size, **config.model_kwargs}
    meta = {"target": target, "class_names": class_names, "input_size": input_size, "threshold": 0.5,
            "labels": str(Path(labels_path).resolve())}
    prepare_run_dir(run_dir, config, extra={"data": str(labels_path), "target": target,
                                            "input_size": input_size})
    result = fit(config.model, model_kwargs, train_set, val_set, cross_entropy, config, run_dir,
                 score_fn=validation_score, meta=meta, resume=resume, progress=progress)

    best_path = Path(run_dir) / BEST_NAME
    classifier = GalaxyPredictor(model_from_checkpoint(load_checkpoint(best_path)), meta)
    threshold = 0.5
    if classifier.binary:
        outputs, targets = predict_dataset(classifier.model, val_set, 256, "cpu")
        import torch

        threshold = balanced_threshold(targets["label"].numpy(), torch.softmax(outputs, 1)[:, 1].numpy())
        if process_info().is_primary:  # under torchrun only rank 0 writes
            update_checkpoint_meta(best_path, threshold=threshold)
    summary = {"best_val_score": result.best_score, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "threshold": threshold, "class_names": class_names,
               "n_train": n_train, "n_val": len(val_rows), **dataclasses.asdict(config)}
    log.info("best validation score %.4f at epoch %d; threshold %.3f", result.best_score,
             result.best_epoch, threshold)
    return summary
