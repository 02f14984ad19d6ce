"""Size matching and the precision/recall table of the evaluation report."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deepscope.core.metrics import precision_recall_table
from deepscope.galaxy.evaluate import classification_tables, size_matched_indices


def test_size_matched_subset_removes_the_size_signal():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    sizes = rng.normal(100 + 40 * labels, 30)  # barred galaxies look bigger
    assert roc_auc_score(labels, sizes) > 0.8
    keep = size_matched_indices(sizes, labels, n_bins=20)
    assert np.sum(labels[keep] == 0) == np.sum(labels[keep] == 1)
    assert abs(roc_auc_score(labels[keep], sizes[keep]) - 0.5) < 0.05


def test_table_has_paper_shape():
    table = precision_recall_table([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 1], ["Unbarred", "Barred"])
    assert list(table.columns) == ["Precision %", "Recall %", "Number in sample"]
    assert table.loc["Barred", "Precision %"] == pytest.approx(66.67)
    assert table.loc["Unbarred", "Recall %"] == pytest.approx(75.0)
    assert table.loc["Average", "Number in sample"] == 7


def test_tables_name_the_classes_positive_first():
    bars = classification_tables([1, 1, 0], [1, 0, 0], ["0", "1"], "barred")
    assert list(bars.index) == ["Barred", "Unbarred", "Average"]
    assert bars.loc["Barred", "Recall %"] == pytest.approx(50.0)
    morphology = classification_tables([1, 0], [1, 0], ["elliptical", "spiral"], "morphology")
    assert list(morphology.index) == ["spiral", "elliptical", "Average"]
