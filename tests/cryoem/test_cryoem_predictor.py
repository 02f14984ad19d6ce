"""The trained picker: loading, device, heads, and picks in the micrograph's frame."""

import numpy as np
import pytest
import torch

from deepscope.cryoem.io import read_coordinates
from deepscope.cryoem.predictor import Picker
from deepscope.errors import InputError, ModelError
from deepscope.registry import create_model


def test_picks_are_in_the_micrograph_frame(tiny_run):
    from deepscope.cryoem.preprocess import load_for_picking

    root, _ = tiny_run
    picker = Picker.from_checkpoint(root / "run")
    # the shipped model's offset is keyed by its SHA-256: another checkpoint has none
    assert picker.centre_offset == (0.0, 0.0)
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


class _BrightnessNet(torch.nn.Module):
    """A stand-in picking network: its particle logit is the image brightness above 0.5."""

    def __init__(self):
        super().__init__()
        self.down = torch.nn.ModuleList([torch.nn.Identity()])  # depth 0: no padding
        self.gain = torch.nn.Parameter(torch.tensor(8.0))

    def forward(self, x):
        return (x - 0.5) * self.gain


def test_picks_at_binning_4_land_within_1px_of_known_centres(tmp_path):
    """Micrograph -> working scale (binned 4x) -> peaks -> micrograph frame, against known centres.

    Each blob is centred on a 4x4 block (x = 4 i + 1.5), so its binned peak is
    exactly working pixel i: a missing pixel-centre term in the mapping back
    (x = i / scale) moves every pick by 1.5 px, and any shift of a pixel or
    more fails too.
    """
    from deepscope.cryoem.io import write_mrc
    from deepscope.cryoem.preprocess import load_for_picking, rescale

    rng = np.random.default_rng(3)
    rows, cols = 256, 320  # not square: a swapped x / y fails as well
    blocks = [(bx, by) for bx in range(8, 80, 12) for by in range(8, 64, 12)]
    centres = np.array([[4 * bx + 1.5, 4 * by + 1.5] for bx, by in blocks])
    yy, xx = np.mgrid[:rows, :cols]
    image = rng.normal(0, 0.01, (rows, cols))
    for x, y in centres:
        image += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 4.0**2))
    write_mrc(image.astype(np.float32), tmp_path / "m.mrc")

    picker = Picker(_BrightnessNet(), {"target": "disks", "working_diameter": 8.0, "threshold": 0.9})
    normalised, scale, shape = load_for_picking(tmp_path / "m.mrc", 32.0, picker.working_diameter, "off")
    assert scale == 0.25 and shape == (rows, cols) and normalised.shape == (64, 80)
    # the same binning without the robust normalisation, whose clipping would flatten the blobs' tops
    picks = picker.pick(rescale(image, scale), scale)
    assert len(picks) == len(centres)
    found = picks[["x", "y"]].to_numpy()
    distance = np.linalg.norm(found[:, None, :] - centres[None, :, :], axis=-1).min(axis=1)
    assert distance.max() <= 1.0, f"picks off their centres by up to {distance.max():.2f} px"


def test_from_checkpoint_takes_the_shipped_name_and_refuses_other_domains():
    picker = Picker.from_checkpoint("cryoem_empiar10017")
    assert picker.checkpoint.name == "cryoem_empiar10017.pt" and picker.working_diameter == 13.5
    # the CryoPPP labels' frame, measured on its training micrographs (one view) and carried in its metadata
    assert picker.centre_offset == pytest.approx((-2.34 / 8, -3.38 / 8), abs=0.01)
    assert picker.augment == 1 and picker.threshold == 0.4
    with pytest.raises(ModelError, match="galaxy_bars is a shipped galaxy model, not a cryoem one"):
        Picker.from_checkpoint("galaxy_bars")


def test_missing_cuda_fails_loudly():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match="CUDA is not available"):
        Picker(create_model("cryoem_unet", width=4, depth=2), {"target": "disks", "working_diameter": 8.0},
               device="cuda")
