"""Training-only pieces: the threshold search."""

import numpy as np

from deepscope.galaxy.train import balanced_threshold


def test_balanced_threshold_separates_shifted_scores():
    y = np.repeat([0, 1], 50)
    p = np.concatenate([np.linspace(0.0, 0.2, 50), np.linspace(0.25, 0.5, 50)])
    t = balanced_threshold(y, p)
    assert 0.2 < t <= 0.25
