"""Every registered cryo-EM network: one forward pass on random input, and batch-norm folding."""

import pytest
import torch

from deepscope.registry import create_model, list_models

MODELS = ["cryoem_unet", "cryoem_unet_regions", "cryoem_unet_joint"]


@pytest.mark.parametrize("name, channels", list(zip(MODELS, [1, 4, 5])))
def test_models_forward(name, channels):
    assert name in list_models()
    model = create_model(name, width=4, depth=2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 48))
    assert out.shape == (2, channels, 32, 48) and torch.isfinite(out).all()


def test_batchnorm_folding_keeps_outputs():
    from deepscope.core.speed import fold_batchnorm

    model = create_model("cryoem_unet_joint", width=4, depth=2)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 1, 32, 32) * 3 + 1)  # give BatchNorm non-trivial running statistics
    model.eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert torch.allclose(folded(x), expected, atol=1e-5)
