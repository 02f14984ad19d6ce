"""One small network taught by an ensemble: the ensemble's answers at a fraction of its cost.

The shipped classifier averages three CNNs; on a survey table the network
is then the largest cost per spectrum (issue 15). A student network trains
on the same spectra with the same augmentation, but its targets are the
teacher's probabilities for each augmented copy it sees (Hinton et al.
2015, "Distilling the knowledge in a neural network"), mixed with the
catalogue labels if asked. The teacher runs on every copy, so the student
learns the ensemble's answer on noisy, blurred, shifted and cut spectra
too, not only on the library's clean ones, and with :func:`with_mixup` on
mixtures of two of them, between the training spectra. The shipped
``spectra_mk_fast`` is such a student (half its copies mixed); the spectra
README gives what it costs in accuracy.
"""

from __future__ import annotations

from deepscope.spectra.mktype import N_T_BINS
from deepscope.spectra.targets import spectra_loss

# Share of the loss taken from the teacher (the rest from the catalogue labels). The teacher
# alone did better than half and half on the validation split of the MKCLASS-held-out fold
# (score -1.91 against -1.99; labels alone -2.10): its soft answers already hold the labels.
DEFAULT_TEACHER_WEIGHT = 1.0
TEACHER_KEY = "teacher"
# Mixing weights drawn from Beta(0.4, 0.4): most mixtures lean towards one of the two spectra
# (Zhang et al. 2018, "mixup", use 0.1-0.4). Half the copies mixed and 120 epochs brought the
# student closest to the ensemble on the MILES and Pickles development folds (spectra README).
MIXUP_ALPHA = 0.4


def with_teacher(dataset, teacher):
    """The dataset's items with the teacher's log-probabilities added to their targets.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Of :func:`deepscope.spectra.train.make_dataset` (targets as a dict).
    teacher : torch.nn.Module
        A trained classifier in eval mode, on the CPU; it sees each item
        exactly as the student does (after augmentation).

    Returns
    -------
    torch.utils.data.Dataset
    """
    import torch
    from torch.utils.data import Dataset

    class _Taught(Dataset):
        def __len__(self):
            return len(dataset)

        def __getitem__(self, i):
            return self.__getitems__([i])[0]

        def __getitems__(self, indices):
            # A DataLoader asks for a whole batch here: the teacher answers it in one call, not
            # one spectrum at a time (the three-network ensemble on one core: 0.33 instead of
            # 0.84 ms per spectrum in batches of 32).
            items = [dataset[i] for i in indices]
            with torch.inference_mode():
                answers = teacher(torch.stack([item for item, _ in items]))
            return [(item, {**targets, TEACHER_KEY: answer.clone()}) for (item, targets), answer in zip(items, answers)]

    return _Taught()


def with_mixup(dataset, share: float, alpha: float = MIXUP_ALPHA):
    """The dataset with a share of its items mixed with another item: more inputs for a teacher to answer.

    A mixed item is ``lam * a + (1 - lam) * b`` of two augmented copies on
    the pixels both cover (the mask is their product), ``lam`` drawn from
    ``Beta(alpha, alpha)``. It is no star of any catalogue type, so only a
    teacher can say what it should give (:func:`with_teacher`, applied
    after this): the student learns the teacher's answer between the
    training spectra, not only on them, which brought it closer to the
    teacher on held-out libraries (Beyer et al. 2022 find the same for
    images). Its main-class weight is 1.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Of :func:`deepscope.spectra.train.make_dataset` (targets as a dict).
    share : float
        Fraction of the items mixed, 0 to 1.
    alpha : float

    Returns
    -------
    torch.utils.data.Dataset
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
    """Loss of a student: the teacher's soft targets mixed with :func:`~deepscope.spectra.targets.spectra_loss`.

    Each head's term is the cross-entropy of the student's probabilities
    against the teacher's (the teacher's entropy subtracted, so 0 means the
    same answer); the temperature term carries the same per-star weights
    as the label loss (rare main classes count more).

    Parameters
    ----------
    teacher_weight : float
        0 trains on the labels alone, 1 on the teacher alone.

    Returns
    -------
    callable
        ``loss(outputs, targets)`` for :func:`deepscope.core.trainer.fit`.
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
    """A trained spectral classifier as a teacher: folded, in eval mode, on the CPU.

    Parameters
    ----------
    name_or_path : str or Path
        Shipped name, run directory or ``.pt``.
    grid : deepscope.spectra.preparation.grid.Grid
        The student's grid; the teacher must read the same input.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ModelError
        If it is not a spectral classifier, or was trained on another grid.
    """
    from deepscope.errors import ModelError
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint(name_or_path)
    if predictor.grid != grid:
        msg = (f"--teacher {name_or_path}: it reads the grid {predictor.grid.as_dict()}, "
               f"not this run's {grid.as_dict()}; train on its grid (--grid) or choose another teacher")
        raise ModelError(msg)
    return predictor.model
