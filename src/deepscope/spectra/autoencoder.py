"""A spectral autoencoder trained without labels, and what it is good for: embed, denoise, compress, find outliers.

Each use reads spectra the way prediction does (same grid, same continuum),
runs the autoencoder and returns the figure that says whether it worked:
neighbour agreement of the 2-D map, SNR gain, compression ratio and error,
ranks of injected oddities; and ``failures``, the ``(path, reason)`` of
every unreadable input. ``model`` is an autoencoder checkpoint or run
directory (:func:`load_autoencoder`), ``device`` where it runs (``cpu``,
``cuda`` or ``cuda:N``) and ``threads`` torch's CPU threads (0 for all).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.config import TrainConfig
from deepscope.core.distributed import set_torch_threads
from deepscope.core.files import check_writable, write_table
from deepscope.errors import BatchError, ModelError
from deepscope.spectra.preparation.grid import Grid
from deepscope.spectra.io.files import find_spectra
from deepscope.spectra.preparation.labelled import load_prepared
from deepscope.spectra.train import fit_autoencoder

log = logging.getLogger(__name__)


def train_autoencoder(inputs: Sequence[str | Path], run_dir: str | Path, config: TrainConfig, grid: Grid = Grid(),
                      min_coverage: float = 0.4, progress: bool = True) -> dict:
    """Train a :func:`~deepscope.spectra.models.spectra_autoencoder` on spectrum files or directories.

    A rerun into the same run directory with the same settings resumes it (a
    finished one returns its summary untouched); other settings are refused
    (:func:`~deepscope.core.trainer.start_run`). Returns counts and the best
    validation reconstruction error.
    """
    import dataclasses

    from deepscope.config import prepare_run_dir
    from deepscope.core.trainer import mark_finished, start_run

    paths = find_spectra(inputs)
    run_dir = check_writable(run_dir, is_dir=True)
    config = dataclasses.replace(config, model="spectra_autoencoder")
    task = {"inputs": [str(p) for p in inputs], "grid": grid.as_dict(), "min_coverage": min_coverage}
    start = start_run(run_dir, config, task, resume_option=None)
    if start.summary is not None:
        return start.summary
    x, _, failures = load_prepared(paths, grid, min_coverage, progress=progress)
    for path, reason in failures:
        log.warning("skipped %s: %s", path, reason)
    prepare_run_dir(run_dir, config, task)
    result = fit_autoencoder(x, run_dir, config, grid, min_coverage, np.random.default_rng(config.seed), progress,
                             start.resume)
    summary = {"n_spectra": len(x), "skipped": len(failures), "best_val_mse": -result.best_score,
               "best_epoch": result.best_epoch}
    if result.complete:
        mark_finished(run_dir, config, task, summary)
    return summary


def load_autoencoder(path: str | Path, device: str = "cpu") -> tuple:
    """An autoencoder (in eval mode, on ``device``) and its metadata, the grid a :class:`Grid`.

    ``path`` is a ``spectra autoencoder pretrain`` run directory or ``.pt``
    file, or a classifier's run directory whose ``pretrain`` holds one.

    Raises
    ------
    ModelError
        If the path is missing or holds no autoencoder.
    """
    from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint
    from deepscope.core.distributed import select_device
    from deepscope.registry import resolve_model

    torch_device = select_device(device)  # a missing GPU is reported before anything is read
    # resolve_model gives the same message as every --model for a missing path;
    # no autoencoder ships, so a shipped name ends in the "not an autoencoder" error below.
    path = resolve_model(path, "spectra")
    if path.is_dir() and (path / "pretrain").is_dir() and not (path / "best.pt").exists():
        path = path / "pretrain"
    record = load_checkpoint(path)
    if record["model"] != "spectra_autoencoder":
        if (path / "pretrain").is_dir():
            record = load_checkpoint(path / "pretrain")
        else:
            msg = f"{path}: holds {record['model']!r}, not a spectra_autoencoder"
            raise ModelError(msg)
    meta = dict(record.get("meta", {}))
    meta["grid"] = Grid(**meta["grid"])
    return model_from_checkpoint(record).to(torch_device), meta


def _run(model, x, batch_size=512):
    """Codes and reconstructions of prepared spectra, computed where the model is, returned on the CPU."""
    import torch

    device = next(model.parameters()).device
    codes, recon = [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
            code = model.encode(batch)
            codes.append(code.cpu().numpy())
            recon.append(model.decode(code).cpu().numpy())
    return np.concatenate(codes), np.concatenate(recon)


def _start(out, model, device, threads):
    """The autoencoder and its metadata, once ``out`` is known to be writable."""
    check_writable(out)
    set_torch_threads(threads)
    return load_autoencoder(model, device)


def _load(inputs, meta):
    paths = find_spectra(inputs)
    x, good, failures = load_prepared(paths, meta["grid"], meta["min_coverage"])
    if not len(x):
        raise BatchError(failures)
    return [str(paths[i]) for i in good], x, failures


def _rms_error(a, b, mask):
    return np.sqrt(((a - b) ** 2 * mask).sum(1) / np.maximum(mask.sum(1), 1))


def add_noise(x: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of prepared spectra ``(..., 2, n)`` with white noise of sigma ``1 / snr`` (the continuum is 1).

    Masked pixels stay 0.
    """
    noisy = x.copy()
    noise = rng.normal(0.0, 1.0 / snr, size=noisy[..., 0, :].shape).astype(noisy.dtype)
    noisy[..., 0, :] = (noisy[..., 0, :] + noise) * noisy[..., 1, :]
    return noisy


def embed(inputs: Sequence[str | Path], out_png: str | Path, model: str | Path,
          labels: Sequence[str | Path] | None = None, device: str = "cpu", threads: int = 0) -> dict:
    """A 2-D map (PCA of the codes) of spectra files or directories in a PNG, coloured by main class.

    The files of the ``labels`` tables join ``inputs``, their ``sptype``
    colouring the points. Returns ``n`` and ``knn_main_class_accuracy``: how
    often the 5 nearest neighbours on the map vote a labelled spectrum's own
    main class (5-fold cross-validated), against ``chance`` (the largest
    class share).
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from sklearn.decomposition import PCA
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from deepscope.core.files import atomic_path
    from deepscope.spectra.io.files import spectra_manifest
    from deepscope.spectra.mktype import parse_mk

    net, meta = _start(out_png, model, device, threads)
    paths, x, failures = _load(inputs, meta) if inputs else ([], np.zeros((0, 2, meta["grid"].n), np.float32), [])
    classes = [""] * len(paths)
    if labels:
        manifest = spectra_manifest(labels)
        lx, good, more = load_prepared(list(manifest["path"]), meta["grid"], meta["min_coverage"])
        failures += more
        x = np.concatenate([x, lx])
        for sptype in manifest["sptype"].iloc[good]:
            mk = parse_mk(sptype)
            classes.append(mk.main_class if mk else "")
    codes, _ = _run(net, x)
    points = PCA(2, random_state=0).fit_transform(codes)
    classes = np.array(classes)
    known = classes != ""
    fig = Figure(figsize=(6, 5), dpi=110)
    ax = fig.subplots()
    ax.scatter(*points[~known].T, s=4, c="silver", marker="x", label="unlabelled")
    for cls, colour in zip("OBAFGKM", colormaps["turbo"](np.linspace(0.05, 0.95, 7))):
        sel = classes == cls
        if sel.any():
            ax.scatter(*points[sel].T, s=6, color=colour, label=cls)
    ax.set(xlabel="PC 1 of autoencoder code", ylabel="PC 2", title="spectra embedded by the autoencoder")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    result = {"n": len(x), "failures": failures}
    if known.sum() >= 10:
        knn = KNeighborsClassifier(5)
        result["knn_main_class_accuracy"] = float(cross_val_score(knn, points[known], classes[known], cv=5).mean())
        result["chance"] = float(pd.Series(classes[known]).value_counts(normalize=True).iloc[0])
    return result


def denoise(inputs: Sequence[str | Path], out: str | Path, model: str | Path, snr: float = 10.0, seed: int = 0,
            device: str = "cpu", threads: int = 0) -> dict:
    """How much the autoencoder raises the SNR of spectra with white noise at ``snr`` (seeded by ``seed``) added.

    The reconstruction of each noisy spectrum is compared with the clean one;
    ``out`` (``.csv``/``.parquet``) gets each spectrum's rms error before and
    after. Returns ``snr_in``, ``snr_out`` (medians of 1 / rms residual) and
    ``snr_gain``.
    """
    net, meta = _start(out, model, device, threads)
    paths, x, failures = _load(inputs, meta)
    noisy = add_noise(x, snr, np.random.default_rng(seed))
    _, recon = _run(net, noisy)
    mask = x[:, 1]
    before = _rms_error(noisy[:, 0], x[:, 0], mask)
    after = _rms_error(recon, x[:, 0], mask)
    write_table(pd.DataFrame({"file": paths, "rms_noisy": before, "rms_denoised": after}), out)
    snr_in, snr_out = float(np.median(1 / before)), float(np.median(1 / after))
    return {"n": len(x), "failures": failures, "snr_in": snr_in, "snr_out": snr_out,
            "snr_gain": snr_out / snr_in}


def compress(inputs: Sequence[str | Path], out: str | Path, model: str | Path, device: str = "cpu",
             threads: int = 0) -> dict:
    """Store spectra as autoencoder codes: ``out`` (``.csv``/``.parquet``) gets ``file, code_0 ...``.

    Returns ``compression_ratio`` (grid flux values per code value) and
    ``rms_error`` (median reconstruction error, continuum units).
    """
    net, meta = _start(out, model, device, threads)
    paths, x, failures = _load(inputs, meta)
    codes, recon = _run(net, x)
    table = pd.DataFrame(codes, columns=[f"code_{i}" for i in range(codes.shape[1])])
    table.insert(0, "file", paths)
    write_table(table, out)
    err = _rms_error(recon, x[:, 0], x[:, 1])
    return {"n": len(x), "failures": failures, "compression_ratio": x.shape[2] / codes.shape[1],
            "rms_error": float(np.median(err))}


def oddities(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` oddities ``(n, 2, grid.n)`` made from prepared spectra: reversed, noise-only and emission-line."""
    rng = np.random.default_rng(seed)
    out = x[rng.choice(len(x), n)].copy()
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out[i, 0] = out[i, 0, ::-1]  # wavelength axis reversed
        elif kind == 1:
            out[i, 0] = rng.normal(0, 0.3, out.shape[2]) * out[i, 1]
        else:
            spikes = rng.choice(out.shape[2], 6)
            out[i, 0, spikes] += 1.2  # strong emission lines
    return out


def outliers(inputs: Sequence[str | Path], out: str | Path, model: str | Path, inject: int = 0, seed: int = 0,
             device: str = "cpu", threads: int = 0) -> dict:
    """Rank spectra by reconstruction error in ``out``, most unusual first.

    ``inject`` :func:`oddities` (seeded by ``seed``) join them as
    ``injected:N``; the result then says how many rank in the top
    ``inject`` (``injected_in_top``) and the ``worst_injected_rank``.
    """
    net, meta = _start(out, model, device, threads)
    paths, x, failures = _load(inputs, meta)
    if inject:
        x = np.concatenate([x, oddities(x, inject, seed)])
        paths = paths + [f"injected:{i}" for i in range(inject)]
    _, recon = _run(net, x)
    err = _rms_error(recon, x[:, 0], x[:, 1])
    table = pd.DataFrame({"file": paths, "reconstruction_rms": err}).sort_values(
        "reconstruction_rms", ascending=False, ignore_index=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    write_table(table, out)
    result = {"n": len(x), "failures": failures}
    if inject:
        ranks = table.loc[table["file"].str.startswith("injected:"), "rank"]
        result["injected_in_top"] = int((ranks <= inject).sum())
        result["worst_injected_rank"] = int(ranks.max())
    return result
