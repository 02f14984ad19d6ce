"""Targets, models, mask -> picks, matching, and a tiny end-to-end training."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.config import TrainConfig
from deepscope.cryoem.io import read_coordinates, write_coordinates, write_mrc
from deepscope.cryoem.task import (
    PatchDataset, Picker, disk_mask, find_picks, make_loss, match_picks, pair_micrographs, pr_curve,
    train_picker,
)
from deepscope.cryoem.synthetic import write_blob_micrographs
from deepscope.errors import InputError
from deepscope.registry import create_model, list_models

MODELS = ["cryoem_unet", "cryoem_unet_regions", "cryoem_unet_joint"]


@pytest.mark.parametrize("name, channels", list(zip(MODELS, [1, 4, 5])))
def test_models_forward(name, channels):
    assert name in list_models()
    model = create_model(name, width=4, depth=2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 48))
    assert out.shape == (2, channels, 32, 48) and torch.isfinite(out).all()


def test_disk_mask_area():
    mask = disk_mask((100, 100), np.array([[50.0, 50.0], [-20.0, 5.0]]), 10.0)
    assert mask.sum() == pytest.approx(np.pi * 100, rel=0.05)  # the off-image disk adds nothing


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


def test_loss_ignores_unlabelled_pixels():
    loss = make_loss("joint")
    out = torch.zeros(1, 5, 8, 8, requires_grad=True)
    targets = {"mask": torch.zeros(1, 1, 8, 8), "regions": torch.full((1, 8, 8), 255, dtype=torch.long)}
    value = loss(out, targets)
    assert torch.isfinite(value) and value.item() == pytest.approx(np.log(2))
    value.backward()


def test_patch_dataset_shapes():
    item = {"image": np.zeros((40, 40), np.float32), "mask": np.ones((40, 40), np.float32),
            "regions": np.zeros((40, 40), np.uint8)}
    train = PatchDataset([item], 16, 5)
    x, y = train[0]
    assert len(train) == 5 and x.shape == (1, 16, 16) and y["regions"].dtype == torch.long
    assert len(PatchDataset([item], 16, 0, random=False)) == 4  # a 2x2 grid of 16 px tiles


def test_pair_micrographs_rejects_orphan_coordinates(tmp_path):
    from pathlib import Path

    with pytest.raises(InputError, match="other.star: coordinate file matches no micrograph"):
        pair_micrographs([Path("a.mrc")], {"a": tmp_path / "a.star", "other": tmp_path / "other.star"})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-epoch training on synthetic blobs: fast, and enough to learn them."""
    root = write_blob_micrographs(tmp_path_factory.mktemp("tiny"), seed=0)
    config = TrainConfig(model="cryoem_unet", model_kwargs={"width": 4, "depth": 2}, epochs=2, batch_size=8,
                         lr=1e-2, threads=2)
    mics = sorted((root / "mics").iterdir())
    result = train_picker(mics, root / "coords", 8.0, root / "run", config, target="disks", val_names=["m2"],
                          working_diameter=8.0, patch=64, patches_per_epoch=16, enhance="off")
    return root, result


def test_training_writes_tuned_checkpoint(tiny_run):
    root, result = tiny_run
    assert result["train"] == ["m0", "m1"] and result["val"] == ["m2"]
    assert (root / "run" / "best.pt").is_file() and (root / "run" / "history.csv").is_file()
    picker = Picker.from_checkpoint(root / "run")
    assert picker.target == "disks" and 0 < picker.threshold < 1
    assert picker.working_diameter == 8.0


def test_training_rejects_bad_setups(tiny_run):
    root, _ = tiny_run
    config = TrainConfig(model="cryoem_unet", epochs=1)
    mics = sorted((root / "mics").iterdir())
    with pytest.raises(InputError, match="needs --labels"):
        train_picker(mics, root / "coords", 8.0, root / "x", config, target="joint")
    with pytest.raises(InputError, match="validation micrograph 'zz'"):
        train_picker(mics, root / "coords", 8.0, root / "x", config, target="disks", val_names=["zz"])


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


def test_region_labels_follow_flip_and_scale(tmp_path):
    from PIL import Image

    from deepscope.cryoem.task import load_training_item

    write_mrc(np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32), tmp_path / "m.mrc")
    write_coordinates(pd.DataFrame({"x": [30.0], "y": [10.0]}), tmp_path / "m.star")
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:] = (0, 0, 255)  # background
    rgb[:16] = (255, 255, 0)  # ice along the top rows as stored
    Image.fromarray(rgb).save(tmp_path / "m.png")
    item = load_training_item(tmp_path / "m.mrc", tmp_path / "m.star", 16.0, 8.0, labels=tmp_path / "m.png",
                              labels_flip_y=True, enhance="off")
    assert item["image"].shape == (32, 32) and item["scale"] == 0.5
    # flipped: the ice is now at the bottom (class 1), background (class 2) at the top
    assert (item["regions"][-8:] == 1).all() and (item["regions"][:24] == 2).all()
    assert item["truth"][["x", "y"]].values.tolist() == [[14.75, 4.75]]
    assert item["mask"][5, 15] == 1.0


@pytest.mark.parametrize("target, name", [("regions", "cryoem_unet_regions"), ("joint", "cryoem_unet_joint")])
def test_pickers_with_region_heads(target, name):
    model = create_model(name, width=4, depth=2)
    picker = Picker(model, {"target": target, "working_diameter": 8.0, "threshold": 0.0})
    picks, (particle, regions) = picker.pick(np.zeros((40, 40), np.float32), 0.5, keep_maps=True)
    assert particle.shape == (40, 40) and regions.shape == (4, 40, 40)
    assert np.allclose(regions.sum(axis=0), 1, atol=1e-5)
    assert list(picks.columns) == ["x", "y", "score"]


def test_picker_refuses_foreign_checkpoints():
    with pytest.raises(InputError, match="not a cryo-EM picker"):
        Picker(create_model("cryoem_unet", width=4, depth=2), {"classes": ["a", "b"]})


def test_test_time_augmentation_is_rotation_equivariant():
    from deepscope.cryoem.task import predict_maps

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
