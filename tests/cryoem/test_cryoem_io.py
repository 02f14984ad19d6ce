"""Micrograph and coordinate readers/writers: round trips, frames, bad files."""

import mrcfile
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepscope.cryoem.io import (
    coordinate_files_by_stem, flip_y, pair_micrographs, read_coordinates, read_micrograph, read_micrograph_reduced,
    read_region_labels, write_coordinates, write_mrc,
)
from deepscope.errors import FormatError, InputError, OutputError

EMPIAR_STEM = "Falcon_2012_06_12-14_33_35_0"


@pytest.fixture()
def mrc_path(tmp_path):
    path = tmp_path / "m.mrc"
    write_mrc(np.arange(64 * 48, dtype=np.float32).reshape(48, 64), path, pixel_size=2.5)
    return path


def test_mrc_round_trip_keeps_rows_as_y(mrc_path):
    image = read_micrograph(mrc_path)
    assert image.shape == (48, 64)
    assert image[1, 0] == 64  # row 1 starts after one row of 64 columns
    with mrcfile.open(mrc_path) as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(2.5)


def test_mrcs_stack_is_summed(tmp_path):
    path = tmp_path / "movie.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((3, 16, 16), np.float32))
    assert read_micrograph(path).max() == 3


def test_tiff_png_and_jpeg_read(tmp_path):
    data = (np.arange(32 * 32) % 251).reshape(32, 32).astype(np.uint8)
    for name in ("a.tif", "a.png", "a.jpg"):
        Image.fromarray(data).save(tmp_path / name)
        image = read_micrograph(tmp_path / name)
        assert image.shape == (32, 32) and image.dtype == np.float32
    assert np.array_equal(read_micrograph(tmp_path / "a.png"), data)


def test_jpeg_reduced_decode_reports_factor(tmp_path):
    Image.fromarray(np.full((256, 256), 100, np.uint8)).save(tmp_path / "big.jpg")
    image, factor = read_micrograph_reduced(tmp_path / "big.jpg", reduce=8)
    assert image.shape == (32, 32) and factor == 8


@pytest.mark.parametrize("content, match", [
    (b"", "empty file"),
    (b"II*\x00garbage-tiff-bytes", "cannot decode TIFF"),
    (b"\xff\xd8\xff\xe0garbage", "cannot decode JPEG"),
    (b"hello world, not an image", "not a supported micrograph"),
])
def test_bad_micrographs_are_rejected_by_name(tmp_path, content, match):
    path = tmp_path / "bad.tif"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match) as info:
        read_micrograph(path)
    assert str(path) in str(info.value)


def test_header_only_and_truncated_mrc(mrc_path, tmp_path):
    data = mrc_path.read_bytes()
    for name, size in (("header.mrc", 1024), ("truncated.mrc", 1024 + 100)):
        path = tmp_path / name
        path.write_bytes(data[:size])
        with pytest.raises(FormatError, match=f"{name}: not a readable MRC file"):
            read_micrograph(path)


@pytest.mark.parametrize("suffix", [".star", ".box", ".csv", ".cs"])
def test_coordinate_round_trip(tmp_path, suffix):
    table = pd.DataFrame({"x": [100.0, 250.0], "y": [40.0, 300.0], "score": [0.9, 0.4]})
    path = tmp_path / f"m{suffix}"
    write_coordinates(table, path, box_size=108, shape=(512, 400))
    back = read_coordinates(path)
    assert np.allclose(back[["x", "y"]], table[["x", "y"]], atol=1e-3)
    if suffix in (".star", ".box", ".csv"):
        assert np.allclose(back["score"], table["score"], atol=1e-5)


def test_box_corner_is_converted_to_centre(tmp_path):
    path = tmp_path / "p.box"
    path.write_text("2306\t1266\t180\t180\t6.3\n")
    assert read_coordinates(path)[["x", "y", "score"]].values.tolist() == [[2396.0, 1356.0, 6.3]]


def test_writers_need_sizes(tmp_path):
    table = pd.DataFrame({"x": [1.0], "y": [2.0]})
    with pytest.raises(OutputError, match="needs the box size"):
        write_coordinates(table, tmp_path / "a.box")
    with pytest.raises(OutputError, match="needs the micrograph shape"):
        write_coordinates(table, tmp_path / "a.cs")
    assert not list(tmp_path.iterdir())


def test_coordinate_file_without_coordinates(tmp_path):
    path = tmp_path / "none.star"
    path.write_text("data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n")
    with pytest.raises(FormatError, match="none.star: no coordinates"):
        read_coordinates(path)
    assert len(read_coordinates(path, allow_empty=True)) == 0
    empty = tmp_path / "empty.box"
    empty.write_text("")
    with pytest.raises(FormatError, match="empty.box: empty coordinate file"):
        read_coordinates(empty)
    other = tmp_path / "cols.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="CSV needs columns"):
        read_coordinates(other)
    with pytest.raises(FormatError, match="unknown coordinate format"):
        read_coordinates(tmp_path / "x.txt")


def test_flip_y_is_an_involution():
    table = pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 4095.0]})
    assert flip_y(table, 4096)["y"].tolist() == [4095.0, 0.0]
    assert flip_y(flip_y(table, 4096), 4096).equals(table)


def test_coordinate_files_by_stem(tmp_path):
    (tmp_path / "a.star").write_text("x")
    (tmp_path / "a.box").write_text("x")
    with pytest.raises(FormatError, match="two coordinate files for micrograph 'a'"):
        coordinate_files_by_stem(tmp_path)
    with pytest.raises(FormatError, match="directory not found"):
        coordinate_files_by_stem(tmp_path / "missing")


def test_real_empiar_files(cryoem_dir):
    root = cryoem_dir / "empiar10017"
    image, factor = read_micrograph_reduced(root / "micrographs" / f"{EMPIAR_STEM}.jpg", reduce=8)
    assert image.shape == (512, 512) and factor == 8
    truth = read_coordinates(root / "particles" / f"{EMPIAR_STEM}.csv")
    assert len(truth) == 630 and truth["x"].between(0, 4095).all()
    star = read_coordinates(root / "peer_picks" / "cassper" / f"{EMPIAR_STEM}.star")
    assert star["score"].isna().all()  # CASSPER writes -999: no score
    box = read_coordinates(root / "peer_picks" / "topaz_repic" / f"{EMPIAR_STEM}.box")
    assert box["score"].notna().all()


def test_cassper_labels_are_flipped_relative_to_jpeg(cryoem_dir):
    root = cryoem_dir / "empiar10017"
    labels = read_region_labels(root / "cassper_labels" / f"{EMPIAR_STEM}.png")
    truth = read_coordinates(root / "particles" / f"{EMPIAR_STEM}.csv")
    rows, cols = truth["y"].round().astype(int), truth["x"].round().astype(int)
    protein_flipped = (labels[::-1][rows, cols] == 0).mean()
    protein_as_is = (labels[rows, cols] == 0).mean()
    assert protein_flipped > 2 * protein_as_is


def test_pair_micrographs_rejects_orphan_coordinates(tmp_path):
    from pathlib import Path

    with pytest.raises(InputError, match="other.star: coordinate file matches no micrograph"):
        pair_micrographs([Path("a.mrc")], {"a": tmp_path / "a.star", "other": tmp_path / "other.star"})
