"""Scoring picks: one-to-one matching, precision / recall / F1, curves, and the seen-micrograph warning."""

import pandas as pd
import pytest

from deepscope.cryoem.evaluate import (evaluate_pick_sets, match_picks, pr_curve, precision_recall_f1,
                                      summarise_counts, warn_if_seen)


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


def test_precision_recall_f1_is_the_one_formula_behind_matching_and_pooling():
    scores = precision_recall_f1(3, 1, 2)
    assert (scores["precision"], scores["recall"]) == (0.75, 0.6)
    assert scores["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert summarise_counts(3, 1, 2)["f1"] == round(scores["f1"], 12)
    assert precision_recall_f1(0, 0, 0) == {"tp": 0, "fp": 0, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    picks = pd.DataFrame({"x": [0.0, 10.0, 20.0, 90.0], "y": [0.0] * 4})
    truth = pd.DataFrame({"x": [0.0, 10.0, 20.0, 50.0, 70.0], "y": [0.0] * 5})
    matched = match_picks(picks, truth, 2.0)
    assert {k: matched[k] for k in scores} == scores


def test_warn_if_seen_names_the_trained_micrographs(caplog):
    with caplog.at_level("WARNING", logger="deepscope.cryoem.evaluate"):
        seen = warn_if_seen(["a", "b", "c"], frozenset({"b", "z"}), "runs/x")
    assert seen == ["b"] and "1 of the 3 scored micrographs trained or validated runs/x (b)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="deepscope.cryoem.evaluate"):
        assert warn_if_seen(["a"], frozenset({"b"}), "runs/x") == []
    assert caplog.text == ""


def test_median_centre_error_pools_matched_picks_of_every_picker():
    truth = {"a": pd.DataFrame({"x": [0.0, 100.0], "y": [0.0, 0.0]}),
             "b": pd.DataFrame({"x": [0.0], "y": [0.0]})}
    # matched at 3, 4 and 5 px; the pick at 300 is unmatched and must not count
    ours = {"a": pd.DataFrame({"x": [3.0, 104.0, 300.0], "y": [0.0] * 3, "score": [1.0] * 3}),
            "b": pd.DataFrame({"x": [3.0], "y": [4.0], "score": [1.0]})}
    peer = {"a": pd.DataFrame({"x": [1.0], "y": [0.0]}), "b": pd.DataFrame({"x": [0.0], "y": [2.0]})}
    result = evaluate_pick_sets(ours, truth, 20.0, [("peer", peer)])
    errors = result["summary"].set_index("picker")["median_centre_error_px"]
    assert errors["deepscope"] == 4.0 and errors["peer"] == 1.5
    per = result["per_micrograph"].set_index(["picker", "micrograph"])["median_centre_error_px"]
    assert per["deepscope", "a"] == 3.5 and per["deepscope", "b"] == 5.0
