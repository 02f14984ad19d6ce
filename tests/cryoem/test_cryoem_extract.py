"""Particle extraction: box geometry, downsampling, normalisation, the STAR/MRCS pair and bad input."""

import io
import os
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
from PIL import Image

from deepscope.cli.main import main
from deepscope.cryoem.extract import (cut_boxes, disk_radius_mask, extract_micrograph, fourier_crop,
                                      normalise_background, resolve_pixel_size)
from deepscope.cryoem.io import read_micrograph, write_coordinates, write_mrc
from deepscope.errors import InputError

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


def test_extract_command_writes_a_relion4_stack(crop, tmp_path, capsys, monkeypatch):
    folder, image, table = crop
    # run from one folder, --out in another: every path in the STAR file is relative to the STAR file's folder
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = Path("..") / "out" / "deeper" / "p.mrcs"  # not as deep as the working directory
    assert main(["-q", "cryoem", "extract", os.path.relpath(folder / "coords", work), "--micrographs",
                 os.path.relpath(folder / "mics", work), "--diameter", "108", "--box", "160", "--size", "40",
                 "--out", str(out), "--voltage", "300", "--cs", "2.7", "--amplitude-contrast", "0.1"]) == 0
    monkeypatch.chdir(tmp_path)
    star_path = tmp_path / "out" / "deeper" / "p.star"
    assert star_path.read_text().startswith("# version 30001\n")
    blocks = starfile.read(star_path, always_dict=True)
    assert list(blocks) == ["optics", "particles"]
    optics = blocks["optics"].iloc[0]
    assert (optics["rlnOpticsGroup"], optics["rlnOpticsGroupName"], optics["rlnImageSize"],
            optics["rlnImageDimensionality"]) == (1, "opticsGroup1", 40, 2)
    # the crop's MRC header says 1 A per pixel; 160 px boxes cropped to 40 px: 4 A
    assert (optics["rlnMicrographOriginalPixelSize"], optics["rlnImagePixelSize"]) == (1.0, 4.0)
    assert (optics["rlnVoltage"], optics["rlnSphericalAberration"], optics["rlnAmplitudeContrast"]) == (300, 2.7, 0.1)
    star = blocks["particles"]
    assert len(star) == len(table) and (star["rlnOpticsGroup"] == 1).all()
    assert star["rlnImageName"].iloc[1] == "000002@p.mrcs"
    assert np.array_equal(star["rlnCoordinateX"].to_numpy(), table["x"].to_numpy())
    assert (star_path.parent / star["rlnMicrographName"].iloc[0]).resolve() == (
        folder / "mics" / f"{EMPIAR_STEM}.mrc").resolve()
    stack_path = star_path.parent / star["rlnImageName"].iloc[0].split("@")[1]
    with mrcfile.open(stack_path) as mrc:
        assert mrc.data.shape == (len(table), 40, 40) and mrc.is_image_stack()
        assert float(mrc.voxel_size.x) == pytest.approx(4.0)
        stack = np.array(mrc.data)
        assert mrc.header.dmin == stack.min() and mrc.header.dmax == stack.max()
        assert float(mrc.header.dmean) == pytest.approx(stack.mean(), abs=1e-6)
    assert mrcfile.validate(stack_path, print_file=io.StringIO())
    expected = extract_micrograph(image, table.iloc[[1]], 108, 160, 40)[0]
    assert np.allclose(stack[1], expected, atol=1e-5)
    assert f"{len(table)} particles from 1 micrograph(s), 4 A per pixel" in capsys.readouterr().out


def _extract(folder, out, *options, mics="mics"):
    return main(["-q", "cryoem", "extract", str(folder / "coords"), "--micrographs", str(folder / mics),
                 "--diameter", "108", "--box", "160", "--size", "40", "--out", str(out), *options])


def test_pixel_size_from_the_header_or_the_option_or_one_with_a_warning(crop, tmp_path, caplog):
    folder, image, table = crop
    for name, pixel_size in (("mrc25", 2.5), ("mrc13", 1.3)):
        (folder / name).mkdir(exist_ok=True)
        write_mrc(image, folder / name / f"{EMPIAR_STEM}.mrc", pixel_size=pixel_size)
    (folder / "jpeg").mkdir(exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "jpeg" / f"{EMPIAR_STEM}.jpg")

    def optics(out):
        return starfile.read(out.with_suffix(".star"), always_dict=True)["optics"].iloc[0]

    assert _extract(folder, tmp_path / "a.mrcs", mics="mrc25") == 0
    assert (optics(tmp_path / "a.mrcs")["rlnMicrographOriginalPixelSize"], optics(tmp_path / "a.mrcs")[
        "rlnImagePixelSize"]) == (2.5, 10.0)
    with mrcfile.open(tmp_path / "a.mrcs", header_only=True) as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(10.0)
    assert _extract(folder, tmp_path / "b.mrcs", "--pixel-size", "0.5", mics="mrc25") == 0
    assert optics(tmp_path / "b.mrcs")["rlnImagePixelSize"] == 2.0
    with caplog.at_level("WARNING", logger="deepscope.cryoem.extract"):
        assert _extract(folder, tmp_path / "c.mrcs", mics="jpeg") == 0
    assert "no pixel size in the micrographs' headers" in caplog.text
    assert optics(tmp_path / "c.mrcs")["rlnImagePixelSize"] == 4.0
    with pytest.raises(InputError, match=r"different pixel sizes \(1.3, 2.5 A\)"):
        resolve_pixel_size(None, [2.5, None, 1.3])


def test_extraction_streams_to_the_stack(crop, tmp_path, monkeypatch):
    # A stack of over 20 MB written in chunks of 16 particles: Python's peak allocation (numpy's
    # included) stays near one micrograph (4 MB as float32) plus one chunk, far below the stack.
    import tracemalloc

    import deepscope.cryoem.extract as extract

    folder, image, table = crop
    many = pd.DataFrame({"x": np.tile(table["x"], 40), "y": np.tile(table["y"], 40)})
    pairs = [(folder / "mics" / f"{EMPIAR_STEM}.mrc", many)]
    monkeypatch.setattr(extract, "CHUNK_BYTES", 2**20)
    tracemalloc.start()
    try:
        summary = extract.extract_to_stack(pairs, 40, 64, tmp_path / "s.mrcs", pixel_size=1.0, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    stack_bytes = summary.particles * 64 * 64 * 4
    assert stack_bytes > 20e6 and peak < 12e6, (stack_bytes, peak)
    with mrcfile.mmap(tmp_path / "s.mrcs") as mrc:
        assert np.allclose(mrc.data[len(table) + 3], extract_micrograph(image, table.iloc[[3]], 40, 64)[0], atol=1e-5)


def test_flip_y_reads_peer_frames(crop, tmp_path):
    folder, image, table = crop
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    write_coordinates(table.assign(y=CROP - 1 - table["y"]), flipped / f"{EMPIAR_STEM}.star")
    out = tmp_path / "f.mrcs"
    assert main(["-q", "cryoem", "extract", f"{flipped},flip-y={CROP}", "--micrographs", str(folder / "mics"),
                 "--diameter", "108", "--box", "160", "--size", "40", "--out", str(out)]) == 0
    assert np.allclose(starfile.read(tmp_path / "f.star")["particles"]["rlnCoordinateY"], table["y"])


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
