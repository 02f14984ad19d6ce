"""Train a galaxy classifier from a labels table (``file`` + a target column).

:func:`train_galaxy` reads and splits the labelled cutouts
(:func:`read_training_data`), weights the loss against the size confound
(:func:`~deepscope.galaxy.apparent_size.size_balancing_weights`), fits through
:func:`deepscope.core.trainer.fit` and tunes the decision threshold on the
validation rows (:func:`fit_galaxy`), which is stored with the field
convention in the checkpoint's metadata. A rerun into the same run directory
resumes its run, or refuses (:func:`deepscope.core.trainer.start_run`).
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
from deepscope.galaxy.apparent_size import bright_fraction, size_balancing_weights, trained_size_range
from deepscope.galaxy.classes import class_names_of, encode_labels
from deepscope.galaxy.dataset import DEFAULT_ZOOM_RANGE, CutoutDataset, load_cutouts
from deepscope.galaxy.field import SDSS_CUTOUT_FIELD, field_of_labels
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.galaxy.preprocess import input_to_pixels
from deepscope.galaxy.zoom import canonical_zooms, rescale_cutouts, zoom_cutouts

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    import torch

log = logging.getLogger(__name__)

DEFAULT_CONFIG = TrainConfig(model="barnet", epochs=40, batch_size=64, lr=3e-3, patience=10)
DEFAULT_INPUT_SIZE = 64  # the SDSS cutouts in ../shared/data are 64x64 at 0.3"/px


def cross_entropy(outputs: torch.Tensor, targets: dict) -> torch.Tensor:
    """Classification loss on logits, weighted by ``targets["weight"]`` against ``targets["label"]``."""
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
    """Threshold that maximises balanced accuracy on a validation set; 0.5 for one class or one probability.

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


@dataclasses.dataclass
class TrainingData:
    """The labelled cutouts of a run, read and split (see :func:`read_training_data`)."""

    labels_path: Path
    target: str
    class_names: list[str]
    input_size: int
    field: dict  # the field convention the cutouts were cut with (:mod:`deepscope.galaxy.field`)
    train_rows: pd.DataFrame
    train_images: np.ndarray  # float32 (N, 3, S, S)
    train_labels: np.ndarray  # class indices
    train_sizes: np.ndarray  # apparent sizes (bright-pixel counts)
    val_set: CutoutDataset


def read_training_data(labels_path: str | Path, run_dir: str | Path, target: str = "barred",
                       config: TrainConfig = DEFAULT_CONFIG, input_size: int = DEFAULT_INPUT_SIZE,
                       field: dict | None = None, progress: bool = True) -> TrainingData:
    """Split the non-test rows of a labels table and read their cutouts.

    Validation rows are ``split == "val"``, or a stratified random share of
    the training rows; rows with ``split == "test"`` are never read. The
    run directory is checked for writing only once the labels passed, so a
    refused run leaves nothing behind.

    Parameters
    ----------
    labels_path : str or Path
        CSV/Parquet/FITS table with ``file`` (relative to the table) and ``target`` (``barred``, ``morphology`` ...).
    run_dir : str or Path
    target : str
    config : TrainConfig
    input_size : int
        Side of the network input; cutouts of other sizes are resampled.
    field : dict, optional
        The cutouts' field convention; by default the table's ``field_arcsec``
        column, else :data:`~deepscope.galaxy.field.SDSS_CUTOUT_FIELD`.
    progress : bool

    Raises
    ------
    ModelError
        If ``config.model`` is not a trainable galaxy network.
    InputError
        If the table lacks its columns, or its ``field_arcsec`` varies and no ``field`` is given.
    BatchError
        If some cutouts cannot be read (none is silently dropped).
    """
    from deepscope.registry import check_arch

    check_arch(config.model, "galaxy")
    manifest = manifest_from_labels(labels_path, "file", required=[target])
    train_rows, val_rows = split_train_val(manifest, config.val_fraction, config.seed, stratify=target)
    class_names = class_names_of(manifest[target])
    field = field or field_of_labels(manifest, str(labels_path), input_size) or {**SDSS_CUTOUT_FIELD,
                                                                                 "pixels": input_size}
    log.info("%s: %d training and %d validation rows, classes %s", labels_path, len(train_rows),
             len(val_rows), class_names)
    check_writable(run_dir, is_dir=True)
    images, sizes, failures = load_cutouts(list(train_rows["path"]) + list(val_rows["path"]), input_size,
                                           progress=progress)
    if failures:
        raise BatchError(failures)
    n_train = len(train_rows)
    labels = encode_labels(list(train_rows[target]) + list(val_rows[target]), class_names)
    return TrainingData(Path(labels_path), target, class_names, input_size, field, train_rows, images[:n_train],
                        labels[:n_train], sizes[:n_train], CutoutDataset(images[n_train:], labels[n_train:]))


def zoomed_size_range(images: np.ndarray, zoom_range: tuple[float, float]) -> dict:
    """The range of apparent sizes training showed: the cutouts as cut and at both ends of their zooms.

    Parameters
    ----------
    images : numpy.ndarray
        Training cutouts, ``float32 (N, 3, S, S)`` in [0, 1].
    zoom_range : tuple of float
        Smallest and largest zoom drawn in training.

    Returns
    -------
    dict
        :func:`~deepscope.galaxy.apparent_size.trained_size_range` of the
        bright fractions of all three sets.
    """
    fractions = [bright_fraction(images)] + [bright_fraction(zoom_cutouts(images, z)) for z in zoom_range if z != 1]
    return trained_size_range(np.concatenate(fractions))


def to_canonical_scale(data: TrainingData, zoom_range: tuple[float, float]) -> tuple[TrainingData, dict]:
    """Training and validation cutouts brought to one apparent size, and the scale that did it.

    The target is the training cutouts' median bright fraction; each cutout
    is zoomed to it (:func:`~deepscope.galaxy.zoom.canonical_zooms`, clipped to
    ``zoom_range``) as ``galaxy predict`` zooms it (:func:`~deepscope.galaxy.zoom.rescale_cutouts`).
    The apparent sizes as cut (``train_sizes``) stay, so the loss still
    balances the classes by the size the galaxies were cut at.

    Returns
    -------
    data : TrainingData
    scale : dict
        ``bright_fraction`` (the target) and ``zoom_range``: the model's ``meta["canonical_scale"]``.
    """
    def rescaled(images):
        pixels = input_to_pixels(images)
        return rescale_cutouts(pixels, canonical_zooms(bright_fraction(pixels), scale)) / np.float32(255)

    scale = {"bright_fraction": round(float(np.median(bright_fraction(data.train_images))), 6),
             "zoom_range": [float(z) for z in zoom_range]}
    val_set = CutoutDataset(rescaled(data.val_set.images.numpy()), data.val_set.labels.numpy())
    return dataclasses.replace(data, train_images=rescaled(data.train_images), val_set=val_set), scale


def fit_galaxy(data: TrainingData, train_set, run_dir: str | Path, config: TrainConfig = DEFAULT_CONFIG,
               resume: bool = False, progress: bool = True, loss: Callable = cross_entropy,
               extra: dict | None = None) -> dict:
    """Fit a network on a training set built from ``data`` and tune its decision threshold on the validation rows.

    The threshold (best balanced accuracy, two classes only), the field
    convention, the zooms drawn in training (``train_set.zoom_range``) and
    the range of apparent sizes those zoomed training cutouts show
    (:func:`zoomed_size_range`) go into the best checkpoint's metadata,
    where ``galaxy predict`` reads them. ``loss`` is :func:`deepscope.core.trainer.fit`'s;
    ``extra`` settings are recorded in the run directory's ``config.yaml``;
    a ``canonical_scale`` among them (:func:`to_canonical_scale`) goes into
    the metadata too (its size range is then that of the rescaled cutouts).
    A run directory holding a run with the same settings is resumed (a
    finished one returns its summary, untouched); ``resume`` continues one
    with other settings (:func:`~deepscope.core.trainer.start_run`). Returns
    the best validation score and epoch, threshold, class names, sizes and the config.
    """
    from deepscope.core.trainer import fit, mark_finished, predict_dataset, start_run

    task = {"data": str(data.labels_path), "target": data.target, "input_size": data.input_size,
            "field": data.field, **(extra or {})}
    start = start_run(run_dir, config, task, resume)
    if start.summary is not None:
        return start.summary
    prepare_run_dir(run_dir, config, extra=task)
    model_kwargs = {"n_classes": len(data.class_names), "input_size": data.input_size, **config.model_kwargs}
    # after the finished-run check: the size range zooms every training cutout twice
    meta = {"target": data.target, "class_names": data.class_names, "input_size": data.input_size,
            "threshold": 0.5, "field": data.field, "labels": str(data.labels_path.resolve()),
            "zoom_range": [float(z) for z in train_set.zoom_range],
            "size_range": zoomed_size_range(data.train_images, train_set.zoom_range)}
    if "canonical_scale" in task:
        meta["canonical_scale"] = task["canonical_scale"]
    result = fit(config.model, model_kwargs, train_set, data.val_set, loss, config, run_dir,
                 score_fn=validation_score, meta=meta, resume=start.resume, progress=progress)

    best_path = Path(run_dir) / BEST_NAME
    classifier = GalaxyPredictor(model_from_checkpoint(load_checkpoint(best_path)), meta)
    threshold = 0.5
    if classifier.binary:
        import torch

        outputs, targets = predict_dataset(classifier.model, data.val_set, 256, "cpu")
        threshold = balanced_threshold(targets["label"].numpy(), torch.softmax(outputs, 1)[:, 1].numpy())
        if process_info().is_primary:  # under torchrun only rank 0 writes
            update_checkpoint_meta(best_path, threshold=threshold)
    log.info("best validation score %.4f at epoch %d; threshold %.3f", result.best_score,
             result.best_epoch, threshold)
    summary = {"best_val_score": result.best_score, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "threshold": threshold, "class_names": data.class_names,
               "n_train": len(train_set), "n_val": len(data.val_set), **dataclasses.asdict(config)}
    if result.complete:
        mark_finished(run_dir, config, task, summary)
    return summary


def train_galaxy(labels_path: str | Path, run_dir: str | Path, target: str = "barred",
                 config: TrainConfig = DEFAULT_CONFIG, input_size: int = DEFAULT_INPUT_SIZE,
                 balance_sizes: bool = True, resume: bool = False, progress: bool = True,
                 field: dict | None = None, zoom_range: tuple[float, float] = DEFAULT_ZOOM_RANGE,
                 canonical_scale: tuple[float, float] | None = None) -> dict:
    """Train a classifier on the non-test rows of a labels table.

    The arguments are :func:`read_training_data`'s and :func:`fit_galaxy`'s;
    ``balance_sizes`` weights the loss of a two-class task so both classes
    count equally in every apparent-size bin
    (:func:`~deepscope.galaxy.apparent_size.size_balancing_weights`);
    ``zoom_range`` bounds the random zooms of the training cutouts
    (:class:`~deepscope.galaxy.dataset.CutoutDataset`); ``canonical_scale``
    (smallest, largest zoom) first brings every training and validation
    cutout to one apparent size (:func:`to_canonical_scale`). Returns
    :func:`fit_galaxy`'s summary; raises as :func:`read_training_data`.
    """
    data = read_training_data(labels_path, run_dir, target, config, input_size, field, progress)
    extra = {"balance_sizes": balance_sizes}
    if canonical_scale is not None:
        data, extra["canonical_scale"] = to_canonical_scale(data, canonical_scale)
    weights = None
    if balance_sizes and len(data.class_names) == 2:
        weights = size_balancing_weights(data.train_sizes, data.train_labels)
    train_set = CutoutDataset(data.train_images, data.train_labels, weights, augment=True, zoom_range=zoom_range)
    if tuple(zoom_range) != DEFAULT_ZOOM_RANGE:  # so that runs with the default zooms resume as before
        extra["zoom_range"] = [float(z) for z in zoom_range]
    return fit_galaxy(data, train_set, run_dir, config, resume, progress, extra=extra)
