"""Every registered galaxy network: one forward pass on random input."""

import pytest
import torch

from deepscope.registry import create_model

GALAXY_MODELS = ["abraham2018", "barnet", "barnet_fast"]


@pytest.mark.parametrize("name", GALAXY_MODELS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_forward_shape_and_finite(name, n_classes):
    model = create_model(name, n_classes=n_classes, input_size=64).eval()
    with torch.no_grad():
        out = model(torch.rand(4, 3, 64, 64))
    assert out.shape == (4, n_classes)
    assert torch.isfinite(out).all()
