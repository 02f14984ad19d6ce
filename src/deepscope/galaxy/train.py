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
from deepscope.errors import BatchError, InputError
from deepscope.galaxy.classes import class_names_of, encode_labels
from deepscope.galaxy.crossmatch import sample_positions
from deepscope.galaxy.dataset import CutoutDataset, load_cutouts
from deepscope.galaxy.distillation import blend_targets, check_teacher, teacher_probabilities
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.galaxy.training_evidence import TrainingEvidence, evidence_targets

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_CONFIG = TrainConfig(model="barnet", epochs=40, batch_size=64, lr=3e-3, patience=10)
DEFAULT_INPUT_SIZE = 64  # the SDSS cutouts in ../shared/data are 64x64 at 0.3"/px


def size_balancing_weights(sizes: ArrayLike, labels: ArrayLike, n_bins: int = 5,
                           max_weight: float = 4.0, base_weights: ArrayLike | None = None) -> np.ndarray:
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
        Cap on a class's factor in a bin (before normalising): a bin with
        very few members of one class would otherwise make the gradients noisy.
    base_weights : array-like of float, optional
        Relative weights within each class and bin (e.g. from external bar
        evidence, :func:`~deepscope.galaxy.training_evidence.evidence_targets`);
        the classes' totals are balanced on them. Default 1.

    Returns
    -------
    numpy.ndarray of float32
        Mean 1.

    Examples
    --------
    >>> size_balancing_weights([1, 2, 3, 4], [0, 1, 1, 1], n_bins=1).tolist()
    [2.0, 0.6666666865348816, 0.6666666865348816, 0.6666666865348816]
    >>> size_balancing_weights([1, 2, 3, 4], [0, 0, 1, 1], n_bins=1, base_weights=[1, 1, 3, 1]).tolist()
    [1.0, 1.0, 1.5, 0.5]
    """
    sizes, labels = np.asarray(sizes, float), np.asarray(labels)
    base = np.ones(len(labels)) if base_weights is None else np.asarray(base_weights, float)
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, sizes, side="right") - 1, 0, len(edges) - 2)
    weights = np.zeros(len(labels))
    for b in np.unique(bins):
        in_bin = bins == b
        for c in np.unique(labels[in_bin]):
            members = in_bin & (labels == c)
            if base[members].sum() > 0:
                weights[members] = base[members] * min(base[in_bin].sum() / (2.0 * base[members].sum()), max_weight)
    return (weights / weights.mean()).astype(np.float32)


def cross_entropy(outputs: torch.Tensor, targets: dict) -> torch.Tensor:
    """Weighted classification loss on logits.

    Targets: ``label`` (class index) and ``weight``; where ``soft`` (class
    probabilities, e.g. from vote fractions) is present, the loss is taken
    against it instead of the class index.
    """
    import torch.nn.functional as F

    losses = F.cross_entropy(outputs, targets.get("soft", targets["label"]), reduction="none")
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


def _check_evidence(evidence: TrainingEvidence, class_names: list[str], target: str) -> None:
    """Refuse bar catalogues for a task they do not label, and missing files, before any image is read."""
    if [str(name) for name in class_names] != ["0", "1"]:
        msg = (f"--hoyle/--stripe82: external bar catalogues need a 0/1 bar target; "
               f"column {target!r} has classes {', '.join(map(str, class_names))}")
        raise InputError(msg)
    for option, path in (("--hoyle", evidence.hoyle), ("--stripe82", evidence.stripe82)):
        if path is not None and not Path(path).is_file():
            msg = f"{option} {path}: no such file"
            raise InputError(msg)


def train_galaxy(labels_path: str | Path, run_dir: str | Path, target: str = "barred",
                 config: TrainConfig = DEFAULT_CONFIG, input_size: int = DEFAULT_INPUT_SIZE,
                 balance_sizes: bool = True, resume: bool = False, progress: bool = True,
                 evidence: TrainingEvidence | None = None, teacher: str | Path | None = None,
                 teacher_weight: float = 0.5) -> dict:
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
    evidence : TrainingEvidence, optional
        External bar catalogues that weight the training galaxies and give
        them soft targets (:mod:`deepscope.galaxy.training_evidence`); only
        training rows are matched, validation keeps the catalogue labels.
        For a two-class target whose classes are 0 and 1.
    teacher : str or Path, optional
        A trained galaxy network with the same classes whose probabilities
        on the training rows are blended into the targets
        (:mod:`deepscope.galaxy.distillation`).
    teacher_weight : float
        The teacher's share of each training target.

    Returns
    -------
    dict
        Best validation score and epoch, threshold, class names, sizes,
        and ``evidence`` (how many galaxies each evidence rule touched).

    Raises
    ------
    ModelError
        If ``config.model`` is not a trainable galaxy network (before any data is read).
    InputError
        If ``evidence`` is given for a target that is not 0/1, a catalogue
        is missing, or the teacher does not fit the run (its weight, classes
        or input size; all before any image is read).
    BatchError
        If some training images cannot be read (none is silently dropped).
    """
    from deepscope.core.trainer import fit, predict_dataset
    from deepscope.registry import check_arch

    check_arch(config.model, "galaxy")
    manifest = manifest_from_labels(labels_path, "file", required=[target])
    train_rows, val_rows = split_train_val(manifest, config.val_fraction, config.seed, stratify=target)
    class_names = class_names_of(manifest[target])
    log.info("%s: %d training and %d validation rows, classes %s", labels_path, len(train_rows),
             len(val_rows), class_names)
    if evidence is not None and evidence.given:
        _check_evidence(evidence, class_names, target)
    teacher_model = None if teacher is None else check_teacher(teacher, teacher_weight, class_names, input_size)
    # Only once the labels, catalogues and teacher passed: a refused run leaves no empty run directory behind.
    check_writable(run_dir, is_dir=True)

    images, sizes, failures = load_cutouts(list(train_rows["path"]) + list(val_rows["path"]), input_size,
                                           progress=progress)
    if failures:
        raise BatchError(failures)
    n_train = len(train_rows)
    labels = encode_labels(list(train_rows[target]) + list(val_rows[target]), class_names)
    train_images, train_labels, train_sizes = images[:n_train], labels[:n_train], sizes[:n_train]
    base_weights, soft, counts = None, None, {}
    taught = None if teacher_model is None else teacher_probabilities(teacher_model, train_images)
    if evidence is not None and evidence.given:
        ra, dec = sample_positions(train_rows, str(labels_path))
        base_weights, p_bar, counts = evidence_targets(ra, dec, train_labels, train_sizes, evidence)
        keep = base_weights > 0  # galaxies the evidence rules out (edge-on) are not trained on
        train_images, train_labels, train_sizes = train_images[keep], train_labels[keep], train_sizes[keep]
        base_weights, p_bar = base_weights[keep], p_bar[keep]
        soft = np.stack([1 - p_bar, p_bar], axis=1)
        taught = None if taught is None else taught[keep]
        log.info("external evidence: %s", counts)
    if taught is not None:
        labelled = soft if soft is not None else np.eye(len(class_names), dtype=np.float32)[train_labels]
        soft = blend_targets(labelled, taught, teacher_weight)
    weights = base_weights
    if balance_sizes and len(class_names) == 2:
        weights = size_balancing_weights(train_sizes, train_labels, base_weights=base_weights)
    train_set = CutoutDataset(train_images, train_labels, weights, augment=True, soft=soft)
    val_set = CutoutDataset(images[n_train:], labels[n_train:])

    model_kwargs = {"n_classes": len(class_names), "input_size": input_size, **config.model_kwargs}
    meta = {"target": target, "class_names": class_names, "input_size": input_size, "threshold": 0.5,
            "labels": str(Path(labels_path).resolve())}
    extra = {"data": str(labels_path), "target": target, "input_size": input_size}
    if evidence is not None and evidence.given:
        extra["evidence"] = evidence.describe()
    if teacher is not None:
        extra["teacher"] = {"model": str(teacher), "weight": teacher_weight}
    prepare_run_dir(run_dir, config, extra=extra)
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
               "n_train": len(train_set), "n_val": len(val_rows), "evidence": counts,
               **dataclasses.asdict(config)}
    log.info("best validation score %.4f at epoch %d; threshold %.3f", result.best_score,
             result.best_epoch, threshold)
    return summary
