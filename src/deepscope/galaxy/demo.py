"""Galaxy section of ``deepscope demo``: the shipped models on bundled SDSS cutouts."""

import numpy as np

from deepscope.core import plots
from deepscope.galaxy.classifier import GalaxyClassifier
from deepscope.galaxy.evaluate import classification_tables
from deepscope.galaxy.explain import occlusion_map
from deepscope.galaxy.figures import occlusion_figure
from deepscope.galaxy.task import encode_labels
from deepscope.samples import sample_dir


def _predict_sample(report, folder, target, model_name, title):
    import pandas as pd

    labels = pd.read_csv(folder / "labels.csv")
    classifier = GalaxyClassifier.load(model_name)
    batch = np.stack([classifier.load_input(folder / f) for f in labels["file"]])
    probs = classifier.probabilities(batch)
    y_true = encode_labels(labels[target], classifier.class_names)
    y_pred = classifier.decide(probs)
    report.heading(title)
    report.text(f"shipped model {model_name!r} on {len(labels)} bundled SDSS cutouts from the held-out "
                f"test split (threshold {classifier.threshold:.3f}).")
    report.table(classification_tables(y_true, y_pred, classifier.class_names, target))
    order = np.argsort(-probs[:, -1])
    images = [batch[i].transpose(1, 2, 0) for i in order]
    titles = [f"{classifier.label_value(y_true[i])}: p={probs[i, -1]:.2f}" for i in order]
    report.figure(plots.image_grid_figure(images, titles, ncols=8,
                                          suptitle=f"sorted by p_{classifier.class_names[-1]} (true label: p)"),
                  f"galaxy_{target}_grid", "cutouts sorted by predicted probability")
    return classifier, batch, probs, y_true


def add_demo_section(report, out_dir):
    """Predict bars and morphology on the bundled samples; add tables, a grid and an occlusion map.

    Parameters
    ----------
    report : deepscope.core.report.Report
    out_dir : Path
        Report directory (figures are written there by the report).
    """
    classifier, batch, probs, y_true = _predict_sample(
        report, sample_dir("galaxy", "bars"), "barred", "galaxy_bars", "Galaxy bars")
    # A confidently but not saturated barred galaxy shows the map best.
    barred = np.flatnonzero((y_true == 1) & (probs[:, 1] >= classifier.threshold))
    shown = barred[np.argmin(np.abs(probs[barred, 1] - 0.9))]
    heat, base = occlusion_map(lambda b: classifier.probabilities(b)[:, 1], batch[shown])
    report.figure(occlusion_figure(batch[shown].transpose(1, 2, 0), heat, base, "p_bar"), "galaxy_occlusion",
                  "occlusion: covering the bar lowers p_bar")
    _predict_sample(report, sample_dir("galaxy", "morphology"), "morphology", "galaxy_morphology",
                    "Galaxy morphology (elliptical vs spiral)")
