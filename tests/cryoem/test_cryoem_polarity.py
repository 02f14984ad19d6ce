"""Particle polarity read from the pixels: an inverted micrograph is picked like the original."""

import numpy as np
import pytest
from pandas.testing import assert_frame_equal
from PIL import Image

from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.preprocess import decide_polarity, load_for_picking, particle_contrast, rescale
from deepscope.errors import InputError
from deepscope.samples import sample_dir

# the bundled micrographs are EMPIAR-10017 binned 4x: 27 px particles
SAMPLE = sample_dir("cryoem", "Falcon_2012_06_12-14_33_35_0.jpg")


@pytest.fixture(scope="module")
def original_and_inverted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("polarity")
    pixels = np.asarray(Image.open(SAMPLE).convert("L"))
    Image.fromarray(pixels).save(folder / "dark.png")
    Image.fromarray(255 - pixels).save(folder / "bright.png")
    return folder / "dark.png", folder / "bright.png"


def test_contrast_has_the_particles_sign_and_inverts_exactly():
    pixels = np.asarray(Image.open(SAMPLE).convert("L"), dtype=np.float32)
    working = rescale(pixels, 0.5)  # 13.5 px particles
    dark = particle_contrast(working, 13.5)
    assert dark > 0.1
    assert particle_contrast(255 - working, 13.5) == pytest.approx(-dark, abs=1e-6)
    assert decide_polarity(working, 13.5) == "dark" and decide_polarity(-working, 13.5) == "bright"


def test_simulated_raw_micrograph_reads_dark_and_inverted_bright(cryoem_dir):
    from deepscope.cryoem.synthetic import read_structure, simulate_micrograph

    structure = read_structure(cryoem_dir / "structures" / "5a1a.cif")
    image, _, diameter = simulate_micrograph(structure, shape=(384, 384), n_particles=40, pixel_size=4.0,
                                             snr=0.05, seed=1)
    assert decide_polarity(image, diameter) == "dark" and decide_polarity(-image, diameter) == "bright"


def test_an_inverted_micrograph_gives_the_same_picks(original_and_inverted):
    picker = Picker.from_checkpoint()
    dark_file, bright_file = original_and_inverted
    picks = []
    for path in (dark_file, bright_file):
        image, scale, _ = load_for_picking(path, 27.0, picker.working_diameter)
        picks.append(picker.pick(image, scale))
    assert len(picks[0]) > 100 and len(picks[1]) == len(picks[0])
    np.testing.assert_allclose(picks[1][["x", "y"]].to_numpy(), picks[0][["x", "y"]].to_numpy(), atol=0.01)
    # told the wrong polarity, the picker sees bright particles and finds far fewer or other ones
    image, scale, _ = load_for_picking(bright_file, 27.0, picker.working_diameter, polarity="dark")
    wrong = picker.pick(image, scale)
    assert len(wrong) < 0.8 * len(picks[0]) or not np.allclose(
        wrong[["x", "y"]].to_numpy()[:50], picks[0][["x", "y"]].to_numpy()[:50], atol=1.0)


def test_polarity_choice_is_checked_before_reading(tmp_path):
    with pytest.raises(InputError, match="polarity must be auto, dark or bright"):
        load_for_picking(tmp_path / "missing.mrc", 27.0, 13.5, polarity="inverted")


def test_pick_command_reads_polarity_and_obeys_an_explicit_one(original_and_inverted, tmp_path):
    from deepscope.cli.main import main
    from deepscope.cryoem.io import read_coordinates

    dark_file, bright_file = original_and_inverted

    def picks(path, *extra):
        out = tmp_path / f"{path.stem}{'_'.join(extra)}"
        assert main(["-q", "cryoem", "pick", str(path), "--diameter", "27", "--out", str(out), *extra]) == 0
        return read_coordinates(out / f"{path.stem}.star")

    dark = picks(dark_file)
    assert_frame_equal(picks(bright_file), dark, atol=0.01)
    assert_frame_equal(picks(bright_file, "--polarity", "bright"), dark, atol=0.01)
    assert len(picks(bright_file, "--polarity", "dark")) < 0.8 * len(dark)
