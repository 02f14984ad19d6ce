"""Domain-free training loop: seeded, resumable, early-stopping, DDP-aware; and what a rerun does.

Every epoch writes ``best.pt`` when the validation score improves, then
``history.csv``, then ``last.pt`` (so ``last.pt`` never runs ahead of the
others) as plain-data checkpoints. Randomness is re-seeded from ``(seed,
rank, epoch)`` at the start of each epoch, so a run resumed from its last
checkpoint reproduces an uninterrupted run exactly.

A training command never overwrites a run: :func:`start_run` compares the
run directory's recorded settings (``config.yaml``) with the new ones and
resumes a run with the same settings, returns the summary of one that
finished (``finished.json``, written by :func:`mark_finished`), or refuses.
:func:`rerun_hint` says what a rerun of an interrupted training does.
"""

import contextlib
import dataclasses
import json
import logging
import math
import signal
from pathlib import Path

from deepscope.core.checkpoint import BEST_NAME, CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from deepscope.core.distributed import (
    barrier, check_in_sync, from_primary, init_distributed, process_info, select_device, sum_over_ranks,
    sync_buffers,
)
from deepscope.core.files import atomic_path
from deepscope.core.progress import progress_bar
from deepscope.errors import ModelError, OutputError

log = logging.getLogger(__name__)

RECORD_NAME = "config.yaml"  # the settings a run was started with (deepscope.config.prepare_run_dir)
FINISHED_NAME = "finished.json"  # written last: the run and the steps after its fit are done
# Settings that say where and how fast a run trains, not what it learns: a rerun may change them and resume.
EXECUTION_SETTINGS = ("device", "threads", "num_workers")
# Where this process's training stands, for the line an interrupt prints (rerun_hint).
_PROGRESS: dict = {}


@dataclasses.dataclass
class FitResult:
    """Outcome of :func:`fit`."""

    best_score: float
    best_epoch: int
    epochs_run: int
    history: list
    complete: bool = True  # the schedule ran out or early stopping ended it (not stop_after)
    new_epochs: int = 0  # epochs trained by this call (0 when it resumed a run that was complete)


@dataclasses.dataclass
class RunStart:
    """What a training command does with its run directory, as :func:`start_run` decided."""

    resume: bool  # continue from the checkpoints in the run directory
    summary: dict | None = None  # the summary of a run that finished: nothing to train or write


def run_settings(config, task: dict | None = None) -> dict:
    """What a run learns from, as plain data: ``config`` without its execution settings, and ``task``.

    Examples
    --------
    >>> from deepscope.config import TrainConfig
    >>> settings = run_settings(TrainConfig(model="barnet", threads=2), {"target": "barred"})
    >>> settings["config"]["model"], "threads" in settings["config"], settings["task"]
    ('barnet', False, {'target': 'barred'})
    """
    import yaml

    values = config if isinstance(config, dict) else dataclasses.asdict(config)
    values = {k: v for k, v in values.items() if k not in EXECUTION_SETTINGS}
    # As config.yaml holds them (tuples as lists ...), so a recorded run compares equal to its rerun.
    return yaml.safe_load(yaml.safe_dump({"config": values, "task": task or {}}))


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"name new (was old)"`` for every setting that differs between two :func:`run_settings`."""
    found = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            name = f"{prefix}{key}".removeprefix("config.").removeprefix("task.")
            found.append(f"{name} {_short(b)} (was {_short(a)})")
    return found


def _short(value, width: int = 40) -> str:
    text = "absent" if value is None else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _read_record(path: Path) -> dict:
    import yaml

    try:
        record = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read the run's recorded settings: {exc}"
        raise OutputError(msg) from None
    if not isinstance(record, dict):
        msg = f"{path}: not a run record (a YAML mapping with config and task)"
        raise OutputError(msg)
    return record


def start_run(run_dir: str | Path, config, task: dict | None = None, resume: bool = False,
              resume_option: str | None = "--resume") -> RunStart:
    """Decide what training ``config`` on ``task`` into ``run_dir`` does, before anything there is written.

    A new run directory, or one without checkpoints or recorded settings,
    starts afresh. One whose ``config.yaml`` records the same settings
    (:func:`run_settings`: device, threads and workers may differ) resumes
    from its checkpoints; when that run finished (:func:`mark_finished`),
    its summary comes back and nothing is trained or rewritten. A run with
    other settings, or checkpoints without ``config.yaml``, is continued
    only when ``resume`` (``--resume``) asks for it, and only with the same network.

    Parameters
    ----------
    run_dir : str or Path
    config : deepscope.config.TrainConfig
    task : dict, optional
        The command's other settings that shape what it learns (data, target
        ...), as :func:`deepscope.config.prepare_run_dir` records them.
    resume : bool
        Continue the run in ``run_dir`` even if its settings differ.
    resume_option : str or None
        The option that sets ``resume``, named in the refusal; None for a
        command without one.

    Returns
    -------
    RunStart

    Raises
    ------
    OutputError
        If ``run_dir`` holds a run this one must neither continue nor overwrite.
    """
    run_dir = Path(run_dir)
    _PROGRESS.clear()
    _PROGRESS["run_dir"] = str(run_dir)
    settings = run_settings(config, task)
    or_resume = f"rerun with {resume_option} to continue it with these settings, or " if resume_option else ""
    record_path = run_dir / RECORD_NAME
    if not record_path.is_file():
        checkpoints = sorted(run_dir.rglob("*.pt")) if run_dir.is_dir() else []
        if not checkpoints or resume:
            return RunStart(resume=bool(checkpoints))
        msg = (f"{run_dir} holds checkpoints ({checkpoints[0].relative_to(run_dir)}) but no {RECORD_NAME} "
               f"saying how they were trained; {or_resume}train into a fresh --out")
        raise OutputError(msg)
    record = _read_record(record_path)
    recorded = run_settings(record.get("config") or {}, record.get("task"))
    differences = _differences(recorded, settings)
    if not differences:
        summary = finished_summary(run_dir, settings)
        if summary is not None:
            _PROGRESS["finished"] = True
            log.warning("%s: this run finished already (%s); nothing was trained or written. Train into a "
                        "fresh --out to train again", run_dir, FINISHED_NAME)
        return RunStart(resume=True, summary=summary)
    changed = ", ".join(differences[:3]) + (f" and {len(differences) - 3} more" if len(differences) > 3 else "")
    if not resume:
        msg = f"{run_dir} holds a run with other settings ({changed}); {or_resume}train into a fresh --out"
        raise OutputError(msg)
    network = [d for d in differences if d.split(" ")[0] == "model" or d.startswith("model_kwargs.")]
    if network:
        msg = (f"{run_dir}: cannot resume: its run trains another network ({', '.join(network)}); "
               "train into a fresh --out")
        raise OutputError(msg)
    log.info("%s: continuing its run with changed settings: %s", run_dir, changed)
    return RunStart(resume=True)


def finished_summary(run_dir: str | Path, settings: dict) -> dict | None:
    """The summary :func:`mark_finished` stored in ``run_dir`` for these settings, else None."""
    path = Path(run_dir) / FINISHED_NAME
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("settings") != settings:
        return None
    return record.get("summary")


def mark_finished(run_dir: str | Path, config, task: dict | None, summary: dict) -> None:
    """Record that the run in ``run_dir`` is done, with the summary a rerun returns (primary process only).

    Called once everything after the fit (tuning, calibration) is written:
    :func:`start_run` then answers a rerun with ``summary`` instead of training.
    """
    _PROGRESS.update(run_dir=str(run_dir), finished=True)
    if not process_info().is_primary:
        return
    record = {"settings": run_settings(config, task), "summary": summary}
    # numpy scalars and paths in a summary are written as numbers and strings
    text = json.dumps(record, indent=2, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    with atomic_path(Path(run_dir) / FINISHED_NAME) as tmp:
        tmp.write_text(text + "\n")


def rerun_hint() -> str | None:
    """What rerunning an interrupted training command does, or None if this process started no training run.

    Examples
    --------
    >>> forget_progress()  # what an earlier run in this process left
    >>> _PROGRESS.update(run_dir="runs/bars", next_epoch=3, epochs=20)
    >>> rerun_hint()
    'runs/bars holds 2 of 20 epochs; rerun the same command (same --out) to resume from epoch 3'
    >>> forget_progress()
    >>> rerun_hint() is None
    True
    """
    if not _PROGRESS:
        return None
    run_dir, next_epoch = _PROGRESS["run_dir"], _PROGRESS.get("next_epoch")
    if _PROGRESS.get("finished"):
        return f"{run_dir} is finished and kept; rerun the same command (same --out) to go on from there"
    if _PROGRESS.get("fitted"):
        return f"{run_dir} is trained; rerun the same command (same --out) to finish the steps after training"
    if not next_epoch or next_epoch == 1:
        return f"no epoch of {run_dir} was saved; rerun the same command (same --out) to start it again"
    return (f"{run_dir} holds {next_epoch - 1} of {_PROGRESS['epochs']} epochs; rerun the same command "
            f"(same --out) to resume from epoch {next_epoch}")


def forget_progress() -> None:
    """Forget this process's training progress (a command ended: the next one starts with none)."""
    _PROGRESS.clear()


def concat_batches(batches):
    """Concatenate a list of batch outputs or targets (tensors or dicts of tensors)."""
    import torch

    first = batches[0]
    if isinstance(first, dict):
        return {k: torch.cat([b[k] for b in batches]) for k in first}
    return torch.cat(batches)


def _to_device(value, device):
    if isinstance(value, dict):
        return {k: v.to(device) for k, v in value.items()}
    return value.to(device)


def _seed_worker(worker_id):
    # DataLoader gives each worker a distinct torch seed; numpy and random
    # must follow it or augmentations repeat across workers (topaz #260).
    import random

    import numpy as np
    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


@contextlib.contextmanager
def _stops_held():
    """Hold Ctrl-C and SIGTERM back while an epoch's files are written, so a stop lands after all of them.

    A stop that arrives meanwhile is noted and raised again at the end, to
    whatever handled it before. Outside the main thread (where signals are
    not handled) nothing changes.
    """
    held = []
    try:
        previous = {stop: signal.signal(stop, lambda signum, frame: held.append(signum))
                    for stop in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
    if held:
        signal.raise_signal(held[0])


def predict_dataset(model, dataset, batch_size, device):
    """Run a model over a dataset in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
    dataset : torch.utils.data.Dataset
        Yields ``(x, y)`` pairs.
    batch_size : int
    device : torch.device

    Returns
    -------
    outputs, targets
        Concatenated model outputs and targets (on CPU).
    """
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    outputs, targets = [], []
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            outputs.append(_to_device(model(x.to(device)), "cpu"))
            targets.append(y)
    return concat_batches(outputs), concat_batches(targets)


def fit(model_name, model_kwargs, train_set, val_set, loss_fn, config, run_dir,
        score_fn=None, meta=None, resume=False, progress=True, stop_after=None, init_state=None):
    """Train a registered model, checkpointing every epoch.

    Parameters
    ----------
    model_name : str
        Registered model name.
    model_kwargs : dict
        Keyword arguments of the model factory.
    train_set, val_set : torch.utils.data.Dataset
        Yield ``(x, y)``; ``y`` may be a tensor or a dict of tensors.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar tensor``.
    config : deepscope.config.TrainConfig
    run_dir : str or Path
        Where checkpoints and ``history.csv`` go (written by rank 0 only).
    score_fn : callable, optional
        ``score_fn(outputs, targets) -> float``, higher is better, on the
        whole validation set; defaults to minus the validation loss.
    meta : dict, optional
        Task metadata stored in every checkpoint (class names, threshold ...).
    resume : bool
        Continue from ``run_dir/last.pt`` if it exists.
    progress : bool
        Show a progress bar on stderr.
    stop_after : int, optional
        Return after this many epochs of the schedule, as if interrupted
        (the schedule still spans ``config.epochs``); for resumption tests
        and time-boxed runs.
    init_state : dict, optional
        Weights of the same network to start from instead of random ones
        (fine-tuning); a resumed run continues from its own ``last.pt``.

    Returns
    -------
    FitResult
    """
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    from deepscope.registry import create_model

    run_dir = Path(run_dir)
    device = select_device(config.device)
    dist_info = init_distributed(device)
    if device.type == "cuda":
        device = select_device(config.device, dist_info.local_rank)
    if config.threads:
        torch.set_num_threads(config.threads)

    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = create_model(model_name, **model_kwargs).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, config.epochs) / config.epochs))
    )
    history, best_score, best_epoch, start_epoch, bad_epochs = [], -math.inf, -1, 0, 0

    if dist_info.is_primary:
        run_dir.mkdir(parents=True, exist_ok=True)
    last_path = run_dir / CHECKPOINT_NAME
    if resume and last_path.is_file():
        state = load_checkpoint(last_path)
        if state["model"] != model_name:
            msg = f"{last_path}: cannot resume: it holds model {state['model']!r}, not {model_name!r}"
            raise ModelError(msg)
        try:
            model.load_state_dict(state["state_dict"])
        except RuntimeError:
            msg = f"{last_path}: cannot resume: its weights do not fit {model_name} with {model_kwargs}"
            raise ModelError(msg) from None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        start_epoch, bad_epochs = state["epoch"] + 1, state["bad_epochs"]
        if dist_info.is_primary:
            log.info("resuming %s from epoch %d", run_dir, start_epoch + 1)
    elif init_state is not None:
        model.load_state_dict(init_state)
    if dist_info.enabled:
        # A rank that cannot see last.pt (run directory not on a shared file
        # system) would train a different schedule and hang the others.
        primary_start = from_primary(dist_info, [start_epoch], device)[0]
        if sum_over_ranks(dist_info, [float(start_epoch != primary_start)], device)[0]:
            msg = (f"{last_path}: not every rank starts from the same epoch; under torchrun the run "
                   "directory must be on a file system that every process can read")
            raise ModelError(msg)

    train_model = model
    if dist_info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    sampler = (
        DistributedSampler(train_set, dist_info.world_size, dist_info.rank, shuffle=True, seed=config.seed)
        if dist_info.enabled else None
    )
    score_fn = score_fn or (lambda out, tgt: -float(loss_fn(out, tgt)))
    _PROGRESS.update(run_dir=str(run_dir), next_epoch=start_epoch + 1, epochs=config.epochs, fitted=False)

    complete = True
    for epoch in range(start_epoch, config.epochs):
        if bad_epochs >= config.patience:
            break
        if stop_after is not None and epoch >= stop_after:
            complete = False
            break
        # Re-seed from (seed, rank, epoch) so a resumed run replays the same
        # shuffles and augmentations as an uninterrupted one.
        torch.manual_seed(config.seed + 1000 * epoch + dist_info.rank)
        shuffle_gen = torch.Generator().manual_seed(config.seed + epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        # Each rank sees only its share of the set: dropping the last
        # partial batch of a share smaller than a batch would train on nothing.
        loader = DataLoader(
            train_set, batch_size=config.batch_size, sampler=sampler, shuffle=sampler is None,
            generator=shuffle_gen, num_workers=config.num_workers, worker_init_fn=_seed_worker,
            drop_last=(len(sampler) if sampler is not None else len(train_set)) > config.batch_size,
        )
        train_model.train()
        total, count = 0.0, 0
        bar = progress_bar(loader, enabled=progress and dist_info.is_primary,
                           desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for x, y in bar:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(train_model(x.to(device)), _to_device(y, device))
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            count += len(x)
            bar.set_postfix(loss=f"{total / count:.4f}")
        scheduler.step()
        total, count = sum_over_ranks(dist_info, [total, count], device)
        sync_buffers(dist_info, model)

        # The primary rank scores the whole validation set and the others
        # take its numbers, so every rank makes the same stopping decision.
        val_loss, score = math.nan, math.nan
        if dist_info.is_primary:
            outputs, targets = predict_dataset(model, val_set, config.batch_size, device)
            val_loss = float(loss_fn(outputs, targets))
            score = float(score_fn(outputs, targets))
        val_loss, score = from_primary(dist_info, [val_loss, score], device)
        improved = score > best_score
        if improved:
            best_score, best_epoch, bad_epochs = score, epoch, 0
        else:
            bad_epochs += 1
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1),
                        "val_loss": val_loss, "val_score": score})
        if dist_info.is_primary:
            log.info("epoch %d: train loss %.4f, val loss %.4f, val score %.4f%s", epoch + 1,
                     total / max(count, 1), val_loss, score, " (best)" if improved else "")
            fields = dict(
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), epoch=epoch,
                history=history, best_score=best_score, best_epoch=best_epoch, bad_epochs=bad_epochs,
                config=dataclasses.asdict(config), meta=meta or {},
            )
            with _stops_held():
                # last.pt last: a run killed (SIGKILL) between these writes resumes from the epoch
                # before, which it trains again to the same weights, so best.pt and history.csv
                # never fall behind last.pt.
                if improved:
                    save_checkpoint(run_dir / BEST_NAME, model_name, model_kwargs, model, **fields)
                with atomic_path(run_dir / "history.csv") as tmp:
                    pd.DataFrame(history).to_csv(tmp, index=False)
                save_checkpoint(last_path, model_name, model_kwargs, model, **fields)
                _PROGRESS["next_epoch"] = epoch + 2
        else:
            _PROGRESS["next_epoch"] = epoch + 2
    check_in_sync(dist_info, model, device)
    # The other ranks return only once the primary has written its files,
    # so code after fit() may read them on any rank.
    barrier(dist_info)
    _PROGRESS["fitted"] = True
    return FitResult(best_score, best_epoch + 1, len(history), history, complete, len(history) - start_epoch)
