"""A trained network as a teacher: its class probabilities blended into the training targets.

A smaller, faster network (``barnet_fast``) trained on the labels alone falls
short of ``barnet``; trained towards what a trained ``barnet`` says about the
same galaxies it learns the teacher's graded view (a faint bar at 0.6, not
a hard 0 or 1), which is how a cheap network is commonly brought close to an
expensive one (Hinton et al. 2015, "Distilling the knowledge in a neural
network"). Only the training rows are shown to the teacher.

Experiment, not shipped (see README.md here); was ``deepscope.galaxy.distillation``.
``experiments/galaxy_evidence/train_variant.py --teacher MODEL`` trains with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepscope.errors import InputError


def check_teacher(teacher: str | Path, teacher_weight: float, class_names: list, input_size: int):
    """Load the teacher and check it fits the run, before any image is read.

    Parameters
    ----------
    teacher : str or Path
        A shipped model's name, a run directory or a checkpoint
        (:func:`deepscope.registry.resolve_model`).
    teacher_weight : float
        Its share of each target, in [0, 1].
    class_names : list
        The classes being trained, in order; the teacher must have the same.
    input_size : int
        Side of the run's cutouts; the teacher must read the same.

    Returns
    -------
    deepscope.galaxy.predictor.GalaxyPredictor

    Raises
    ------
    InputError
        If ``teacher_weight`` is outside [0, 1], or the teacher's classes or
        input size differ from the run's.
    ModelError
        If nothing is found at ``teacher``, or it is not a galaxy model.
    """
    from deepscope.galaxy.predictor import GalaxyPredictor

    if not 0.0 <= teacher_weight <= 1.0:
        msg = f"--teacher-weight must be between 0 and 1, got {teacher_weight}"
        raise InputError(msg)
    predictor = GalaxyPredictor.from_checkpoint(teacher)
    if [str(c) for c in predictor.class_names] != [str(c) for c in class_names]:
        msg = (f"--teacher {teacher}: its classes {predictor.class_names} are not the training run's "
               f"{list(class_names)}")
        raise InputError(msg)
    if predictor.input_size != input_size:
        msg = f"--teacher {teacher}: it reads {predictor.input_size} px cutouts, the run {input_size} px"
        raise InputError(msg)
    return predictor


def teacher_probabilities(teacher, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of the teacher for cutouts already in model form.

    Parameters
    ----------
    teacher : deepscope.galaxy.predictor.GalaxyPredictor
        From :func:`check_teacher`.
    images : numpy.ndarray
        ``(N, 3, S, S)`` float32, as :func:`~deepscope.galaxy.dataset.load_cutouts` gives them.
    batch_size : int

    Returns
    -------
    numpy.ndarray
        ``(N, n_classes)`` float32 probabilities.
    """
    out = [teacher.probabilities(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.empty((0, len(teacher.class_names)), np.float32)


def blend_targets(targets: np.ndarray, teacher: np.ndarray, teacher_weight: float) -> np.ndarray:
    """``(1 - w) * targets + w * teacher``: the probabilities a student is trained against.

    Parameters
    ----------
    targets : numpy.ndarray
        ``(N, n_classes)`` targets from the labels (one-hot, or soft from evidence).
    teacher : numpy.ndarray
        ``(N, n_classes)`` teacher probabilities.
    teacher_weight : float
        ``w``, in [0, 1] (:func:`check_teacher`).

    Returns
    -------
    numpy.ndarray
        float32, rows summing to 1.

    Examples
    --------
    >>> blend_targets(np.array([[0.0, 1.0]]), np.array([[0.6, 0.4]]), 0.5).tolist()
    [[0.30000001192092896, 0.699999988079071]]
    """
    return ((1.0 - teacher_weight) * targets + teacher_weight * teacher).astype(np.float32)
