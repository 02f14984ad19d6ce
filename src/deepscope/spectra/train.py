"""Training spectral classifiers: datasets, fits through core.trainer, ensembles, calibration.

:func:`train_spectra` is what ``spectra train`` runs (labelled libraries in,
one checkpoint out). :func:`train_classifier` fits one network on prepared
arrays and :func:`train_ensemble` several from different seeds, joined into
one averaging network (:func:`write_ensemble`); every checkpoint written
gets the temperature of its ``confidence`` fitted on the validation split
(:func:`calibrate`). Targets and the loss are in
:mod:`deepscope.spectra.targets`, the teacher of a distilled network in
:mod:`deepscope.spectra.distil`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscope.config import TrainConfig
from deepscope.core.checkpoint import BEST_NAME, load_checkpoint, sha256
from deepscope.core.distributed import process_info
from deepscope.core.files import check_writable, write_table
from deepscope.errors import InputError
from deepscope.registry import check_arch
from deepscope.spectra.augment import (ObservedSpectra, SurveyAugment, jitter, load_observed, noisy_copies,
                                       survey_dataset)
from deepscope.spectra.distil import (DEFAULT_TEACHER_WEIGHT, distillation_loss, load_teacher, with_mixup,
                                      with_teacher)
from deepscope.spectra.preparation.grid import Grid
from deepscope.spectra.io.files import find_spectra
from deepscope.spectra.preparation.labelled import SHORT_RED_LIMIT, load_labelled, load_prepared, velocity_templates
from deepscope.spectra.targets import main_class_weights, spectra_loss, spectra_score, type_targets

log = logging.getLogger(__name__)

DEFAULT_CONFIG = TrainConfig(
    model="spectra_cnn",  # best of ANN, CNN and AE on the leave-one-library-out table
    epochs=60,  # small data: an epoch takes seconds on CPU
    batch_size=32,  # about 1000 training spectra; smaller batches generalise better here
    lr=2e-3,
    weight_decay=1e-3,  # stronger than the default: libraries differ, spectra within one do not
    patience=15,
    val_fraction=0.15,
    # One thread: these networks are small, and on a shared two-core machine
    # two spinning OpenMP threads made an epoch ten times slower.
    threads=1,
)
# One network's held-out scores move with its seed; averaging a few takes out much of that spread.
DEFAULT_MEMBERS = 3
ENSEMBLE_MODEL = "spectra_ensemble"
# Noise levels (S/N per fine pixel) of the validation copies the temperature is fitted on, beside the clean ones:
# one temperature then serves clean and noisy spectra alike.
CALIBRATION_SNR = (5.0, 10.0, 20.0)


def make_dataset(x: np.ndarray, targets: dict | None = None, augment: bool = False):
    """A torch dataset of prepared spectra ``(N, 2, n)`` and their targets.

    ``targets`` come from :func:`type_targets`; ``None`` for an autoencoder,
    whose target is the input's own flux row. ``augment`` perturbs each copy
    as libraries differ (:func:`~deepscope.spectra.augment.jitter`).
    """
    import torch
    from torch.utils.data import Dataset

    class _Spectra(Dataset):
        def __init__(self):
            self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            self.y = None if targets is None else {
                k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in targets.items() if k != "usable"}

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            item = self.x[i]
            clean = item[0]
            if augment:
                item = jitter(item)
            if self.y is None:
                return item, torch.stack([clean, self.x[i][1]])
            return item, {k: v[i] for k, v in self.y.items()}

    return _Spectra()


def reconstruction_loss(outputs, targets):
    """Masked mean squared error of an autoencoder's flux reconstruction."""
    mask = targets[:, 1]
    return (((outputs - targets[:, 0]) ** 2) * mask).sum() / mask.sum().clamp(min=1.0)


def train_classifier(x: np.ndarray, sptypes: Sequence[str], run_dir: str | Path, config: TrainConfig = DEFAULT_CONFIG,
                     grid: Grid = Grid(), min_coverage: float = 0.4, pool_x: np.ndarray | None = None,
                     pretrain_epochs: int = 40, meta: dict | None = None, progress: bool = True,
                     short_x: np.ndarray | None = None, teacher=None,
                     teacher_weight: float = DEFAULT_TEACHER_WEIGHT, mixup: float = 0.0, split_seed: int | None = None,
                     resume: bool = False, observed: ObservedSpectra | None = None,
                     augment: SurveyAugment | None = None):
    """Train one registered spectral classifier, then fit its temperature on the validation split (:func:`calibrate`).

    Parameters
    ----------
    x : numpy.ndarray
        Prepared labelled spectra ``(N, 2, grid.n)``.
    sptypes : sequence of str
        Their catalogue types; those with no O-M type are left out (and logged).
    run_dir : str or Path
    config : TrainConfig
        ``config.model`` is a trainable spectra network.
    grid : Grid
    min_coverage : float
        Stored in the checkpoint so prediction applies the same rule.
    pool_x : numpy.ndarray, optional
        Unlabelled spectra that join ``x`` to pretrain ``spectra_ae_classifier``'s autoencoder.
    pretrain_epochs : int
    meta : dict, optional
        Extra checkpoint metadata (training libraries ...).
    progress : bool
    short_x : numpy.ndarray, optional
        The same spectra prepared as if they ended at
        :data:`~deepscope.spectra.preparation.labelled.SHORT_RED_LIMIT`; each
        trains and validates beside its full version.
    teacher : torch.nn.Module, optional
        A trained classifier to distil (:mod:`deepscope.spectra.distil`).
    teacher_weight : float
        The teacher's share of the loss.
    mixup : float
        Share of training copies mixed with another before the teacher answers
        (:func:`~deepscope.spectra.distil.with_mixup`).
    split_seed : int, optional
        Seed of the validation split if not ``config.seed`` (ensemble members share one).
    resume : bool
        Continue from the checkpoints in ``run_dir``; a network whose fit was
        complete and calibrated there is left as it is.
    observed : ObservedSpectra, optional
        The same spectra on the fine grid as read. With ``augment``, every
        training copy is drawn from them as surveys deliver spectra
        (:func:`~deepscope.spectra.augment.survey_dataset`), and the
        temperature is fitted on the validation spectra clean and at the S/N
        of :data:`CALIBRATION_SNR`.
    augment : SurveyAugment, optional
        Recorded in the checkpoint's ``meta["augment"]``.

    Returns
    -------
    deepscope.core.trainer.FitResult

    Raises
    ------
    InputError
        If fewer than ten spectra have a usable type.
    """
    import torch

    from deepscope.core.trainer import fit

    targets = type_targets(list(sptypes))
    usable = targets["usable"]
    if usable.sum() < 10:
        msg = f"only {int(usable.sum())} spectra have a usable MK type; need at least 10 to train"
        raise InputError(msg)
    if (~usable).any():
        log.info("left out %d spectra whose type is not an O-M MK type", int((~usable).sum()))
    x, sptypes = x[usable], [s for s, u in zip(sptypes, usable) if u]
    short_x = None if short_x is None else short_x[usable]
    observed = None if observed is None or augment is None else observed.rows(usable)
    targets = {k: v[usable] for k, v in targets.items()}
    targets["w"] = main_class_weights(targets["lo"])
    rng = np.random.default_rng(config.seed)
    train, val = _split(rng, len(x), config.val_fraction)
    if split_seed is not None:
        train, val = _split(np.random.default_rng(split_seed), len(x), config.val_fraction)
    run_dir = Path(run_dir)
    model_kwargs = {"n_points": grid.n, **config.model_kwargs}

    if config.model == "spectra_ae_classifier" and "pretrained" not in config.model_kwargs:
        pool = x if pool_x is None else np.concatenate([x, pool_x])
        log.info("pretraining the autoencoder on %d spectra (labels ignored)", len(pool))
        ae_config = dataclasses.replace(config, epochs=pretrain_epochs, model_kwargs={})
        fit_autoencoder(pool, run_dir / "pretrain", ae_config, grid, min_coverage, rng, progress, resume)
        model_kwargs["pretrained"] = str(run_dir / "pretrain")

    templates = {"x": torch.from_numpy(x[train][:, 0]).half(), "mask": torch.from_numpy(x[train][:, 1] > 0),
                 "sptypes": [sptypes[i] for i in train]}
    full_meta = {"grid": grid.as_dict(), "min_coverage": min_coverage, "templates": templates, **(meta or {})}
    if observed is not None:
        full_meta["augment"] = augment.as_meta()

    def part(rows):
        """Spectra and targets of some rows, with their short copies."""
        part_x = x[rows] if short_x is None else np.concatenate([x[rows], short_x[rows]])
        copies = 1 if short_x is None else 2
        return part_x, {k: np.concatenate([v[rows]] * copies) for k, v in targets.items() if k != "usable"}

    if observed is None:
        train_set = make_dataset(*part(train), augment=True)
    else:
        train_set = survey_dataset(observed.rows(train), {k: v[train] for k, v in targets.items() if k != "usable"},
                                   augment, None if short_x is None else SHORT_RED_LIMIT)
    val_set, loss = make_dataset(*part(val)), spectra_loss
    if teacher is not None:
        if mixup:
            train_set = with_mixup(train_set, mixup)
        train_set, val_set = with_teacher(train_set, teacher), with_teacher(val_set, teacher)
        loss = distillation_loss(teacher_weight)
    result = fit(config.model, model_kwargs, train_set, val_set, loss, config, run_dir, score_fn=spectra_score,
                 meta=full_meta, progress=progress, resume=resume)
    # A network that an interrupted run had trained and calibrated (calibrate() writes its temperature last)
    # stays as it is.
    done_before = result.new_epochs == 0 and "temperature" in load_checkpoint(run_dir / BEST_NAME)["meta"]
    if process_info().is_primary and not done_before:
        calibrate(run_dir, *_held_out(x, sptypes, short_x, config.seed if split_seed is None else split_seed,
                                      config.val_fraction, observed), config.device, _snr_term(observed))
    return result


def velocity_meta(templates) -> dict:
    """:class:`~deepscope.spectra.preparation.velocity.VelocityTemplates` as checkpoint metadata (arrays as tensors)."""
    import torch

    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in templates.as_meta().items()}


def fit_autoencoder(x: np.ndarray, run_dir: str | Path, config: TrainConfig, grid: Grid, min_coverage: float, rng,
                    progress: bool = True, resume: bool = False):
    """Fit a ``spectra_autoencoder`` on prepared spectra, a tenth of them (drawn from ``rng``) validating it.

    ``resume`` continues from ``run_dir/last.pt`` (:func:`deepscope.core.trainer.fit`).
    """
    from deepscope.core.trainer import fit

    order = rng.permutation(len(x))
    n_val = max(1, len(x) // 10)
    return fit("spectra_autoencoder", {"n_points": grid.n, **config.model_kwargs},
               make_dataset(x[order[n_val:]], augment=True), make_dataset(x[order[:n_val]]), reconstruction_loss,
               dataclasses.replace(config, model="spectra_autoencoder"), run_dir,
               meta={"grid": grid.as_dict(), "min_coverage": min_coverage}, progress=progress, resume=resume)


def _split(rng, n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows of ``n`` spectra, drawn from ``rng``."""
    order = rng.permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return order[n_val:], order[:n_val]


def _held_out(x, sptypes, short_x, seed, val_fraction, observed=None) -> tuple[np.ndarray, np.ndarray]:
    """The validation spectra of :func:`train_classifier` (with their short copies, and with ``observed`` their
    noisy copies at :data:`CALIBRATION_SNR`) and their main classes 0-6."""
    targets = type_targets(list(sptypes))
    rows = np.flatnonzero(targets["usable"])
    rows = rows[_split(np.random.default_rng(seed), len(rows), val_fraction)[1]]
    main = (targets["lo"][rows] // 10).astype(int)
    parts = [x[rows]] + ([] if short_x is None else [short_x[rows]])
    if observed is not None:
        parts += [noisy_copies(observed.rows(rows), snr, seed + k) for k, snr in enumerate(CALIBRATION_SNR)]
    return np.concatenate(parts), np.concatenate([main] * len(parts))


def calibrate(run_dir: str | Path, x: np.ndarray, true_main: np.ndarray, device: str = "cpu",
              snr_term: float | None = None) -> dict:
    """Fit the temperature of ``run_dir/best.pt`` on held-out spectra and store it in the checkpoint's meta.

    ``x`` are prepared held-out spectra (the validation split), ``true_main``
    their main classes 0 (O) to 6 (M). Writes ``calibration.json`` (the
    temperature, how many spectra fitted it, their main-class accuracy and
    expected calibration error before and after) and ``reliability.png``
    into ``run_dir``, and returns what the JSON holds. ``snr_term`` (the
    measured :data:`~deepscope.spectra.calibration.SNR_TEMPERATURE_TERM`, for
    a network trained without survey augmentation, the only kind it was
    measured on) goes into the meta too, as ``temperature_snr_term``.
    """
    import json

    from deepscope.core.checkpoint import model_from_checkpoint, update_checkpoint_meta
    from deepscope.core.distributed import select_device
    from deepscope.core.files import atomic_path
    from deepscope.core.trainer import predict_dataset
    from deepscope.spectra.calibration import (expected_calibration_error, fit_temperature, main_class_confidence,
                                               reliability_figure)
    from deepscope.spectra.decoding import outputs_to_rows
    from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS
    from deepscope.spectra.models import trained_model_kwargs

    run_dir = Path(run_dir)
    record = load_checkpoint(run_dir / BEST_NAME)
    model = model_from_checkpoint({**record, "model_kwargs": trained_model_kwargs(record["model_kwargs"])})
    device = select_device(device)
    outputs = predict_dataset(model.to(device), make_dataset(x), 512, device)[0].numpy()
    predicted = np.array([MAIN_CLASSES.index(row["main_class"]) for row in outputs_to_rows(outputs)], int)
    t_log_p, correct = outputs[:, :N_T_BINS], predicted == np.asarray(true_main, int)
    temperature = round(fit_temperature(t_log_p, true_main, predicted), 4)
    before, after = (main_class_confidence(t_log_p, predicted, t) for t in (1.0, temperature))
    summary = {"temperature": temperature, "temperature_snr_term": snr_term, "fitted_on": "validation split",
               "n": len(x),
               "main_class_accuracy": round(float(correct.mean()), 4),
               "ece_uncalibrated": round(expected_calibration_error(before, correct), 4),
               "ece_calibrated": round(expected_calibration_error(after, correct), 4)}
    update_checkpoint_meta(run_dir / BEST_NAME, temperature=temperature,
                           **({} if snr_term is None else {"temperature_snr_term": snr_term}))
    (run_dir / "calibration.json").write_text(json.dumps(summary, indent=2) + "\n")
    fig = reliability_figure({"uncalibrated (T = 1)": (before, correct),
                              f"calibrated (T = {temperature:.3f})": (after, correct)},
                             title="main-class confidence on the validation split")
    with atomic_path(run_dir / "reliability.png") as tmp:
        fig.savefig(tmp, format="png")
    log.info("calibrated %s: temperature %.3f, ECE %.3f -> %.3f on %d validation spectra", run_dir, temperature,
             summary["ece_uncalibrated"], summary["ece_calibrated"], len(x))
    return summary


def member_dir(run_dir: str | Path, index: int) -> Path:
    """Run directory of one member inside an ensemble's run directory."""
    return Path(run_dir) / f"member{index}"


def check_members(members: int) -> None:
    """Refuse an ensemble size below one (an :class:`~deepscope.errors.InputError`), before any work.

    Examples
    --------
    >>> check_members(0)
    Traceback (most recent call last):
    ...
    deepscope.errors.InputError: --members 0: need at least one
    """
    if members < 1:
        msg = f"--members {members}: need at least one"
        raise InputError(msg)


def train_ensemble(x: np.ndarray, sptypes: Sequence[str], run_dir: str | Path, config: TrainConfig = DEFAULT_CONFIG,
                   members: int = DEFAULT_MEMBERS, resume: bool = False, **train_kwargs) -> list:
    """Train ``members`` classifiers (:func:`train_classifier` with ``train_kwargs``) and their calibrated ensemble.

    Member ``i`` trains in ``run_dir/member<i>`` from seed ``config.seed + i``
    (initial weights, batch order, augmentation); all share the validation
    split of ``config.seed``, on which the ensemble in ``run_dir/best.pt`` is
    calibrated. One member trains straight into ``run_dir``. ``resume``
    continues every member from its checkpoints (a finished one is left as
    it is). Returns each member's :class:`~deepscope.core.trainer.FitResult`.
    """
    check_members(members)
    if members == 1:
        return [train_classifier(x, sptypes, run_dir, config, resume=resume, **train_kwargs)]
    results = [train_classifier(x, sptypes, member_dir(run_dir, i), dataclasses.replace(config, seed=config.seed + i),
                                split_seed=config.seed, resume=resume, **train_kwargs)
               for i in range(members)]
    write_ensemble(run_dir, members)
    if process_info().is_primary:
        observed = train_kwargs.get("observed") if train_kwargs.get("augment") is not None else None
        calibrate(run_dir, *_held_out(x, sptypes, train_kwargs.get("short_x"), config.seed, config.val_fraction,
                                      observed),
                  config.device, _snr_term(observed))
    return results


def _snr_term(observed) -> float | None:
    """The temperature's S/N term for a network trained on ``observed`` survey copies (None: without them)."""
    from deepscope.spectra.calibration import SNR_TEMPERATURE_TERM

    return SNR_TEMPERATURE_TERM if observed is None else None


def write_ensemble(run_dir: str | Path, members: int) -> None:
    """Join the members' best checkpoints into ``run_dir/best.pt`` (primary process only).

    The ensemble keeps the first member's metadata (grid, templates, training
    hashes) but not its temperature: the ensemble gets its own.
    """
    from deepscope.core.checkpoint import save_checkpoint
    from deepscope.registry import create_model
    from deepscope.spectra.models import trained_model_kwargs

    if not process_info().is_primary:
        return
    records = [load_checkpoint(member_dir(run_dir, i)) for i in range(members)]
    specs = [(r["model"], trained_model_kwargs(r["model_kwargs"])) for r in records]
    ensemble = create_model(ENSEMBLE_MODEL, members=specs)
    for slot, record in zip(ensemble.members, records):
        slot.load_state_dict(record["state_dict"])
    save_checkpoint(Path(run_dir) / BEST_NAME, ENSEMBLE_MODEL, {"members": specs}, ensemble,
                    meta={k: v for k, v in records[0].get("meta", {}).items()
                          if k not in ("temperature", "temperature_snr_term")},
                    config=records[0].get("config"),
                    member_best_scores=[r.get("best_score") for r in records])


def train_spectra(labels_paths: Sequence[str | Path], run_dir: str | Path, config: TrainConfig = DEFAULT_CONFIG,
                  grid: Grid = Grid(), min_coverage: float = 0.4, pool_dirs: Sequence[str | Path] = (),
                  pretrain_epochs: int = 40, progress: bool = True, members: int = DEFAULT_MEMBERS,
                  teacher: str | Path | None = None, teacher_weight: float = DEFAULT_TEACHER_WEIGHT,
                  mixup: float = 0.0, augment: SurveyAugment | None = None) -> dict:
    """Train a spectral classifier on labelled libraries: what ``spectra train`` runs.

    A rerun into the same run directory with the same settings resumes it
    (networks finished before are kept; a finished run returns its summary
    untouched); other settings are refused (:func:`~deepscope.core.trainer.start_run`).

    Parameters
    ----------
    labels_paths : sequence of str or Path
        ``labels.csv`` tables (``file``, ``sptype``).
    run_dir : str or Path
    config : deepscope.config.TrainConfig
    grid : Grid
    min_coverage : float
    pool_dirs : sequence of str or Path
        Unlabelled spectra (files or directories) that join the labelled
        ones to pretrain ``spectra_ae_classifier``'s autoencoder.
    pretrain_epochs : int
    progress : bool
    members : int
        Networks trained apart and averaged (:func:`train_ensemble`).
    teacher : str or Path, optional
        A trained classifier (shipped name, run directory or ``.pt``) that
        each network learns from (:mod:`deepscope.spectra.distil`).
    teacher_weight : float
        The teacher's share of the loss (the rest: the labels).
    mixup : float
        Share of training copies mixed with another; needs ``teacher`` at
        weight 1, since a mixture has no catalogue type.
    augment : SurveyAugment or None
        Train on copies perturbed as surveys deliver spectra and calibrate
        on noisy validation copies too (:mod:`deepscope.spectra.augment`);
        None: the light perturbations of :func:`make_dataset` and clean
        calibration. Recorded in the run's settings and the checkpoint.

    Returns
    -------
    dict
        The members' best validation scores (and their mean) and epochs, counts, skipped files.

    Raises
    ------
    InputError
        For a bad ensemble size, share or combination, before anything is read.
    """
    import pandas as pd

    from deepscope.config import prepare_run_dir
    from deepscope.core.trainer import mark_finished, start_run

    check_arch(config.model, "spectra")
    check_members(members)
    if not 0 <= teacher_weight <= 1:
        msg = f"--teacher-weight {teacher_weight:g}: need a share from 0 to 1"
        raise InputError(msg)
    if not 0 <= mixup <= 1:
        msg = f"--mixup {mixup:g}: need a share from 0 to 1"
        raise InputError(msg)
    if mixup and (teacher is None or teacher_weight != 1):
        msg = (f"--mixup {mixup:g} needs --teacher with --teacher-weight 1: a mixture of two spectra has no "
               "catalogue type, only the teacher's answer")
        raise InputError(msg)
    teacher_model = None if teacher is None else load_teacher(teacher, grid)
    run_dir = check_writable(run_dir, is_dir=True)
    task = {"data": [str(p) for p in labels_paths], "grid": grid.as_dict(), "min_coverage": min_coverage,
            "pool": [str(p) for p in pool_dirs], "members": members, "pretrain_epochs": pretrain_epochs,
            "teacher": None if teacher is None else str(teacher), "teacher_weight": teacher_weight, "mixup": mixup,
            "augment": None if augment is None else augment.as_meta()}
    start = start_run(run_dir, config, task, resume_option=None)
    if start.summary is not None:
        return start.summary
    manifest, x, failures, short_x = load_labelled(labels_paths, grid, min_coverage, progress=progress, short=True)
    for path, reason in failures:
        log.warning("skipped %s: %s", path, reason)
    pool_x = None
    if pool_dirs and config.model == "spectra_ae_classifier":
        pool_paths = find_spectra(pool_dirs)
        pool_x, _, pool_failures = load_prepared(pool_paths, grid, min_coverage, progress=progress)
        log.info("unlabelled pool: %d spectra (%d unreadable)", len(pool_x), len(pool_failures))
    observed = None if augment is None else load_observed(list(manifest["path"]), grid)
    prepare_run_dir(run_dir, config, task)
    if failures and process_info().is_primary:
        write_table(pd.DataFrame(failures, columns=["file", "reason"]), run_dir / "skipped.csv")
    # File hashes, not names, so evaluate also spots renamed copies of training files.
    meta = {"train_sha256": sorted({sha256(p) for p in manifest["path"]}),
            "libraries": sorted(set(manifest["library"]))}
    if teacher is not None:
        meta["teacher"] = {"model": str(teacher), "weight": teacher_weight, "mixup": mixup}
    # What predict measures each spectrum's radial velocity against, from the same libraries at rest.
    templates = velocity_templates(labels_paths, grid, min_coverage)
    if templates is not None:
        meta["velocity_templates"] = velocity_meta(templates)
    results = train_ensemble(x, list(manifest["sptype"]), run_dir, config, members, grid=grid,
                             min_coverage=min_coverage, pool_x=pool_x, pretrain_epochs=pretrain_epochs, meta=meta,
                             progress=progress, short_x=short_x, teacher=teacher_model, teacher_weight=teacher_weight,
                             mixup=mixup, resume=start.resume, observed=observed, augment=augment)
    scores = [r.best_score for r in results]
    summary = {"best_val_score": float(np.mean(scores)), "best_epoch": results[0].best_epoch,
               "member_val_scores": scores, "member_best_epochs": [r.best_epoch for r in results],
               "n_spectra": len(x), "skipped": len(failures), "model": config.model, "members": members}
    if all(r.complete for r in results):
        mark_finished(run_dir, config, task, summary)
    return summary
