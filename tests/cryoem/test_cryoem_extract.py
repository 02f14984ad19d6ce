"""Particle extraction: box geometry, downsampling, normalisation, the STAR/MRCS pair and bad input."""

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile

from deepscope.cli.main import main
from deepscope.cryoem.extract import (cut_boxes, disk_radius_mask, extract_micrograph, fourier_crop,
                                      normalise_background)
from deepscope.cryoem.io import read_micrograph, write_coordinates, write_mrc

from cli_errors import one_error_line

EMPIAR_STEM = "Falcon_2012_06_12-14_33_35_0"
CROP = 1024  # px of the real micrograph kept: about 40 particles


@pytest.fixture(scope="module")
def crop(cryoem_dir, tmp_path_factory):
    """The top-left corner of a real EMPIAR-10017 micrograph, with its true particle centres."""
    folder = tmp_path_factory.mktemp("crop")
    data = cryoem_dir / "empiar10017"
    image = read_micrograph(data / "micrographs" / f"{EMPIAR_STEM}.jpg")[:CROP, :CROP]
    (folder / "mics").mkdir()
    (folder / "coords").mkdir()
    write_mrc(image, folder / "mics" / f"{EMPIAR_STEM}.mrc")
    truth = pd.read_csv(data / "particles" / f"{EMPIAR_STEM}.csv")
    inside = truth[(truth["X-Coordinate"] < CROP) & (truth["Y-Coordinate"] < CROP)]
    table = pd.DataFrame({"x": inside["X-Coordinate"], "y": inside["Y-Coordinate"]})
    write_coordinates(table, folder / "coords" / f"{EMPIAR_STEM}.star")
    return folder, image, table.reset_index(drop=True)


def test_a_bright_pixel_lands_in_the_box_centre():
    image = np.zeros((40, 50), np.float32)
    image[13, 31] = 1.0  # row 13 = y, column 31 = x
    boxes = cut_boxes(image, np.array([31.0]), np.array([13.0]), 8)
    assert np.argwhere(boxes[0] == 1.0).tolist() == [[4, 4]]


def test_box_past_the_edge_is_filled_with_the_mean_of_the_inside():
    image = np.full((20, 20), 2.0, np.float32)
    image[:, 10:] = 4.0
    box = cut_boxes(image, np.array([1.0]), np.array([10.0]), 8)[0]
    assert box[0, 0] == pytest.approx(2.0)  # column -3: outside, the inside part is all 2
    assert box[4, 5] == 2.0


def test_fourier_crop_keeps_a_low_frequency_wave():
    x = np.arange(64)
    wave = np.cos(2 * np.pi * 3 * x / 64)[None, :].repeat(64, 0)[None]
    small = fourier_crop(wave, 16)[0]
    expected = np.cos(2 * np.pi * 3 * np.arange(16) / 16)
    assert np.allclose(small[5], expected, atol=1e-5)


def test_background_is_normalised_and_the_particle_kept():
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 5.0, (1, 32, 32))
    image[0][disk_radius_mask(32, 6)] -= 40.0  # a dark particle
    out = normalise_background(image, 8)[0]
    background = out[~disk_radius_mask(32, 8)]
    assert background.mean() == pytest.approx(0, abs=1e-5) and background.std() == pytest.approx(1, abs=1e-5)
    assert out[16, 16] < -5


def test_extract_micrograph_centres_real_particles(crop):
    _, image, table = crop
    particles = extract_micrograph(image, table, 108, 162, 48)
    # the particles are dark in these micrographs: the average box is dark in its centre
    average = particles.mean(0)
    assert particles.shape == (len(table), 48, 48)
    assert average[disk_radius_mask(48, 6)].mean() < average[~disk_radius_mask(48, 18)].mean() - 0.5


def test_extract_command_writes_a_relion_stack(crop, tmp_path, capsys):
    folder, image, table = crop
    out = tmp_path / "p.mrcs"
    assert main(["-q", "cryoem", "extract", str(folder / "coords"), "--micrographs", str(folder / "mics"),
                 "--diameter", "108", "--box", "160", "--size", "40", "--out", str(out)]) == 0
    star = starfile.read(tmp_path / "p.star")
    assert len(star) == len(table)
    assert star["rlnImageName"].iloc[1] == "000002@p.mrcs"
    assert np.array_equal(star["rlnCoordinateX"].to_numpy(), table["x"].to_numpy())
    assert star["rlnMicrographName"].iloc[0].endswith(f"{EMPIAR_STEM}.mrc")
    with mrcfile.open(out) as mrc:
        assert mrc.data.shape == (len(table), 40, 40) and mrc.is_image_stack()
        assert float(mrc.voxel_size.x) == pytest.approx(4.0)
        stack = np.array(mrc.data)
    expected = extract_micrograph(image, table.iloc[[1]], 108, 160, 40)[0]
    assert np.allclose(stack[1], expected, atol=1e-5)
    assert f"{len(table)} particles from 1 micrograph" in capsys.readouterr().out


def test_flip_y_reads_peer_frames(crop, tmp_path):
    folder, image, table = crop
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    write_coordinates(table.assign(y=CROP - 1 - table["y"]), flipped / f"{EMPIAR_STEM}.star")
    out = tmp_path / "f.mrcs"
    assert main(["-q", "cryoem", "extract", f"{flipped},flip-y={CROP}", "--micrographs", str(folder / "mics"),
                 "--diameter", "108", "--box", "160", "--size", "40", "--out", str(out)]) == 0
    assert np.allclose(starfile.read(tmp_path / "f.star")["rlnCoordinateY"], table["y"])


@pytest.mark.parametrize("case, match", [
    ("outside", "1 coordinate(s) outside the 1024 x 1024 px micrograph, first (1500, 40)"),
    ("box", "--box 2000 px is larger than the micrograph"),
    ("empty", "no particles"),
    ("stem", "coordinate file matches no micrograph"),
])
def test_bad_input_is_one_line_and_writes_nothing(crop, tmp_path, capsys, case, match):
    folder, _, table = crop
    coords = tmp_path / "coords"
    coords.mkdir()
    stem = "another_micrograph" if case == "stem" else EMPIAR_STEM
    rows = {"outside": pd.concat([table, pd.DataFrame({"x": [1500.0], "y": [40.0]})]),
            "empty": table.iloc[:0]}.get(case, table)
    write_coordinates(rows, coords / f"{stem}.star")
    out = tmp_path / "out" / "p.mrcs"
    box = "2000" if case == "box" else "160"
    assert main(["cryoem", "extract", str(coords), "--micrographs", str(folder / "mics"), "--diameter", "108",
                 "--box", box, "--out", str(out)]) == 1
    assert match in one_error_line(capsys)
    assert not out.parent.exists() or not list(out.parent.iterdir())
