"""External bar evidence as training weights and soft targets, and the loss that uses them."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.galaxy.dataset import CutoutDataset
from deepscope.galaxy.train import cross_entropy, size_balancing_weights
from deepscope.galaxy.training_evidence import TrainingEvidence, evidence_targets, hoyle_coverage

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
    weights = size_balancing_weights(sizes, labels, n_bins=2, base_weights=base)
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
    assert float(cross_entropy(outputs, one_hot)) == pytest.approx(float(cross_entropy(outputs, hard)))
    assert float(cross_entropy(outputs, halves)) > float(cross_entropy(outputs, hard)) + 0.3


def test_dataset_serves_soft_targets():
    soft = np.array([[0.7, 0.3], [0.0, 1.0]], np.float32)
    data = CutoutDataset(np.zeros((2, 3, 8, 8), np.float32), np.array([1, 1]), soft=soft)
    assert data[0][1]["soft"].tolist() == pytest.approx([0.7, 0.3])
    assert "soft" not in CutoutDataset(np.zeros((1, 3, 8, 8), np.float32), np.array([0]))[0][1]
