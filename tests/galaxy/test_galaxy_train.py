"""Training-only pieces: threshold search and size-balancing weights."""

import numpy as np
import pytest

from deepscope.galaxy.train import balanced_threshold, size_balancing_weights


def test_balanced_threshold_separates_shifted_scores():
    y = np.repeat([0, 1], 50)
    p = np.concatenate([np.linspace(0.0, 0.2, 50), np.linspace(0.25, 0.5, 50)])
    t = balanced_threshold(y, p)
    assert 0.2 < t <= 0.25


def test_size_balancing_weights_equalise_the_classes_in_each_bin():
    # Small galaxies are mostly unbarred, large ones mostly barred.
    sizes = np.repeat([10.0, 100.0], 40)
    labels = np.concatenate([np.repeat([0, 1], [30, 10]), np.repeat([0, 1], [10, 30])])
    weights = size_balancing_weights(sizes, labels, n_bins=2)
    assert np.mean(weights) == pytest.approx(1.0)
    for size in (10.0, 100.0):
        in_bin = sizes == size
        assert weights[in_bin & (labels == 0)].sum() == pytest.approx(weights[in_bin & (labels == 1)].sum())
