"""Scoring picks: one-to-one matching, precision / recall / F1, curves, and the seen-micrograph warning."""

import pandas as pd
import pytest

from deepscope.cryoem.evaluate import match_picks, pr_curve, precision_recall_f1, summarise_counts, warn_if_seen


def test_match_picks_is_one_to_one():
    truth = pd.DataFrame({"x": [0.0, 100.0], "y": [0.0, 0.0]})
    picks = pd.DataFrame({"x": [1.0, 2.0, 300.0], "y": [0.0, 0.0, 0.0]})
    result = match_picks(picks, truth, 10.0)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 2, 1)
    assert result["precision"] == pytest.approx(1 / 3) and result["recall"] == 0.5
    assert match_picks(picks.iloc[:0], truth, 10.0)["f1"] == 0.0


def test_pr_curve_trades_precision_for_recall():
    truth = pd.DataFrame({"x": [0.0, 50.0], "y": [0.0, 0.0]})
    picks = pd.DataFrame({"x": [0.0, 50.0, 90.0], "y": [0.0, 0.0, 0.0], "score": [0.9, 0.3, 0.2]})
    curve = pr_curve([picks], [truth], 5.0, [0.1, 0.25, 0.5])
    assert curve["recall"].tolist() == [1.0, 1.0, 0.5]
    assert curve["precision"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
