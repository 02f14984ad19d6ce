"""One network taught by another (``spectra train --teacher``): a trained classifier's answers as targets.

A student network trains on the same spectra with the same augmentation,
but its targets are the teacher's probabilities for each augmented copy it
sees (Hinton et al. 2015), mixed with the catalogue labels if asked. The
teacher answers every copy, so the student learns its answer on noisy,
blurred, shifted and cut spectra too, and with :func:`with_mixup` on
mixtures of two of them, between the training spectra. The shipped
``spectra_mk_fast`` is a half-width CNN taught so by the ensemble
``spectra_mk`` (docs/spectra.md gives what it costs in accuracy).
"""

from __future__ import annotations

from deepscope.spectra.mktype import N_T_BINS
from deepscope.spectra.targets import spectra_loss

# Share of the loss taken from the teacher (the rest from the catalogue labels): the teacher
# alone validated better than half and half (docs/spectra.md); its answers already hold the labels.
DEFAULT_TEACHER_WEIGHT = 1.0
TEACHER_KEY = "teacher"
# Mixing weights drawn from Beta(0.4, 0.4): most mixtures lean towards one of the two spectra
# (Zhang et al. 2018, "mixup", use 0.1-0.4).
MIXUP_ALPHA = 0.4


def with_teacher(dataset, teacher):
    """A :func:`~deepscope.spectra.train.make_dataset` dataset with the teacher's answer added to each item's targets.

    ``teacher``, a trained classifier in eval mode on the CPU, sees each item
    exactly as the student does (after augmentation).
    """
    import torch
    from torch.utils.data import Dataset

    class _Taught(Dataset):
        def __len__(self):
            return len(dataset)

        def __getitem__(self, i):
            return self.__getitems__([i])[0]

        def __getitems__(self, indices):
            # A DataLoader asks for a whole batch here: the teacher answers it in one call, which
            # costs the ensemble less than half of answering one spectrum at a time.
            items = [dataset[i] for i in indices]
            with torch.inference_mode():
                answers = teacher(torch.stack([item for item, _ in items]))
            return [(item, {**targets, TEACHER_KEY: answer.clone()}) for (item, targets), answer in zip(items, answers)]

    return _Taught()


def with_mixup(dataset, share: float, alpha: float = MIXUP_ALPHA):
    """A :func:`~deepscope.spectra.train.make_dataset` dataset with a ``share`` (0 to 1) of its items mixed.

    A mixed item is ``lam * a + (1 - lam) * b`` of two augmented copies on
    the pixels both cover (the mask is their product), ``lam`` drawn from
    ``Beta(alpha, alpha)``, with main-class weight 1. It is no star of any
    catalogue type, so only a teacher can say what it should give
    (:func:`with_teacher`, applied after this): the student learns the
    teacher's answer between the training spectra, not only on them
    (Beyer et al. 2022 find the same for images).
    """
    import torch
    from torch.utils.data import Dataset

    mixing = torch.distributions.Beta(alpha, alpha)

    class _Mixed(Dataset):
        def __len__(self):
            return len(dataset)

        def __getitem__(self, i):
            item, targets = dataset[i]
            # torch's generator, which the trainer seeds each epoch: a rerun mixes the same pairs.
            if float(torch.rand(())) >= share:
                return item, targets
            other, _ = dataset[int(torch.randint(len(dataset), ()))]
            lam = float(mixing.sample())
            mask = item[1] * other[1]
            flux = (lam * item[0] + (1.0 - lam) * other[0]) * mask
            return torch.stack([flux, mask]), {**targets, "w": torch.ones_like(targets["w"])}

    return _Mixed()


def distillation_loss(teacher_weight: float = DEFAULT_TEACHER_WEIGHT):
    """A student's ``loss(outputs, targets)``: the teacher's soft targets, ``teacher_weight`` of it (0 to 1),
    and :func:`~deepscope.spectra.targets.spectra_loss` on the labels for the rest.

    Each head's term is the cross-entropy of the student's probabilities
    against the teacher's, less the teacher's entropy (0: the same answer);
    the temperature term carries the label loss's per-star weights.
    """
    import torch
    import torch.nn.functional as F

    def loss(outputs, targets):
        teacher = targets[TEACHER_KEY]
        terms = []
        for head in (slice(0, N_T_BINS), slice(N_T_BINS, None)):
            target_log_p = F.log_softmax(teacher[:, head], dim=1)
            student_log_p = F.log_softmax(outputs[:, head], dim=1)
            terms.append((target_log_p.exp() * (target_log_p - student_log_p)).sum(dim=1))
        weight = targets.get("w", torch.ones_like(terms[0]))
        taught = (weight * terms[0]).sum() / weight.sum().clamp(min=1e-6) + terms[1].mean()
        return teacher_weight * taught + (1.0 - teacher_weight) * spectra_loss(outputs, targets)

    return loss


def load_teacher(name_or_path, grid):
    """A trained spectral classifier (shipped name, run directory or ``.pt``) as a teacher: folded, eval, CPU.

    Raises
    ------
    ModelError
        If it is not a spectral classifier, or reads another grid than the student's ``grid``.
    """
    from deepscope.errors import ModelError
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint(name_or_path)
    if predictor.grid != grid:
        msg = (f"--teacher {name_or_path}: it reads the grid {predictor.grid.as_dict()}, "
               f"not this run's {grid.as_dict()}; train on its grid (--grid) or choose another teacher")
        raise ModelError(msg)
    return predictor.model
