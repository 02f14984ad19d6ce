"""What the spectra commands run: files in, tables, checkpoints and reports out.

Kept apart from :mod:`deepscope.spectra.task` (arrays in, tables out) because
these functions own files: inputs and outputs are validated before any long
work, outputs are written atomically, and a bad file costs only itself.
"""

import dataclasses
import logging

import numpy as np
import pandas as pd

from deepscope.core.checkpoint import sha256
from deepscope.core.files import check_writable, collect_inputs, write_table
from deepscope.errors import BatchError, InputError
from deepscope.spectra.ensemble import DEFAULT_MEMBERS, check_members, train_ensemble
from deepscope.spectra.io import spectra_manifest
from deepscope.spectra.preprocess import Grid
from deepscope.spectra.task import (
    DEFAULT_CONFIG,
    TemplateMatcher,
    load_model,
    load_prepared,
    outputs_to_rows,
    predict_outputs,
    score_predictions,
)

log = logging.getLogger(__name__)

# Directories are searched for these only: a folder's README.txt or list.txt
# is not a spectrum, while a text spectrum named explicitly is still read.
DIRECTORY_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".rbn", ".rbx", ".rec",
                      ".rbn.gz", ".rbx.gz", ".rec.gz")
METHOD_TEMPLATE = "template matching (chi-square)"


def _labelled(labels_paths, grid, min_coverage, workers=2, progress=True, short=False):
    """Manifest rows that loaded, their prepared arrays, the failures (and, with ``short``, short copies)."""
    manifest = spectra_manifest(labels_paths)
    x, good, *rest = load_prepared(list(manifest["path"]), grid, min_coverage, workers, progress, short)
    return manifest.iloc[good].reset_index(drop=True), x, *rest


def train_spectra(labels_paths, run_dir, config=DEFAULT_CONFIG, grid=Grid(), min_coverage=0.4,
                  pool_dirs=(), pretrain_epochs=40, progress=True, members=DEFAULT_MEMBERS):
    """Train a spectral classifier on one or more labelled libraries.

    Parameters
    ----------
    labels_paths : sequence of str or Path
        ``labels.csv`` tables (``file``, ``sptype``).
    run_dir : str or Path
    config : deepscope.config.TrainConfig
    grid : Grid
    min_coverage : float
    pool_dirs : sequence of str or Path
        Extra unlabelled spectra (files or directories) for autoencoder
        pretraining; the labelled spectra always join the pool.
    pretrain_epochs : int
    progress : bool
    members : int
        Networks trained apart (seeds ``config.seed``, ``config.seed + 1``
        ...) and joined into one averaging ensemble in ``run_dir/best.pt``.

    Returns
    -------
    dict
        Summary: mean of the members' best validation scores, the first
        member's best epoch, each member's, counts, skipped files.
    """
    from deepscope.config import prepare_run_dir
    from deepscope.core.distributed import process_info

    check_members(members)
    run_dir = check_writable(run_dir, is_dir=True)
    manifest, x, failures, short_x = _labelled(labels_paths, grid, min_coverage, progress=progress, short=True)
    for path, reason in failures:
        log.warning("skipped %s: %s", path, reason)
    pool_x = None
    if pool_dirs and config.model == "spectra_ae_classifier":
        pool_paths = collect_inputs(pool_dirs, DIRECTORY_SUFFIXES)
        pool_x, _, pool_failures = load_prepared(pool_paths, grid, min_coverage, progress=progress)
        log.info("unlabelled pool: %d spectra (%d unreadable)", len(pool_x), len(pool_failures))
    prepare_run_dir(run_dir, config, {"data": [str(p) for p in labels_paths], "grid": grid.as_dict(),
                                      "min_coverage": min_coverage, "pool": [str(p) for p in pool_dirs]})
    if failures and process_info().is_primary:
        write_table(pd.DataFrame(failures, columns=["file", "reason"]), run_dir / "skipped.csv")
    # File hashes, not names, so evaluate also spots renamed copies of training files.
    meta = {"train_sha256": sorted({sha256(p) for p in manifest["path"]}),
            "libraries": sorted(set(manifest["library"]))}
    results = train_ensemble(x, list(manifest["sptype"]), run_dir, config, members, grid=grid,
                             min_coverage=min_coverage, pool_x=pool_x, pretrain_epochs=pretrain_epochs, meta=meta,
                             progress=progress, short_x=short_x)
    scores = [r.best_score for r in results]
    return {"best_val_score": float(np.mean(scores)), "best_epoch": results[0].best_epoch,
            "member_val_scores": scores, "member_best_epochs": [r.best_epoch for r in results],
            "n_spectra": len(x), "skipped": len(failures), "model": config.model, "members": members}


class SpectraPredictor:
    """A trained classifier as a batch predictor (see :mod:`deepscope.core.inference`).

    Parameters
    ----------
    model : torch.nn.Module
    meta : dict
        With ``grid`` and ``min_coverage``, as :func:`load_model` returns.
    """

    def __init__(self, model, meta):
        self.model = model.eval()
        self.grid = meta["grid"]
        self.min_coverage = meta["min_coverage"]

    def load_input(self, path):
        """Read one spectrum and put it on the model's grid."""
        from deepscope.spectra.io import read_spectrum
        from deepscope.spectra.preprocess import prepare

        return prepare(read_spectrum(path), self.grid, self.min_coverage, path=str(path))

    def rows(self, items):
        """One row per prepared spectrum (:data:`OUTPUT_COLUMNS`)."""
        return outputs_to_rows(predict_outputs(self.model, np.stack(items), len(items)))


# Spectra per partition: the unit of resuming and of Dask tasks.
PARTITION_SIZE = 1024


def predict_spectra(inputs, out, model=None, options=None):
    """Classify spectrum files and write one row per readable file.

    A run killed part-way and restarted with the same arguments skips the
    partitions it had finished (see :mod:`deepscope.core.parts`).

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, directories and uncompressed ``.tar`` shards.
    out : str or Path
        ``.csv`` or ``.parquet``, or a directory to receive Parquet parts.
    model : str or Path, optional
        Checkpoint or run directory; the shipped model by default.
    options : BatchOptions, optional
        Inputs, batching and cluster (default: :class:`BatchOptions` with
        :data:`PARTITION_SIZE`).

    Returns
    -------
    int
        Number of rows written.

    Raises
    ------
    BatchError
        After writing the good rows, if some inputs could not be read.
    """
    import torch

    from deepscope.core.inference import describe_job, predict_to_table
    from deepscope.core.options import BatchOptions
    from deepscope.core.sources import InputStream
    from deepscope.registry import resolve_model

    options = options or BatchOptions(partition_size=PARTITION_SIZE)
    options.check()
    stream = InputStream(inputs, DIRECTORY_SUFFIXES, options.catalog, options.path_column)
    if options.threads:
        torch.set_num_threads(options.threads)
    model_path = resolve_model(model, "spectra")
    predictor = SpectraPredictor(*load_model(model_path))
    job = describe_job("spectra predict", stream, model_path, options.partition_size)
    return predict_to_table(stream, predictor, out, job, options, desc="classify")


def _figures(report, name, detail):
    name = name.split(" (")[0]  # 'network (runs/x)' -> 'network': titles must fit the figure
    from deepscope.core.metrics import confusion
    from deepscope.core.plots import confusion_figure, scatter_figure
    from deepscope.spectra.mktype import LUM_NAMES, MAIN_CLASSES

    t = detail.dropna(subset=["true_t"])
    fig = scatter_figure(t["true_t"], t["pred_t"], "expected type (O0=0, B0=10, A0=20 ... M0=60)",
                         "predicted type", f"{name}: predicted vs expected")
    report.figure(fig, f"scatter_{name[:8].replace(' ', '_')}", "temperature index, subclass units")
    index = {c: i for i, c in enumerate(MAIN_CLASSES)}
    matrix = confusion(detail["true_main"].map(index), detail["pred_main"].map(index), len(MAIN_CLASSES))
    report.figure(confusion_figure(matrix, list(MAIN_CLASSES), f"{name}: main class"),
                  f"confusion_main_{name[:8].replace(' ', '_')}")
    lum = detail.dropna(subset=["true_lum"])
    matrix = confusion(lum["true_lum"].astype(int) - 1, lum["pred_lum"].astype(int) - 1, len(LUM_NAMES))
    report.figure(confusion_figure(matrix, list(LUM_NAMES.values()), f"{name}: luminosity class"),
                  f"confusion_lum_{name[:8].replace(' ', '_')}")


def evaluate_spectra(labels_paths, out_dir, model=None, progress=True):
    """Score a classifier and the template-matching baseline on labelled spectra.

    The baseline's templates are the classifier's own training spectra
    (stored in its checkpoint), so both methods learn from the same data.

    Parameters
    ----------
    labels_paths : sequence of str or Path
    out_dir : str or Path
        Gets ``metrics.csv``, ``predictions.csv`` and ``report.html``.
    model : str or Path, optional
        The shipped model by default.
    progress : bool

    Returns
    -------
    pandas.DataFrame
        One row of metrics per method.

    Raises
    ------
    BatchError
        After writing the results, if some labelled files could not be read.
    """
    from deepscope.core.report import Report

    out_dir = check_writable(out_dir, is_dir=True)
    net, meta = load_model(model)
    manifest, x, failures = _labelled(labels_paths, meta["grid"], meta["min_coverage"], progress=progress)
    if not len(x):
        raise BatchError(failures)
    trained_on = set(meta.get("train_sha256", []))
    overlap = sum(sha256(p) in trained_on for p in manifest["path"])
    methods = {f"network ({model or 'shipped'})": outputs_to_rows(predict_outputs(net, x)),
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
    """Leave-one-library-out evaluation of every model and the baseline.

    For each library with at least ``min_stars`` usable types, every model
    is trained on the other libraries (with their short copies, as
    :func:`train_spectra` trains) and tested on it; the template matcher
    uses the same training spectra. The autoencoder's unlabelled pool is the
    training libraries plus ``pool_dirs``, never the held-out library.

    Parameters
    ----------
    labels_paths : sequence of str or Path
    out_dir : str or Path
        Gets ``loo.csv``, per-run directories and ``report.html``.
    models : sequence of str
    config : deepscope.config.TrainConfig
    grid : Grid
    min_coverage : float
    min_stars : int
    pool_dirs : sequence of str or Path
    pretrain_epochs : int
    progress : bool
    members : int
        Ensemble members per model, as :func:`train_spectra` trains them.

    Returns
    -------
    pandas.DataFrame
        One row per (held-out library, method).
    """
    from deepscope.core.report import Report
    from deepscope.spectra.task import type_targets

    check_members(members)
    out_dir = check_writable(out_dir, is_dir=True)
    manifest, x, failures, short_x = _labelled(labels_paths, grid, min_coverage, progress=progress, short=True)
    for path, reason in failures:
        log.warning("skipped %s: %s", path, reason)
    usable = type_targets(list(manifest["sptype"]))["usable"]
    counts = manifest[usable].groupby("library").size()
    held_out = [lib for lib, n in counts.items() if n >= min_stars]
    if not held_out:
        msg = f"no library has {min_stars} usable types; libraries: {dict(counts)}"
        raise InputError(msg)
    pool_x = None
    if pool_dirs:
        pool_x, _, _ = load_prepared(collect_inputs(pool_dirs, DIRECTORY_SUFFIXES), grid, min_coverage)
    rows = []
    for library in held_out:
        test = (manifest["library"] == library).to_numpy()
        train_x, train_types = x[~test], list(manifest["sptype"][~test])
        sptypes = list(manifest["sptype"][test])
        for name in models:
            run_dir = out_dir / "runs" / library / name
            train_ensemble(train_x, train_types, run_dir, dataclasses.replace(config, model=name), members,
                           grid=grid, min_coverage=min_coverage, pool_x=pool_x, pretrain_epochs=pretrain_epochs,
                           progress=progress, short_x=short_x[~test])
            net, meta = load_model(run_dir)
            metrics, _ = score_predictions(sptypes, pd.DataFrame(outputs_to_rows(predict_outputs(net, x[test]))))
            rows.append({"held_out": library, "method": name, **metrics})
            log.info("%s held out, %s: %s", library, name, metrics)
        matcher = TemplateMatcher.from_meta(meta)
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
