"""External bar evidence as training weights and soft targets, and the loss that uses them.

Run on its own: python -m pytest -p no:cacheprovider experiments/galaxy_evidence
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evidence import TrainingEvidence, balanced_weights, evidence_targets, hoyle_coverage  # noqa: E402
from train_variant import SoftCutoutDataset, soft_cross_entropy  # noqa: E402

from deepscope.config import TrainConfig  # noqa: E402
from deepscope.galaxy.dataset import CutoutDataset  # noqa: E402
from deepscope.galaxy.train import cross_entropy  # noqa: E402

BARS = Path(__file__).resolve().parents[3] / "shared" / "data" / "galaxy" / "sdss_gz2_bars"

# Six training galaxies: four barred near (150, 10), one barred far away, one unbarred.
RA = np.array([150.0, 150.1, 150.2, 150.3, 20.0, 150.4])
DEC = np.array([10.0, 10.0, 10.0, 10.0, 0.0, 10.0])
LABELS = np.array([1, 1, 1, 1, 1, 0])
SIZES = np.array([3000, 3200, 3100, 800, 3500, 3000])


@pytest.fixture()
def hoyle(tmp_path):
    """Galaxies 0 and 1 drawn, plus one more Hoyle galaxy elsewhere in the footprint."""
    path = tmp_path / "hoyle.csv"
    pd.DataFrame({"objid": [1, 2, 3], "ra": [150.0, 150.1, 151.0], "dec": [10.0, 10.0, 10.5],
                  "bar_meas": [3, 4, 5]}).to_csv(path, index=False)
    return path


@pytest.fixture()
def stripe82(tmp_path):
    """Galaxy 4 with 10 co-add votes (3 for a bar), galaxy 5 voted edge-on, galaxy 3 with 2 votes."""
    path = tmp_path / "s82.csv.gz"
    pd.DataFrame({"ra": [20.0, 150.4, 150.3], "dec": [0.0, 10.0, 10.0],
                  "t02_edgeon_a04_yes_fraction": [0.0, 0.9, 0.1],
                  "t03_bar_a06_bar_count": [3, 0, 2], "t03_bar_a07_no_bar_count": [7, 0, 0]}).to_csv(path, index=False)
    return path


def test_hoyle_drawn_bars_weigh_more_and_covered_undrawn_ones_less(hoyle):
    evidence = TrainingEvidence(hoyle=hoyle, confirmed_weight=3.0, doubtful_weight=0.5, coverage_quantile=0.0)
    weights, p_bar, counts = evidence_targets(RA, DEC, LABELS, SIZES, evidence)
    # 2: covered (near Hoyle galaxies, as large as the drawn ones), undrawn; 3: too small for Hoyle's
    # sample; 4: outside its footprint; 5: unbarred, never doubtful.
    assert weights.tolist() == [3.0, 3.0, 0.5, 1.0, 1.0, 1.0]
    assert p_bar.tolist() == LABELS.tolist()
    assert counts == {"confirmed": 2, "covered": 4, "doubtful": 1}


def test_stripe82_votes_give_soft_targets_and_drop_edge_on(stripe82):
    evidence = TrainingEvidence(stripe82=stripe82, stripe82_min_votes=5)
    weights, p_bar, counts = evidence_targets(RA, DEC, LABELS, SIZES, evidence)
    assert p_bar.tolist() == pytest.approx([1, 1, 1, 1, 0.3, 0])  # galaxy 3 has too few votes to move
    assert weights.tolist() == [1, 1, 1, 1, 1, 0]
    assert counts == {"soft": 1, "edge_on": 1}


def test_no_confirmed_bar_means_no_coverage():
    covered = hoyle_coverage(RA, DEC, SIZES, np.zeros(6, bool), [150.0], [10.0])
    assert not covered.any()


def test_size_balancing_keeps_evidence_ratios_within_a_class_and_bin():
    sizes = np.repeat([10.0, 100.0], 4)
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1])
    base = np.array([1, 3, 1, 0.5, 1, 1, 3, 1])
    weights = balanced_weights(sizes, labels, base, n_bins=2)
    for size in (10.0, 100.0):
        in_bin = sizes == size
        assert weights[in_bin & (labels == 0)].sum() == pytest.approx(weights[in_bin & (labels == 1)].sum())
    assert weights[1] / weights[2] == pytest.approx(3.0)
    assert weights[6] / weights[7] == pytest.approx(3.0)


def test_soft_targets_replace_the_labels_in_the_loss():
    outputs = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    hard = {"label": torch.tensor([1, 0]), "weight": torch.ones(2)}
    one_hot = {**hard, "soft": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    halves = {**hard, "soft": torch.full((2, 2), 0.5)}
    assert float(soft_cross_entropy(outputs, one_hot)) == pytest.approx(float(cross_entropy(outputs, hard)))
    assert float(soft_cross_entropy(outputs, halves)) > float(cross_entropy(outputs, hard)) + 0.3


def test_dataset_serves_soft_targets():
    soft = np.array([[0.7, 0.3], [0.0, 1.0]], np.float32)
    data = SoftCutoutDataset(np.zeros((2, 3, 8, 8), np.float32), np.array([1, 1]), None, soft)
    assert data[0][1]["soft"].tolist() == pytest.approx([0.7, 0.3])
    assert "soft" not in CutoutDataset(np.zeros((1, 3, 8, 8), np.float32), np.array([0]))[0][1]


@pytest.fixture()
def tiny_labels(tmp_path):
    """24 training and 16 test cutouts of each class (absolute paths)."""
    if not BARS.is_dir():
        pytest.skip(f"{BARS} not found")
    table = pd.read_csv(BARS / "labels.csv")
    table = pd.concat([table[(table.split == s) & (table.barred == b)].head(n)
                       for s, n in (("train", 24), ("test", 16)) for b in (0, 1)])
    table["file"] = [str(BARS / f) for f in table["file"]]
    table.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "labels.csv"


def test_training_with_evidence_matches_training_rows_only(tiny_labels, tmp_path):
    from train_variant import train_variant

    table = pd.read_csv(tiny_labels)
    train_barred = table[(table.split == "train") & (table.barred == 1)]
    test_barred = table[(table.split == "test") & (table.barred == 1)]
    hoyle = tmp_path / "hoyle.csv"
    pd.concat([train_barred.head(30), test_barred.head(5)])[["ra", "dec"]].to_csv(hoyle, index=False)
    edge_on = table[(table.split == "train") & (table.barred == 0)].head(2)
    stripe82 = tmp_path / "s82.csv"
    edge_on[["ra", "dec"]].assign(t02_edgeon_a04_yes_fraction=1.0, t03_bar_a06_bar_count=0,
                                  t03_bar_a07_no_bar_count=0).to_csv(stripe82, index=False)
    config = TrainConfig(model="barnet_fast", epochs=1, batch_size=16, threads=1)
    summary = train_variant(tiny_labels, tmp_path / "run", config, TrainingEvidence(hoyle=hoyle, stripe82=stripe82),
                            teacher="galaxy_bars", teacher_weight=0.25)
    # All 24 barred training-split galaxies are drawn, but only those not held out for validation (half
    # of the stratified validation rows are barred) are matched, and none of the 5 drawn test ones.
    assert summary["evidence"]["confirmed"] == 24 - summary["n_val"] // 2
    assert summary["evidence"]["edge_on"] == 1  # the other edge-on galaxy is a validation row (seed 0)
    assert summary["n_train"] == 48 - summary["n_val"] - summary["evidence"]["edge_on"]
    config_text = (tmp_path / "run" / "config.yaml").read_text()
    assert "confirmed_weight: 3.0" in config_text and str(hoyle) in config_text and "teacher:" in config_text
