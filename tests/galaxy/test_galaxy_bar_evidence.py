"""Bar evidence from external catalogues: matching, the size control and the MaNGA and Stripe 82 rules."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepscope.errors import InputError
from deepscope.galaxy.bar_evidence import (hoyle_evidence, manga_evidence, match_catalogue, stripe82_evidence,
                                           summary_table)


def test_match_catalogue_reads_manga_names_and_honours_the_radius(tmp_path):
    path = tmp_path / "manga.csv"
    # 1 arcsec north of the first galaxy, 5 arcsec north of the second.
    pd.DataFrame({"name": ["a", "b"], "objra": [10.0, 20.0], "objdec": [1 + 1 / 3600, 2 + 5 / 3600],
                  "Bars": [1.0, 0.0]}).to_csv(path, index=False)
    matched = match_catalogue([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], path, ("Bars",), radius_arcsec=2.0)
    assert list(matched.columns) == ["Bars", "sep_arcsec"]
    assert matched["Bars"].iloc[0] == 1.0 and matched["Bars"].iloc[1:].isna().all()
    assert matched["sep_arcsec"].iloc[0] == pytest.approx(1.0, abs=1e-3)


def test_match_catalogue_names_a_missing_column(tmp_path):
    path = tmp_path / "s82.csv.gz"
    pd.DataFrame({"ra": [1.0], "dec": [2.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"s82.csv.gz: missing column\(s\) t03_bar_a06_bar_count"):
        match_catalogue([1.0], [2.0], path, ("t03_bar_a06_bar_count",))


def test_hoyle_control_is_size_matched_and_counts_only_unbarred():
    rng = np.random.default_rng(1)
    n = 400
    confirmed = np.arange(n) < 100
    y_true = np.where(confirmed, 1, np.arange(n) % 2)  # odd unconfirmed rows: GZ2-barred, not in Hoyle
    sizes = rng.normal(np.where(confirmed, 160, 100), 30)  # Hoyle bars are big
    y_pred = np.where(confirmed, np.arange(n) % 10 != 0, 0)  # misses 1 confirmed bar in 10
    result = hoyle_evidence(y_true, y_pred, y_pred.astype(float), sizes, confirmed)
    assert result["n_confirmed"] == 100
    assert result["confirmed_recall"] == pytest.approx(0.9)
    assert result["control_specificity"] == 1.0
    assert result["n_matched"] == 2 * result["n_control"]
    # Only unbarred galaxies serve as controls, and size no longer separates the two groups.
    assert result["matched_size_only_auc"] < 0.65
    assert roc_auc_score(confirmed[(y_true == 0) | confirmed], sizes[(y_true == 0) | confirmed]) > 0.85


def test_manga_rule_counts_half_as_barred_and_leaves_out_unclassified():
    result = manga_evidence([1, 0, 0, 1, 1], [1, 1, 0, 0, 1], [.9, .8, .1, .2, .9], [0.5, 0.25, 0.0, -0.5, np.nan])
    assert result["n"] == 3 and result["n_barred"] == 1
    assert result["model_agreement"] == pytest.approx(2 / 3)
    assert result["label_agreement"] == 1.0


def test_stripe82_cuts_by_total_bar_question_votes():
    rows = stripe82_evidence([0, 0, 1, 1], [0, 1, 1, 0], [0, 1, 6, np.nan], [2, 1, 4, np.nan], min_votes=(0, 3))
    assert [(r["min_votes"], r["n"], r["n_barred"]) for r in rows] == [(0, 3, 1), (3, 1, 1)]
    assert rows[0]["accuracy"] == pytest.approx(2 / 3)
    # Co-add majority: 0/2 unbarred, 1/1 unbarred (a tie is not a bar), 6/4 barred.
    assert rows[0]["coadd_agreement"] == pytest.approx(2 / 3)
    assert rows[1]["label_coadd_agreement"] == 1.0


def test_summary_table_holds_the_paper_and_the_evidence():
    entry = {"n": 4, "accuracy": 0.75, "roc_auc": 0.8, "size_only_auc": 0.6,
             "table": {"Barred": {"Precision %": 100.0, "Recall %": 50.0, "Number in sample": 2},
                       "Unbarred": {"Precision %": 66.67, "Recall %": 100.0, "Number in sample": 2},
                       "Average": {"Precision %": 83.33, "Recall %": 75.0, "Number in sample": 4}}}
    hoyle = hoyle_evidence([1, 1, 0, 0], [1, 0, 0, 1], [.9, .4, .1, .8], [50, 60, 50, 60], [True, True, False, False])
    table = summary_table({"all": entry, "size_matched": entry, "external": {"hoyle": hoyle}})
    assert table.loc["accuracy, Abraham et al. (2018)", "%"] == 94.1
    assert table.loc["Barred Recall, all galaxies", "%"] == 50.0
    assert table.loc["confirmed-bar recall (Hoyle)", "%"] == 50.0
    assert table.loc["confirmed-bar recall (Hoyle)", "n"] == 2
