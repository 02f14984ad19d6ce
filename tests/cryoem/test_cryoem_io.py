"""Micrograph and coordinate readers/writers: round trips, frames, bad files."""

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
from PIL import Image

from deepscope.cryoem.coordinates import COORDINATE_INDEX, stable_uid, write_coordinate_index

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
    assert np.allclose(back["score"], table["score"], atol=1e-5)


def test_star_files_carry_relions_version_line(tmp_path):
    path = tmp_path / "m.star"
    write_coordinates(pd.DataFrame({"x": [1.0], "y": [2.0], "score": [0.5]}), path)
    assert path.read_text().splitlines()[:3] == ["# version 30001", "", "data_"]
    assert read_coordinates(path)["score"].tolist() == [0.5]


def test_cs_loads_in_cryosparc_tools_with_stable_uids_and_the_pick_score(tmp_path):
    from cryosparc.dataset import Dataset

    table = pd.DataFrame({"x": [100.0, 250.0, 30.0], "y": [40.0, 300.0, 7.5], "score": [0.9, 0.4, 0.7]})
    micrograph = tmp_path / "mics" / "Falcon_1.mrc"
    path = tmp_path / "out" / "Falcon_1.cs"
    path.parent.mkdir()
    write_coordinates(table, path, shape=(512, 400), micrograph=micrograph, pixel_size=1.34)
    first, again = Dataset.load(path), Dataset.load(path)
    assert first["uid"].dtype == np.uint64 and len(set(first["uid"].tolist())) == 3
    assert first["uid"].tolist() == again["uid"].tolist()  # cryosparc-tools makes new ones when a file has none
    write_coordinates(table, path, shape=(512, 400), micrograph=micrograph, pixel_size=1.34)
    assert Dataset.load(path)["uid"].tolist() == first["uid"].tolist()  # and a rewrite keeps them
    assert set(first["location/micrograph_uid"].tolist()) == {stable_uid("Falcon_1")}
    assert first["location/micrograph_path"].tolist() == ["../mics/Falcon_1.mrc"] * 3
    assert first["location/micrograph_shape"].tolist() == [[512, 400]] * 3
    assert np.allclose(first["location/micrograph_psize_A"], 1.34)
    assert np.allclose(first["location/center_x_frac"] * 400, table["x"])
    assert np.allclose(first["location/center_y_frac"] * 512, table["y"])
    assert np.allclose(first["pick_stats/ncc_score"], table["score"])
    # converted back to STAR, the score is a real figure of merit, not RELION's -999
    write_coordinates(read_coordinates(path), tmp_path / "back.star")
    assert np.allclose(starfile.read(tmp_path / "back.star")["rlnAutopickFigureOfMerit"], table["score"])
    # another micrograph's picks get other uids; without a pixel size the field is left out
    write_coordinates(table, tmp_path / "other.cs", shape=(512, 400))
    other = Dataset.load(tmp_path / "other.cs")
    assert not set(other["uid"].tolist()) & set(first["uid"].tolist())
    assert "location/micrograph_psize_A" not in other.fields()
    assert other["location/micrograph_path"].tolist() == ["other"] * 3


def test_old_cs_files_without_uid_or_score_still_read(tmp_path):
    records = np.zeros(2, dtype=[("location/center_x_frac", "<f4"), ("location/center_y_frac", "<f4"),
                                 ("location/micrograph_shape", "<u4", (2,))])
    records["location/center_x_frac"] = [0.25, 0.5]
    records["location/center_y_frac"] = [0.5, 0.75]
    records["location/micrograph_shape"] = (200, 100)
    np.save(tmp_path / "old.npy", records)
    (tmp_path / "old.npy").rename(tmp_path / "old.cs")
    back = read_coordinates(tmp_path / "old.cs")
    assert back[["x", "y"]].values.tolist() == [[25.0, 100.0], [50.0, 150.0]] and back["score"].isna().all()


def test_coordinate_index_is_not_a_micrographs_picks(tmp_path):
    write_coordinates(pd.DataFrame({"x": [1.0], "y": [2.0]}), tmp_path / "m1.star")
    write_coordinate_index([(tmp_path / "mics" / "m1.mrc", tmp_path / "m1.star")], tmp_path / COORDINATE_INDEX)
    index = starfile.read(tmp_path / COORDINATE_INDEX, always_dict=True)["coordinate_files"]
    assert index.values.tolist() == [["mics/m1.mrc", "m1.star"]]
    assert list(coordinate_files_by_stem(tmp_path)) == ["m1"]


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
