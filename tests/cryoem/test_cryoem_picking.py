"""Probability maps -> picks: test-time augmentation, peaks, NMS, excluded regions, edges."""

import numpy as np
import pytest
import torch

from deepscope.cryoem.picking import find_picks, predict_maps
from deepscope.cryoem.preprocess import disk_mask
from deepscope.errors import InputError
from deepscope.registry import create_model


def test_find_picks_nms_and_regions():
    prob = disk_mask((64, 64), np.array([[20.0, 20.0], [44.0, 40.0]]), 3.0) * 0.9
    picks = find_picks(prob, None, 8.0, 0.5)
    assert np.allclose(picks[["x", "y"]].to_numpy(), [[20, 20], [44, 40]], atol=1)
    regions = np.zeros((4, 64, 64), np.float32)
    regions[0] = 1.0  # protein everywhere ...
    regions[:, 30:, 30:] = 0
    regions[1, 30:, 30:] = 1.0  # ... except ice in one corner
    kept = find_picks(prob, regions, 8.0, 0.5)
    assert kept[["x", "y"]].to_numpy().round().tolist() == [[20, 20]]
    assert len(find_picks(prob, None, 8.0, 0.95)) == 0
    # 20 px from the edge survives a 2-diameter margin (16 px), not a 3-diameter one (24 px)
    assert len(find_picks(prob, None, 8.0, 0.5, edge_fraction=2.0)) == 2
    assert find_picks(prob, None, 8.0, 0.5, edge_fraction=3.0).empty


def test_test_time_augmentation_is_rotation_equivariant():
    torch.manual_seed(0)
    model = create_model("cryoem_unet_joint", width=4, depth=2).eval()
    image = np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)
    plain, _ = predict_maps(model, image, "joint", augment=1)
    averaged, regions = predict_maps(model, image, "joint", augment=4)
    turned, turned_regions = predict_maps(model, np.ascontiguousarray(np.rot90(image)), "joint", augment=4)
    # averaging over the four rotations makes the prediction rotate with the image
    assert np.allclose(np.rot90(averaged), turned, atol=1e-5)
    assert np.allclose(np.rot90(regions, axes=(1, 2)), turned_regions, atol=1e-5)
    assert not np.allclose(plain, averaged)
    with pytest.raises(InputError, match="augment must be"):
        predict_maps(model, image, "joint", augment=3)


def test_refine_centres_moves_picks_off_the_grid_to_the_centroid():
    from deepscope.cryoem.picking import refine_centres

    yy, xx = np.mgrid[:40, :40]
    # a blob centred between pixels, and a second one further than the window
    prob = np.exp(-((xx - 10.3) ** 2 + (yy - 20.6) ** 2) / 2) + np.exp(-((xx - 30) ** 2 + (yy - 20.6) ** 2) / 2)
    picks = find_picks(prob, None, 8.0, 0.5)
    assert sorted(picks["x"].tolist()) == [10.0, 30.0]  # on the grid
    refined = refine_centres(prob, picks, 3.0).sort_values("x")
    assert refined["x"].to_numpy() == pytest.approx([10.3, 30.0], abs=0.05)
    assert refined["y"].to_numpy() == pytest.approx([20.6, 20.6], abs=0.05)
    assert refined["score"].tolist() == picks.sort_values("x")["score"].tolist()
    assert refine_centres(prob, picks.iloc[:0], 3.0).empty
