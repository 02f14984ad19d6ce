"""The precision/recall table of the evaluation report."""

import pytest

from deepscope.core.metrics import precision_recall_table
from deepscope.galaxy.evaluate import classification_tables


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
