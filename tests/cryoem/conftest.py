"""Fixtures shared by the cryo-EM tests."""

import pytest

from deepscope.config import TrainConfig
from deepscope.cryoem.train import train_picker

from cryoem.cryoem_helpers import write_blob_micrographs


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 2-epoch training on synthetic blobs: fast, and enough to learn them."""
    root = write_blob_micrographs(tmp_path_factory.mktemp("tiny"), seed=0)
    config = TrainConfig(model="cryoem_unet", model_kwargs={"width": 4, "depth": 2}, epochs=2, batch_size=8,
                         lr=1e-2, threads=2)
    mics = sorted((root / "mics").iterdir())
    result = train_picker(mics, root / "coords", 8.0, root / "run", config, target="disks", val_names=["m2"],
                          working_diameter=8.0, patch=64, patches_per_epoch=16, enhance="off")
    return root, result
