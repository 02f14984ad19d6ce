"""Scoring spectral classifiers against catalogue types, beside the template baseline.

:func:`score_predictions` turns predicted rows and catalogue strings into
metrics; :func:`evaluate_spectra` scores one trained model on labelled
libraries; :func:`crossval_spectra` holds each library out in turn. Reports
name classes (O ... M, I ... VI), never indices.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.checkpoint import sha256
from deepscope.core.distributed import set_torch_threads
from deepscope.core.files import check_writable, write_table
from deepscope.errors import BatchError, InputError
from deepscope.registry import check_arch
from deepscope.spectra.mktype import LUM_NAMES, MAIN_CLASSES, parse_mk
from deepscope.spectra.predictor import SpectraPredictor
from deepscope.spectra.io.files import find_spectra
from deepscope.spectra.preparation.labelled import load_labelled, load_prepared
from deepscope.spectra.preparation.grid import Grid
from deepscope.spectra.targets import type_targets
from deepscope.spectra.templates import TemplateMatcher
from deepscope.spectra.train import DEFAULT_CONFIG, DEFAULT_MEMBERS, check_members, train_ensemble

log = logging.getLogger(__name__)

METHOD_TEMPLATE = "template matching (chi-square)"


def score_predictions(sptypes: Sequence[str], predicted: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Compare predicted rows (``main_class``, ``temperature_index``, ``lum_class``) with catalogue types.

    Returns
    -------
    metrics : dict
        ``n``, ``main_class_accuracy``, ``subclass_mae``,
        ``within_one_subclass``, ``lum_class_accuracy`` (and their counts).
    detail : pandas.DataFrame
        Per spectrum with a usable type: true and predicted main class, index, luminosity class.

    Raises
    ------
    InputError
        If no type is usable.
    """
    lum_number = {v: k for k, v in LUM_NAMES.items()}
    rows = []
    for text, (_, pred) in zip(sptypes, predicted.iterrows()):
        mk = parse_mk(text)
        if mk is None:
            continue
        p_lum = lum_number[pred["lum_class"]]
        true_lum = None
        if mk.lum_class is not None:
            # For a range ('IV-V') either end counts as right.
            options = {math.floor(mk.lum_class), math.ceil(mk.lum_class)}
            true_lum = p_lum if p_lum in options else round(mk.lum_class + 1e-9)
        rows.append({"true_main": mk.main_class, "pred_main": pred["main_class"],
                     "true_t": mk.temperature_index, "pred_t": float(pred["temperature_index"]),
                     "true_lum": true_lum, "pred_lum": p_lum})
    detail = pd.DataFrame(rows)
    if detail.empty:
        msg = "no spectrum has a usable MK type to score against"
        raise InputError(msg)
    t_rows = detail.dropna(subset=["true_t"])
    # The reported subclass is rounded to 0.5, so the error is measured on it.
    err = np.abs(np.round(2 * t_rows["pred_t"].clip(0, 69.5)) / 2 - t_rows["true_t"])
    lum_rows = detail.dropna(subset=["true_lum"])
    metrics = {
        "n": len(detail),
        "main_class_accuracy": float((detail["true_main"] == detail["pred_main"]).mean()),
        "n_subclass": len(t_rows),
        "subclass_mae": float(err.mean()) if len(t_rows) else math.nan,
        "within_one_subclass": float((err <= 1.0).mean()) if len(t_rows) else math.nan,
        "n_lum": len(lum_rows),
        "lum_class_accuracy": float((lum_rows["true_lum"] == lum_rows["pred_lum"]).mean())
        if len(lum_rows) else math.nan,
    }
    return metrics, detail


# Temperature-index ticks named as MK types, so a figure never shows a bare index.
TYPE_TICKS = {10 * i: f"{c}0" for i, c in enumerate(MAIN_CLASSES)}


def name_type_axes(fig) -> None:
    """Label both axes of a figure's temperature-index scatter with MK types (O0, B0 ... M0) instead of indices."""
    for axis in (fig.axes[0].xaxis, fig.axes[0].yaxis):
        axis.set_ticks(list(TYPE_TICKS), list(TYPE_TICKS.values()))


def _figures(report, name, detail):
    """Predicted-vs-expected scatter and main/luminosity-class confusion matrices, labelled with class names."""
    from deepscope.core.metrics import confusion
    from deepscope.core.plots import confusion_figure, scatter_figure

    name = name.split(" (")[0]  # 'network (runs/x)' -> 'network': titles must fit the figure
    t = detail.dropna(subset=["true_t"])
    fig = scatter_figure(t["true_t"], t["pred_t"], "expected type", "predicted type", f"{name}: predicted vs expected")
    name_type_axes(fig)
    report.figure(fig, f"scatter_{name[:8].replace(' ', '_')}", "MK type, in subclass steps (O0 ... M9)")
    index = {c: i for i, c in enumerate(MAIN_CLASSES)}
    matrix = confusion(detail["true_main"].map(index), detail["pred_main"].map(index), len(MAIN_CLASSES))
    report.figure(confusion_figure(matrix, list(MAIN_CLASSES), f"{name}: main class"),
                  f"confusion_main_{name[:8].replace(' ', '_')}")
    lum = detail.dropna(subset=["true_lum"])
    matrix = confusion(lum["true_lum"].astype(int) - 1, lum["pred_lum"].astype(int) - 1, len(LUM_NAMES))
    report.figure(confusion_figure(matrix, list(LUM_NAMES.values()), f"{name}: luminosity class"),
                  f"confusion_lum_{name[:8].replace(' ', '_')}")


def evaluate_spectra(labels_paths: Sequence[str | Path], out_dir: str | Path, model: str | Path | None = None,
                     progress: bool = True, device: str = "cpu", threads: int = 0, engine: str = "auto") -> pd.DataFrame:
    """Score a classifier and the template-matching baseline on labelled spectra; one row of metrics per method.

    The baseline's templates are the classifier's own training spectra
    (stored in its checkpoint), so both methods learn from the same data.

    Parameters
    ----------
    labels_paths : sequence of str or Path
    out_dir : str or Path
        Gets ``metrics.csv``, ``predictions.csv`` and ``report.html``.
    model : str or Path, optional
        Shipped name, run directory or checkpoint; the shipped model by default.
    progress : bool
    device, threads, engine
        Where and what runs the classifier (:meth:`SpectraPredictor.from_checkpoint`); threads 0 for all cores.

    Raises
    ------
    BatchError
        After writing the results, if some labelled files could not be read.
    """
    from deepscope.core.report import Report

    out_dir = check_writable(out_dir, is_dir=True)
    set_torch_threads(threads)
    predictor = SpectraPredictor.from_checkpoint(model, device, engine)
    meta = predictor.meta
    # Moved to rest as predict moves them, against the model's own templates.
    manifest, x, failures = load_labelled(labels_paths, meta["grid"], meta["min_coverage"], progress=progress,
                                          templates=predictor.velocity)
    if not len(x):
        raise BatchError(failures)
    trained_on = set(meta.get("train_sha256", []))
    overlap = sum(sha256(p) in trained_on for p in manifest["path"])
    methods = {f"network ({model or 'shipped'})": predictor.classify(x),
               METHOD_TEMPLATE: TemplateMatcher.from_meta(meta).predict(x)}
    report = Report(out_dir, "deepscope spectra evaluate")
    report.text(f"{len(x)} spectra from {', '.join(map(str, labels_paths))}; "
                f"{overlap} of them were in the training set of this model.")
    if overlap:
        log.warning("%d evaluation spectra were used to train this model: the scores are optimistic", overlap)
    table, predictions = [], []
    for name, rows in methods.items():
        pred = pd.DataFrame(rows)
        metrics, detail = score_predictions(list(manifest["sptype"]), pred)
        table.append({"method": name, **metrics})
        predictions.append(pred.assign(method=name, file=list(manifest["path"]),
                                       true_sptype=list(manifest["sptype"])))
        report.heading(name)
        _figures(report, name, detail)
    table = pd.DataFrame(table)
    report.heading("Metrics", level=2)
    report.table(table.round(3), index=False)
    write_table(table, out_dir / "metrics.csv")
    write_table(pd.concat(predictions, ignore_index=True), out_dir / "predictions.csv")
    report.write()
    if failures:
        raise BatchError(failures)
    return table


def crossval_spectra(labels_paths, out_dir, models=("spectra_ann", "spectra_cnn", "spectra_ae_classifier"),
                     config=DEFAULT_CONFIG, grid=Grid(), min_coverage=0.4, min_stars=50, pool_dirs=(),
                     pretrain_epochs=40, progress=False, members=DEFAULT_MEMBERS):
    """Leave-one-library-out evaluation of every model and the baseline; one row per (held-out library, method).

    For each library with at least ``min_stars`` usable types, every model
    is trained on the other libraries as ``spectra train`` trains
    (``members`` networks, short copies, calibrated) and tested on it; the
    template matcher uses the same training spectra. The autoencoder's
    unlabelled pool is the training libraries plus ``pool_dirs``, never the
    held-out library. ``out_dir`` gets ``loo.csv``, the run directories and
    ``report.html``; ``config`` trains every model, and its ``device`` scores them.
    A rerun with the same settings keeps every finished run (its model is
    only scored again) and resumes an unfinished one; a run with other
    settings is refused (:func:`~deepscope.core.trainer.start_run`).
    """
    from deepscope.config import prepare_run_dir
    from deepscope.core.report import Report
    from deepscope.core.trainer import mark_finished, start_run

    for name in models:
        check_arch(name, "spectra")
    check_members(members)
    out_dir = check_writable(out_dir, is_dir=True)
    manifest, x, failures, short_x = load_labelled(labels_paths, grid, min_coverage, progress=progress, short=True)
    for path, reason in failures:
        log.warning("skipped %s: %s", path, reason)
    usable = type_targets(list(manifest["sptype"]))["usable"]
    counts = manifest[usable].groupby("library").size()
    held_out = [lib for lib, n in counts.items() if n >= min_stars]
    if not held_out:
        msg = f"no library has {min_stars} usable types; libraries: {({lib: int(n) for lib, n in counts.items()})}"
        raise InputError(msg)
    pool_x = None
    if pool_dirs:
        pool_x, _, _ = load_prepared(find_spectra(pool_dirs), grid, min_coverage)
    rows = []
    for library in held_out:
        test = (manifest["library"] == library).to_numpy()
        train_x, train_types = x[~test], list(manifest["sptype"][~test])
        sptypes = list(manifest["sptype"][test])
        for name in models:
            run_dir, run_config = out_dir / "runs" / library / name, dataclasses.replace(config, model=name)
            task = {"data": [str(p) for p in labels_paths], "held_out": library, "grid": grid.as_dict(),
                    "min_coverage": min_coverage, "pool": [str(p) for p in pool_dirs], "members": members,
                    "pretrain_epochs": pretrain_epochs}
            start = start_run(run_dir, run_config, task, resume_option=None)
            if start.summary is None:
                prepare_run_dir(run_dir, run_config, task)
                results = train_ensemble(train_x, train_types, run_dir, run_config, members, grid=grid,
                                         min_coverage=min_coverage, pool_x=pool_x, pretrain_epochs=pretrain_epochs,
                                         progress=progress, short_x=short_x[~test], resume=start.resume)
                if all(r.complete for r in results):
                    mark_finished(run_dir, run_config, task, {"member_val_scores": [r.best_score for r in results]})
            predictor = SpectraPredictor.from_checkpoint(run_dir, config.device)
            metrics, _ = score_predictions(sptypes, pd.DataFrame(predictor.classify(x[test])))
            rows.append({"held_out": library, "method": name, **metrics})
            log.info("%s held out, %s: %s", library, name, metrics)
        matcher = TemplateMatcher.from_meta(predictor.meta)
        metrics, _ = score_predictions(sptypes, pd.DataFrame(matcher.predict(x[test])))
        rows.append({"held_out": library, "method": METHOD_TEMPLATE, **metrics})
        write_table(pd.DataFrame(rows), out_dir / "loo.csv")
    table = pd.DataFrame(rows)
    report = Report(out_dir, "deepscope spectra: leave-one-library-out")
    report.text("Each library is held out in turn; models train on the others (validation split "
                "drawn from the training libraries only).")
    report.table(table.round(3), index=False)
    report.write()
    return table
