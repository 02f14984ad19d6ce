"""The trained picker: loading, device, heads, and picks in the micrograph's frame."""

import numpy as np
import pytest

from deepscope.cryoem.io import read_coordinates
from deepscope.cryoem.predictor import Picker
from deepscope.errors import ModelError
from deepscope.registry import create_model


def test_picks_are_in_the_micrograph_frame(tiny_run):
    from deepscope.cryoem.preprocess import load_for_picking

    root, _ = tiny_run
    picker = Picker.from_checkpoint(root / "run")
    # pick at twice the size: the micrograph is rescaled, coordinates are not
    image, scale, _ = load_for_picking(root / "mics" / "m2.mrc", 16.0, picker.working_diameter, "off")
    assert scale == 0.5 and image.shape == (64, 64)
    picks = picker.pick(image, scale, threshold=0.0)
    assert picks["x"].between(-1, 128).all() and picks["y"].between(-1, 128).all()
    assert len(read_coordinates(root / "coords" / "m2.star")) == 12


@pytest.mark.parametrize("target, name", [("regions", "cryoem_unet_regions"), ("joint", "cryoem_unet_joint")])
def test_pickers_with_region_heads(target, name):
    model = create_model(name, width=4, depth=2)
    picker = Picker(model, {"target": target, "working_diameter": 8.0, "threshold": 0.0})
    picks, (particle, regions) = picker.pick(np.zeros((40, 40), np.float32), 0.5, keep_maps=True)
    assert particle.shape == (40, 40) and regions.shape == (4, 40, 40)
    assert np.allclose(regions.sum(axis=0), 1, atol=1e-5)
    assert list(picks.columns) == ["x", "y", "score"]


def test_picker_refuses_foreign_checkpoints():
    with pytest.raises(ModelError, match="not a cryo-EM picker"):
        Picker(create_model("cryoem_unet", width=4, depth=2), {"classes": ["a", "b"]})
