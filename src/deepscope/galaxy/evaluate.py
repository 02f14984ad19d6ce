"""Evaluate a galaxy predictor on labelled cutouts: tables, figures, HTML report.

For a binary task: the precision/recall table of Abraham et al. (2018),
ROC, confusion matrix and calibration, on the chosen split and on its
size-matched subset (:mod:`deepscope.galaxy.apparent_size`); an occlusion
test (blurring the centre, where a bar lies, against an outer patch); the
external bar catalogues given (:mod:`deepscope.galaxy.bar_evidence`); the
measured bar lengths against the lengths volunteers drew (Hoyle et al. 2011),
for a model that measures bars (:mod:`deepscope.galaxy.bar_measure`); and
every headline figure, with the size-only baseline and the paper's
accuracy, in one summary table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from deepscope.core import plots
from deepscope.core.distributed import set_torch_threads
from deepscope.core.files import check_writable, write_table
from deepscope.core.manifest import manifest_from_labels
from deepscope.core.metrics import binary_summary, confusion, precision_recall_table
from deepscope.core.report import Report
from deepscope.errors import BatchError, InputError
from deepscope.galaxy.apparent_size import size_matched_indices
from deepscope.galaxy.bar_evidence import MATCH_RADIUS_ARCSEC, external_evidence, match_catalogue, summary_table
from deepscope.galaxy.classes import encode_labels
from deepscope.galaxy.crossmatch import sample_positions
from deepscope.galaxy.dataset import load_cutouts
from deepscope.galaxy.explain import region_occlusion_drop
from deepscope.galaxy.predictor import GalaxyPredictor

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# Row names of the paper's table for the bar task; other tasks use class names.
_BAR_ROW_NAMES = {"0": "Unbarred", "1": "Barred"}


def _read_split(labels_path, target, split):
    manifest = manifest_from_labels(labels_path, "file", required=[target])
    if split != "all":
        if "split" not in manifest or not (manifest["split"] == split).any():
            msg = f"{labels_path}: no rows with split == {split!r}; use --split all to evaluate every row"
            raise InputError(msg)
        manifest = manifest[manifest["split"] == split]
    return manifest.reset_index(drop=True)


def classification_tables(y_true: ArrayLike, y_pred: ArrayLike, class_names: list[str],
                          target: str) -> pd.DataFrame:
    """The precision/recall table, positive class first, with the paper's row names for bars.

    ``y_true``, ``y_pred`` are class indices into ``class_names``; the target
    ``barred`` gets the rows ``Barred``, ``Unbarred``. Columns ``Precision %``,
    ``Recall %``, ``Number in sample``, one row per class and ``Average``.

    Examples
    --------
    >>> classification_tables([1, 1, 0, 0], [1, 0, 0, 0], ["0", "1"], "barred").index.tolist()
    ['Barred', 'Unbarred', 'Average']
    """
    names = [_BAR_ROW_NAMES.get(c, c) if target == "barred" else c for c in class_names]
    # The paper lists the positive class (Barred) first.
    table = precision_recall_table(y_true, y_pred, names)
    order = names[::-1] + ["Average"] if len(names) == 2 else names + ["Average"]
    return table.loc[order]


def _occlusion_section(report, predictor, positives, patch=16):
    """Mean drop of the positive probability when blurring the centre vs an outer patch."""
    covered = predictor.covered_probabilities(positives)
    centre, outer = region_occlusion_drop(lambda b: covered(b)[:, 1], positives, patch)
    result = {"n": int(len(positives)), "patch_px": patch, "mean_drop_centre": float(np.mean(centre)),
              "mean_drop_outer": float(np.mean(outer)),
              "fraction_centre_drop_larger": float(np.mean(centre > outer))}
    positive = predictor.readable_names[-1]
    report.heading(f"occlusion test ({positive} galaxies)")
    report.text(f"Blurring the central {patch}x{patch} px of the {result['n']} {positive} galaxies (same "
                f"light, no structure) lowers {predictor.probability_column} by "
                f"{result['mean_drop_centre']:.3f} on average; blurring a patch of the same size at the "
                f"middle of an edge lowers it by {result['mean_drop_outer']:.3f}. The centre matters more "
                f"for {100 * result['fraction_centre_drop_larger']:.1f}% of them.")
    return result


def _external_section(report, evidence):
    """The external catalogues' figures, in words (the numbers are in the summary table)."""
    report.heading("independent bar evidence")
    if "hoyle" in evidence:
        h = evidence["hoyle"]
        report.text(f"Hoyle et al. (2011): {h['n_confirmed']} galaxies of this split have a bar drawn by at "
                    f"least 3 volunteers. Compared with {h['n_control']} unbarred galaxies of the same "
                    f"apparent sizes (equal numbers per bright-pixel quantile bin, {h['n_matched']} in all).")
    if "manga" in evidence:
        report.text(f"MaNGA: {evidence['manga']['n']} matched galaxies with a bar class, barred when Bars >= "
                    f"{evidence['manga']['barred_from']} (-0.5, not classified, left out).")
    if "stripe82" in evidence:
        report.text("Willett et al. (2013) Stripe 82 co-adds: galaxies cut by the number of co-add votes "
                    "on the bar question; the co-add majority is bar votes > no-bar votes.")
        import pandas as pd

        report.table(pd.DataFrame(evidence["stripe82"]["by_votes"]).set_index("min_votes"),
                     caption="Stripe 82 subset by bar-question votes", index=True)


def bar_length_figures(predictor: GalaxyPredictor, images: np.ndarray, drawn: ArrayLike, spread: ArrayLike,
                       barred: ArrayLike) -> dict:
    """Measured bar lengths against the volunteers' (Hoyle et al. 2011), for galaxies with a drawn bar.

    Parameters
    ----------
    predictor : GalaxyPredictor
        One that carries a bar-length network (``predictor.bar_length``).
    images : numpy.ndarray
        ``(N, 3, S, S)`` cutouts of the galaxies with a drawn bar.
    drawn, spread : array-like of float
        The volunteers' mean length and its spread between them (``length_avg``, ``length_stdev``), arcsec.
    barred : array-like of bool
        Which of them the predictor calls barred.

    Returns
    -------
    dict
        ``n``, ``median_abs_error`` (arcsec) and ``volunteers_median_stdev`` over all of them and
        over those called barred (``..._called_barred``), ``lengths`` (the measured ones).
    """
    drawn, spread, barred = np.asarray(drawn, float), np.asarray(spread, float), np.asarray(barred, bool)
    lengths = predictor.bar_length.lengths(images) if len(images) else np.zeros(0)
    error = np.abs(lengths - drawn)
    result = {"n": int(len(drawn)), "n_called_barred": int(barred.sum()), "lengths": lengths.tolist()}
    for suffix, rows in (("", slice(None)), ("_called_barred", barred)):
        result[f"median_abs_error{suffix}"] = float(np.median(error[rows])) if len(error[rows]) else None
        result[f"volunteers_median_stdev{suffix}"] = float(np.median(spread[rows])) if len(error[rows]) else None
    return result


def _bar_length_section(report, predictor, images, positions, hoyle, radius_arcsec, y_pred):
    """Scatter of measured against drawn bar lengths, the Hoyle galaxies of this split."""
    matched = match_catalogue(*positions, hoyle, ("length_avg", "length_stdev"), radius_arcsec)
    rows = np.flatnonzero(matched["length_avg"].notna().to_numpy())
    drawn, spread = matched["length_avg"].to_numpy(float)[rows], matched["length_stdev"].to_numpy(float)[rows]
    result = bar_length_figures(predictor, images[rows], drawn, spread, y_pred[rows] == 1)
    report.heading("bar length")
    if not result["n"]:
        report.text("No galaxy of this split has a bar drawn by volunteers (Hoyle et al. 2011).")
        return result
    report.text(f"{result['n']} galaxies of this split have a bar drawn by at least 3 volunteers (Hoyle et al. "
                f"2011). Measured length against the volunteers' mean: median absolute error "
                f"{result['median_abs_error']:.2f} arcsec; the volunteers' own spread (median length_stdev) is "
                f"{result['volunteers_median_stdev']:.2f} arcsec. Of the {result['n_called_barred']} called barred "
                f"(the rows galaxy predict measures): {result['median_abs_error_called_barred']:.2f} against "
                f"{result['volunteers_median_stdev_called_barred']:.2f}.")
    fig = plots.scatter_figure(drawn, result["lengths"], "volunteers' mean length (arcsec)",
                               "measured length (arcsec)", "bar length, Hoyle et al. (2011) galaxies")
    # The volunteers' spread, as horizontal bars: how far apart their own drawings lie.
    fig.axes[0].errorbar(drawn, result["lengths"], xerr=spread, fmt="none", ecolor="grey", alpha=0.4, lw=0.8)
    report.figure(fig, "bar_length", "measured against drawn bar length; grey: the volunteers' spread (length_stdev)")
    return result


def evaluate_galaxy(labels_path: str | Path, out_dir: str | Path, model: str | Path | None = None,
                    target: str | None = None, split: str = "test", seed: int = 0, device: str = "cpu",
                    threads: int | None = None, progress: bool = True, hoyle: str | Path | None = None,
                    manga: str | Path | None = None, stripe82: str | Path | None = None,
                    radius_arcsec: float = MATCH_RADIUS_ARCSEC, augment: int = 1, engine: str = "auto") -> dict:
    """Evaluate a predictor on one split of a labels table and write a report.

    Parameters
    ----------
    labels_path : str or Path
        Labels table (``file``, target column, optional ``split``).
    out_dir : str or Path
        Receives ``report.html``, figures, ``metrics.json``, ``predictions.csv`` and the tables as CSV.
    model, device, engine
        See :meth:`~deepscope.galaxy.predictor.GalaxyPredictor.from_checkpoint`.
    target : str, optional
        Label column (default: the model's target).
    split : str
        Rows to evaluate (``all`` for every row).
    seed : int
        Seed of the size-matched subsampling.
    threads : int, optional
        torch CPU threads (0 or None: all cores).
    progress : bool
    hoyle, manga, stripe82 : str or Path, optional
        External bar catalogues cross-matched on the sky within ``radius_arcsec``
        (:mod:`deepscope.galaxy.bar_evidence`); with ``hoyle``, a model that measures
        bars is also scored on their drawn lengths (:func:`bar_length_figures`).
    radius_arcsec : float
    augment : int
        Views of each cutout averaged (:attr:`~deepscope.galaxy.predictor.GalaxyPredictor.augment`).

    Returns
    -------
    dict
        ``metrics.json`` contents.

    Raises
    ------
    InputError
        If the table has no rows of ``split`` or labels outside the model's classes, or external
        catalogues are given for a task that is not two-class or cannot be read.
    ModelError
        If ``model`` is not a galaxy classifier.
    BatchError
        If some cutouts cannot be read.
    """
    out_dir = check_writable(out_dir, is_dir=True)
    set_torch_threads(threads)
    predictor = GalaxyPredictor.from_checkpoint(model, device, engine)
    predictor.augment = augment
    target = target or predictor.target
    rows = _read_split(labels_path, target, split)
    catalogues = {"hoyle": hoyle, "manga": manga, "stripe82": stripe82}
    given = {name: path for name, path in catalogues.items() if path is not None}
    if given and not predictor.binary:
        msg = f"--{', --'.join(given)}: external bar catalogues need a two-class model such as galaxy_bars"
        raise InputError(msg)
    # Read before the long part, so a wrong catalogue path fails at once.
    positions = sample_positions(rows, str(labels_path)) if given else None
    for name, path in given.items():
        if not Path(path).is_file():
            msg = f"--{name} {path}: no such file"
            raise InputError(msg)
    y_true = encode_labels(rows[target], predictor.class_names)
    images, sizes, failures = load_cutouts(list(rows["path"]), predictor.input_size, progress=progress)
    if failures:
        raise BatchError(failures)
    probs = np.concatenate([predictor.probabilities(images[i:i + 512]) for i in range(0, len(images), 512)])
    y_pred = predictor.decide(probs)

    predictions = rows[["file", target]].copy()
    predictions["bright_pixels"] = sizes
    for i, name in enumerate(predictor.class_names):
        predictions[f"p_{name}"] = probs[:, i]
    predictions["predicted"] = [predictor.label_value(i) for i in y_pred]
    write_table(predictions, out_dir / "predictions.csv")

    report = Report(out_dir, f"galaxy evaluation: {target} on {Path(labels_path).name} ({split})")
    decision = (f"{predictor.readable_names[-1]} when {predictor.probability_column} >= threshold "
                f"{predictor.threshold:.3f}; " if predictor.binary else "")
    report.text(f"model: {model or 'shipped galaxy_bars'}; {decision}{len(rows)} galaxies")
    metrics = {"labels": str(labels_path), "split": split, "model": str(model or "galaxy_bars"),
               "threshold": predictor.threshold}
    subsets = {"all": np.arange(len(rows))}
    if predictor.binary:
        subsets["size_matched"] = size_matched_indices(sizes, y_true, seed=seed)
    for subset, index in subsets.items():
        table = classification_tables(y_true[index], y_pred[index], predictor.class_names, target)
        table.to_csv(out_dir / f"table_{subset}.csv", index_label="")
        title = "all galaxies" if subset == "all" else "size-matched subset"
        report.heading(f"{title} ({len(index)})")
        report.table(table)
        entry = {"n": int(len(index)), "accuracy": float(np.mean(y_true[index] == y_pred[index])),
                 "table": json.loads(table.to_json(orient="index"))}
        if predictor.binary:
            entry.update(binary_summary(y_true[index], probs[index, 1], predictor.threshold))
            entry["size_only_auc"] = binary_summary(y_true[index], sizes[index])["roc_auc"]
            report.text(f"accuracy {entry['accuracy']:.4f}, ROC-AUC {entry['roc_auc']:.4f}; "
                        f"apparent size alone gives ROC-AUC {entry['size_only_auc']:.3f}")
        metrics[subset] = entry
        matrix = confusion(y_true[index], y_pred[index], len(predictor.class_names))
        report.figure(plots.confusion_figure(matrix, predictor.readable_names, f"confusion ({title})"),
                      f"confusion_{subset}")
    if predictor.binary:
        curves = {name: (y_true[i], probs[i, 1]) for name, i in subsets.items()}
        curves["apparent size only (all)"] = (y_true, sizes)
        report.figure(plots.roc_figure(curves), "roc", "ROC; the size-only curve shows the confound")
        report.figure(plots.calibration_figure({name: (y_true[i], probs[i, 1]) for name, i in subsets.items()}),
                      "calibration")
    if predictor.binary:
        if given:
            metrics["external"] = external_evidence(*positions, y_true, y_pred, probs[:, 1], sizes, **given,
                                                    radius_arcsec=radius_arcsec, seed=seed)
            _external_section(report, metrics["external"])
        if "hoyle" in given and predictor.bar_length is not None:
            metrics["bar_length"] = _bar_length_section(report, predictor, images, positions, given["hoyle"],
                                                        radius_arcsec, y_pred)
        summary = summary_table(metrics)
        summary.to_csv(out_dir / "table_summary.csv")
        report.heading("summary")
        report.table(summary, caption="every headline figure in one table (ROC-AUC shown x 100)")
        metrics["occlusion"] = _occlusion_section(report, predictor, images[y_true == 1])
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report.write()
    return metrics
