"""Training: loss, patches, targets at working scale, and a tiny end-to-end training."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.config import TrainConfig
from deepscope.core.checkpoint import load_checkpoint
from deepscope.cryoem.io import write_coordinates, write_mrc
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.train import (MIN_MATCHED, PatchDataset, load_training_item, make_loss, measure_centre_offset,
                                    train_picker)
from deepscope.errors import InputError, ModelError


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


def test_training_writes_tuned_checkpoint(tiny_run):
    root, result = tiny_run
    assert result["train"] == ["m0", "m1"] and result["val"] == ["m2"]
    assert (root / "run" / "best.pt").is_file() and (root / "run" / "history.csv").is_file()
    picker = Picker.from_checkpoint(root / "run")
    assert picker.target == "disks" and 0 < picker.threshold < 1
    assert picker.working_diameter == 8.0
    # the tuning is written back into best.pt, keeping the rest of the checkpoint
    record = load_checkpoint(root / "run" / "best.pt")
    tuning = result["tuning"]
    assert record["meta"]["val_f1"] == tuning["f1"] and record["meta"]["threshold"] == tuning["threshold"]
    assert record["meta"]["edge_fraction"] == tuning["edge_fraction"] and "optimizer" in record
    # ... with the picks' offset from the labels, which the loaded picker subtracts
    assert record["meta"]["centre_offset"] == list(tuning["centre_offset"])
    assert picker.centre_offset == tuple(tuning["centre_offset"])


class BlobLogits(torch.nn.Module):
    """A stand-in U-Net (three poolings' worth of padding) whose particle logits are the image itself."""

    def __init__(self):
        super().__init__()
        self.down = torch.nn.ModuleList(torch.nn.Identity() for _ in range(4))
        self.gain = torch.nn.Parameter(torch.tensor(8.0))

    def forward(self, x):
        return self.gain * x - 4


def test_centre_offset_is_the_median_shift_of_picks_from_labels():
    rows, cols = np.mgrid[:128, :128]
    centres = np.array([(20.3 + 30 * i, 25.6 + 30 * j) for i in range(4) for j in range(3)])
    image = sum(np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0) for x, y in centres).astype(np.float32)
    truth = pd.DataFrame(centres + [1.5, -0.75], columns=["x", "y"])  # labels off the particles' centres
    meta = {"target": "disks", "working_diameter": 8.0, "threshold": 0.5, "nms_fraction": 0.6,
            "edge_fraction": 0.0, "centre_offset": (5.0, 5.0)}
    picker = Picker(BlobLogits(), meta)
    items = [{"image": image, "truth": truth}] * (MIN_MATCHED // len(centres) + 1)
    dx, dy = measure_centre_offset(picker, items)
    assert dx == pytest.approx(-1.5, abs=0.2) and dy == pytest.approx(0.75, abs=0.2)
    assert picker.centre_offset == (5.0, 5.0)  # measured without it, left as it was
    assert measure_centre_offset(picker, items[:1]) == (0.0, 0.0)  # too few matches to say


def test_training_rejects_bad_setups(tiny_run):
    root, _ = tiny_run
    config = TrainConfig(model="cryoem_unet", epochs=1)
    mics = sorted((root / "mics").iterdir())
    with pytest.raises(InputError, match="needs --labels"):
        train_picker(mics, root / "coords", 8.0, root / "x", config, target="joint")
    with pytest.raises(InputError, match="validation micrograph 'zz'"):
        train_picker(mics, root / "coords", 8.0, root / "x", config, target="disks", val_names=["zz"])
    with pytest.raises(InputError, match="--arch cryoem_unet_joint cannot learn --target disks"):
        train_picker(mics, root / "coords", 8.0, root / "x", TrainConfig(model="cryoem_unet_joint"), target="disks")
    with pytest.raises(ModelError, match="--arch barnet is not a cryoem network"):
        train_picker(mics, root / "coords", 8.0, root / "x", TrainConfig(model="barnet"), target="disks")
    assert not (root / "x").exists()  # refused before the run directory is made


def test_region_labels_follow_flip_and_scale(tmp_path):
    from PIL import Image

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
