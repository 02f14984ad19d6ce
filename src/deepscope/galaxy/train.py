"""Train a galaxy classifier from a labels table (``file`` + a target column)."""

import dataclasses
import logging
from pathlib import Path

from deepscope.config import TrainConfig, prepare_run_dir
from deepscope.core.checkpoint import BEST_NAME, load_checkpoint, model_from_checkpoint, update_checkpoint_meta
from deepscope.core.distributed import process_info
from deepscope.core.files import check_writable
from deepscope.core.manifest import manifest_from_labels, split_train_val
from deepscope.errors import BatchError
from deepscope.galaxy.classifier import GalaxyClassifier, load_cutouts
from deepscope.galaxy.task import (
    CutoutDataset, balanced_threshold, class_names_of, cross_entropy, encode_labels, size_balancing_weights,
    validation_score,
)

log = logging.getLogger(__name__)

DEFAULT_CONFIG = TrainConfig(model="barnet", epochs=40, batch_size=64, lr=3e-3, patience=10)
DEFAULT_INPUT_SIZE = 64  # the SDSS cutouts in ../shared/data are 64x64 at 0.3"/px


def train_galaxy(labels_path, run_dir, target="barred", config=DEFAULT_CONFIG,
                 input_size=DEFAULT_INPUT_SIZE, balance_sizes=True, resume=False, progress=True):
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
        every apparent-size bin (:func:`~deepscope.galaxy.task.size_balancing_weights`).
    resume : bool
        Continue from ``run_dir/last.pt``.
    progress : bool

    Returns
    -------
    dict
        Best validation score and epoch, threshold, class names, sizes.

    Raises
    ------
    BatchError
        If some training images cannot be read (none is silently dropped).
    """
    from deepscope.core.trainer import fit, predict_dataset

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
    classifier = GalaxyClassifier(model_from_checkpoint(load_checkpoint(best_path)), meta)
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
