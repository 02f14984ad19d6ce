"""Galaxy section of ``deepscope demo``: the shipped models on bundled SDSS cutouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deepscope.core import plots
from deepscope.galaxy.classes import encode_labels
from deepscope.galaxy.evaluate import classification_tables
from deepscope.galaxy.explain import occlusion_map
from deepscope.galaxy.figures import occlusion_figure
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.samples import sample_dir

if TYPE_CHECKING:
    from pathlib import Path

    from deepscope.core.report import Report


def _predict_sample(report, folder, target, model_name, title):
    import pandas as pd

    labels = pd.read_csv(folder / "labels.csv")
    predictor = GalaxyPredictor.from_checkpoint(model_name)
    batch = np.stack([predictor.load_input(folder / f) for f in labels["file"]])
    probs = predictor.probabilities(batch)
    y_true = encode_labels(labels[target], predictor.class_names)
    y_pred = predictor.decide(probs)
    report.heading(title)
    report.text(f"shipped model {model_name!r} on {len(labels)} bundled SDSS cutouts from the held-out "
                f"test split ({predictor.readable_names[-1]} when {predictor.probability_column} >= threshold "
                f"{predictor.threshold:.3f}).")
    report.table(classification_tables(y_true, y_pred, predictor.class_names, target))
    order = np.argsort(-probs[:, -1])
    images = [batch[i].transpose(1, 2, 0) for i in order]
    column = predictor.probability_column
    titles = [f"{predictor.readable_names[y_true[i]]}: {probs[i, -1]:.2f}" for i in order]
    suptitle = f"sorted by {column} (above each cutout: true class: {column})"
    report.figure(plots.image_grid_figure(images, titles, ncols=8, suptitle=suptitle),
                  f"galaxy_{target}_grid", "cutouts sorted by predicted probability")
    return predictor, batch, probs, y_true


def add_demo_section(report: Report, out_dir: Path) -> None:
    """Predict bars and morphology on the bundled samples; add tables, a grid and an occlusion map.

    Parameters
    ----------
    report : deepscope.core.report.Report
    out_dir : Path
        Report directory (figures are written there by the report).
    """
    predictor, batch, probs, y_true = _predict_sample(
        report, sample_dir("galaxy", "bars"), "barred", "galaxy_bars", "Galaxy bars")
    # A confidently but not saturated barred galaxy shows the map best.
    barred = np.flatnonzero((y_true == 1) & (probs[:, 1] >= predictor.threshold))
    shown = barred[np.argmin(np.abs(probs[barred, 1] - 0.9))]
    heat, base = occlusion_map(lambda b: predictor.probabilities(b)[:, 1], batch[shown])
    report.figure(occlusion_figure(batch[shown].transpose(1, 2, 0), heat, base, "p_bar"), "galaxy_occlusion",
                  "occlusion: covering the bar lowers p_bar")
    _predict_sample(report, sample_dir("galaxy", "morphology"), "morphology", "galaxy_morphology",
                    "Galaxy morphology (elliptical vs spiral)")
