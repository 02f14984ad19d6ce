"""Domain-free training loop: seeded, resumable, early-stopping, DDP-aware.

Every epoch writes ``last.pt`` (and ``best.pt`` when the validation score
improves) as plain-data checkpoints plus ``history.csv``. Randomness is
re-seeded from ``(seed, rank, epoch)`` at the start of each epoch, so a run
resumed from its last checkpoint reproduces an uninterrupted run exactly.
"""

import dataclasses
import logging
import math
from pathlib import Path

from deepscope.core.checkpoint import BEST_NAME, CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from deepscope.core.distributed import (
    barrier, check_in_sync, from_primary, init_distributed, select_device, sum_over_ranks, sync_buffers,
)
from deepscope.core.progress import progress_bar
from deepscope.errors import ModelError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FitResult:
    """Outcome of :func:`fit`."""

    best_score: float
    best_epoch: int
    epochs_run: int
    history: list


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
        score_fn=None, meta=None, resume=False, progress=True, stop_after=None):
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
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        start_epoch, bad_epochs = state["epoch"] + 1, state["bad_epochs"]
        if dist_info.is_primary:
            log.info("resuming %s from epoch %d", run_dir, start_epoch)
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

    for epoch in range(start_epoch, config.epochs):
        if bad_epochs >= config.patience or (stop_after is not None and epoch >= stop_after):
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
            save_checkpoint(last_path, model_name, model_kwargs, model, **fields)
            if improved:
                save_checkpoint(run_dir / BEST_NAME, model_name, model_kwargs, model, **fields)
            pd.DataFrame(history).to_csv(run_dir / "history.csv", index=False)
    check_in_sync(dist_info, model, device)
    # The other ranks return only once the primary has written its files,
    # so code after fit() may read them on any rank.
    barrier(dist_info)
    return FitResult(best_score, best_epoch + 1, len(history), history)
