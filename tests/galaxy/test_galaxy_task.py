"""Targets, size matching and the precision/recall table."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepscope.core.metrics import precision_recall_table
from deepscope.errors import InputError
from deepscope.galaxy.io import read_galaxy_image
from deepscope.galaxy.task import (
    balanced_threshold, bright_pixel_count, encode_labels, size_matched_indices, to_model_input,
)


def test_size_matched_subset_removes_the_size_signal():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    sizes = rng.normal(100 + 40 * labels, 30)  # barred galaxies look bigger
    assert roc_auc_score(labels, sizes) > 0.8
    keep = size_matched_indices(sizes, labels, n_bins=20)
    assert np.sum(labels[keep] == 0) == np.sum(labels[keep] == 1)
    assert abs(roc_auc_score(labels[keep], sizes[keep]) - 0.5) < 0.05


def test_size_confound_on_real_cutouts(bars_dir):
    table = pd.read_csv(bars_dir / "labels.csv").groupby("barred").head(150)
    sizes = np.array([bright_pixel_count(read_galaxy_image(bars_dir / f)) for f in table["file"]])
    labels = table["barred"].to_numpy()
    keep = size_matched_indices(sizes, labels)
    assert roc_auc_score(labels, sizes) > 0.65  # DATA.md measures ~0.78 on the whole set
    assert abs(roc_auc_score(labels[keep], sizes[keep]) - 0.5) < 0.1


def test_to_model_input_resamples_and_scales():
    rgb = np.full((80, 80, 3), 255, np.uint8)
    x = to_model_input(rgb, 64)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    assert np.allclose(x, 1.0)


def test_encode_labels_rejects_unknown_class():
    assert list(encode_labels([1, 0, "1"], ["0", "1"])) == [1, 0, 1]
    with pytest.raises(InputError, match="not one of the model's classes"):
        encode_labels([2], ["0", "1"])


def test_balanced_threshold_separates_shifted_scores():
    y = np.repeat([0, 1], 50)
    p = np.concatenate([np.linspace(0.0, 0.2, 50), np.linspace(0.25, 0.5, 50)])
    t = balanced_threshold(y, p)
    assert 0.2 < t <= 0.25


def test_table_has_paper_shape():
    table = precision_recall_table([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 1], ["Unbarred", "Barred"])
    assert list(table.columns) == ["Precision %", "Recall %", "Number in sample"]
    assert table.loc["Barred", "Precision %"] == pytest.approx(66.67)
    assert table.loc["Unbarred", "Recall %"] == pytest.approx(75.0)
    assert table.loc["Average", "Number in sample"] == 7
