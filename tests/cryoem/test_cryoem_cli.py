"""The cryoem commands end to end, and their one-line errors on bad input."""

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from deepscope.cli.main import main
from deepscope.cryoem.io import coordinate_files_by_stem, read_coordinates, write_coordinates

from cli_errors import one_error_line
from cryoem.cryoem_helpers import write_blob_micrographs

EMPIAR_STEM = "Falcon_2012_06_12-14_33_35_0"


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """Three synthetic micrographs of Gaussian blobs, 12 particles each."""
    return write_blob_micrographs(tmp_path_factory.mktemp("blobs"), seed=1)


@pytest.fixture(scope="module")
def trained(blobs):
    run = blobs / "run"
    code = main(["-q", "cryoem", "train", "--micrographs", str(blobs / "mics"), "--coords", str(blobs / "coords"),
                 "--diameter", "8", "--working-diameter", "8", "--out", str(run), "--val", "m2", "--epochs", "2",
                 "--width", "4", "--depth", "2", "--patches", "16", "--batch-size", "8", "--enhance", "off"])
    assert code == 0
    return run


def test_train_pick_evaluate(blobs, trained, tmp_path, capsys):
    picks = tmp_path / "picks"
    assert main(["-q", "cryoem", "pick", str(blobs / "mics" / "m2.mrc"), "--diameter", "8", "--model", str(trained),
                 "--out", str(picks), "--threshold", "0.05", "--enhance", "off", "--masks", "--overlays"]) == 0
    assert {p.name for p in picks.iterdir()} == {"m2.star", "coordinate_files.star", "m2_mask.png", "m2_overlay.png",
                                                 "m2_overlay_r0c0.png"}
    # the tile is the micrograph at full resolution, the overview at working scale
    from PIL import Image

    from deepscope.cryoem.io import read_micrograph

    with Image.open(picks / "m2_overlay_r0c0.png") as tile:
        assert tile.size[::-1] == read_micrograph(blobs / "mics" / "m2.mrc").shape
    table = read_coordinates(picks / "m2.star", allow_empty=True)
    assert (table["score"] >= 0.05).all()
    out = tmp_path / "eval"
    capsys.readouterr()
    assert main(["-q", "cryoem", "evaluate", "--picks", str(picks), "--truth", str(blobs / "coords"),
                 "--diameter", "8", "--out", str(out), "--peer", f"perfect={blobs / 'coords'}",
                 "--micrographs", str(blobs / "mics")]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["picker"].tolist() == ["deepscope", "perfect"]
    assert summary.loc[1, "f1"] == 1.0 and summary.loc[1, "median_centre_error_px"] == 0.0
    assert (out / "report.html").is_file() and (out / "overlay_m2.png").is_file()
    assert "deepscope" in capsys.readouterr().out


def test_pick_batch_keeps_good_results(blobs, trained, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good.mrc").write_bytes((blobs / "mics" / "m0.mrc").read_bytes())
    (inputs / "header.mrc").write_bytes((blobs / "mics" / "m0.mrc").read_bytes()[:1024])
    (inputs / "empty.tif").write_bytes(b"")
    (inputs / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "picks"
    code = main(["-q", "cryoem", "pick", str(inputs), "--diameter", "8", "--model", str(trained), "--out", str(out),
                 "--threshold", "0.05"])
    assert code == 1
    err = capsys.readouterr().err
    assert "deepscope: error: 3 input(s) failed" in err and "Traceback" not in err
    for name in ("header.mrc", "empty.tif", "junk.jpg"):
        assert name in err
    assert sorted(p.name for p in out.iterdir()) == ["coordinate_files.star", "good.star"]
    assert starfile.read(out / "coordinate_files.star")["rlnMicrographCoordinates"].tolist() == ["good.star"]


def test_pick_writes_a_relion4_index_with_paths_relative_to_it(blobs, trained, tmp_path, monkeypatch):
    # run from one folder, micrographs in another, --out in a third: no path may depend on the working directory
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    mics = Path(os.path.relpath(blobs / "mics", work))
    out = Path("..") / "elsewhere" / "picks"
    assert main(["-q", "cryoem", "pick", str(mics / "m1.mrc"), str(mics / "m2.mrc"), "--diameter", "8",
                 "--model", str(trained), "--out", str(out), "--threshold", "0.05", "--enhance", "off"]) == 0
    monkeypatch.chdir(tmp_path.parent)
    folder = tmp_path / "elsewhere" / "picks"
    blocks = starfile.read(folder / "coordinate_files.star", always_dict=True)
    assert list(blocks) == ["coordinate_files"]
    index = blocks["coordinate_files"]
    assert list(index.columns) == ["rlnMicrographName", "rlnMicrographCoordinates"]
    assert [(folder / m).resolve() for m in index["rlnMicrographName"]] == [
        (blobs / "mics" / f"m{i}.mrc").resolve() for i in (1, 2)]
    assert index["rlnMicrographCoordinates"].tolist() == ["m1.star", "m2.star"]
    for name in ("coordinate_files.star", "m1.star"):
        assert (folder / name).read_text().startswith("# version 30001\n")
    picks = starfile.read(folder / "m1.star")
    assert list(picks.columns) == ["rlnCoordinateX", "rlnCoordinateY", "rlnAutopickFigureOfMerit"] and len(picks)
    # the index is no micrograph's picks: evaluate and extract read the directory as before
    assert sorted(coordinate_files_by_stem(folder)) == ["m1", "m2"]


def test_pick_drops_picks_within_the_edge_margin(blobs, trained, tmp_path):
    def picks(margin):
        out = tmp_path / f"margin{margin}"
        assert main(["-q", "cryoem", "pick", str(blobs / "mics" / "m0.mrc"), "--diameter", "8", "--model", str(trained),
                     "--out", str(out), "--threshold", "0.05", "--enhance", "off", "--edge-margin", str(margin)]) == 0
        table = read_coordinates(out / "m0.star", allow_empty=True)
        return np.minimum.reduce([table["x"], table["y"], 127 - table["x"], 127 - table["y"]])

    everywhere, inside = picks(0), picks(2)
    # particles lie 12 px (1.5 diameters) and more from the edge: a 2-diameter margin has some to drop
    assert (everywhere < 16).sum() >= 2 and len(inside) >= 4
    # 16 px at the map's peaks; the centroid refinement moves a pick by less than 0.37 diameters
    assert (inside >= 16 - 3).all() and len(inside) < len(everywhere)


@pytest.mark.parametrize("out", ["e1.star", "e1.cs"])
def test_pick_refuses_an_output_named_like_a_coordinate_file(blobs, trained, tmp_path, capsys, out):
    assert main(["cryoem", "pick", str(blobs / "mics" / "m2.mrc"), "--diameter", "8", "--model", str(trained),
                 "--out", str(tmp_path / out)]) == 1
    assert f"{out}: --out is a directory" in one_error_line(capsys)
    assert not (tmp_path / out).exists()


def test_convert_to_cs_takes_path_shape_and_pixel_size_from_the_micrographs(blobs, tmp_path):
    from cryosparc.dataset import Dataset

    from deepscope.cryoem.coordinates import stable_uid

    out = tmp_path / "cs"
    assert main(["-q", "cryoem", "convert", str(blobs / "coords" / "m1.star"), "--to", "cs", "--micrographs",
                 str(blobs / "mics"), "--out", str(out)]) == 0
    data = Dataset.load(out / "m1.cs")
    assert (out / data["location/micrograph_path"][0]).resolve() == (blobs / "mics" / "m1.mrc").resolve()
    assert data["location/micrograph_shape"][0].tolist() == [128, 128]
    assert data["location/micrograph_uid"][0] == stable_uid("m1") and data["uid"][1] == stable_uid("m1/1")
    assert "location/micrograph_psize_A" in data.fields()
    back, original = read_coordinates(out / "m1.cs"), read_coordinates(blobs / "coords" / "m1.star")
    assert np.allclose(back[["x", "y"]], original[["x", "y"]], atol=1e-3)


def test_convert_box_to_star_with_flip(cryoem_dir, tmp_path):
    source = cryoem_dir / "empiar10017" / "peer_picks" / "topaz_repic" / f"{EMPIAR_STEM}.box"
    assert main(["-q", "cryoem", "convert", str(source), "--to", "star", "--flip-y", "4096", "--out",
                 str(tmp_path)]) == 0
    back = read_coordinates(tmp_path / f"{EMPIAR_STEM}.star")
    box = read_coordinates(source)
    assert np.allclose(back["y"], 4095 - box["y"]) and np.allclose(back["x"], box["x"])
    assert main(["-q", "cryoem", "convert", str(tmp_path / f"{EMPIAR_STEM}.star"), "--to", "box", "--box-size",
                 "180", "--flip-y", "4096", "--out", str(tmp_path / "box")]) == 0
    assert np.allclose(read_coordinates(tmp_path / "box" / f"{EMPIAR_STEM}.box")[["x", "y"]], box[["x", "y"]])


def test_simulate_command(cryoem_dir, tmp_path, capsys):
    code = main(["-q", "cryoem", "simulate", str(cryoem_dir / "structures" / "5a1a.cif"), "--out", str(tmp_path),
                 "--count", "1", "--size", "256", "--particles", "5", "--pixel-size", "6"])
    assert code == 0
    assert len(read_coordinates(tmp_path / "coords" / "micrograph_000.star")) == 5
    assert "particle diameter" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (["convert", "nowhere.star", "--to", "star", "--out", "x"], "nowhere.star: no such file"),
    (["convert", "a.star", "--to", "box", "--out", "x"], "needs --box-size"),
    (["evaluate", "--picks", "p", "--truth", "t", "--diameter", "8", "--out", "o", "--peer", "bad"],
     "expected NAME=DIR"),
    (["pick", "x.mrc", "--diameter", "-3", "--out", "o"], "--diameter must be positive"),
    (["pick", "x.mrc", "--diameter", "big", "--out", "o"], "--diameter must be positive (pixels) or auto"),
    (["pick", "x.mrc", "--diameter", "8", "--edge-margin", "-1", "--out", "o"], "--edge-margin must be between 0"),
    (["simulate", "missing.cif", "--out", "o"], "missing.cif"),
])
def test_bad_arguments_give_one_line(args, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["cryoem", *args]) == 1
    assert match in one_error_line(capsys)


def test_evaluate_rejects_unmatched_names(blobs, tmp_path, capsys):
    picks = tmp_path / "picks"
    picks.mkdir()
    write_coordinates(pd.DataFrame({"x": [1.0], "y": [2.0]}), picks / "unknown.star")
    assert main(["cryoem", "evaluate", "--picks", str(picks), "--truth", str(blobs / "coords"), "--diameter", "8",
                 "--out", str(tmp_path / "eval")]) == 1
    assert "no pick file has a truth file" in one_error_line(capsys)


def test_train_rejects_coordinates_without_micrograph(blobs, tmp_path, capsys):
    coords = tmp_path / "coords"
    coords.mkdir()
    write_coordinates(pd.DataFrame({"x": [1.0], "y": [2.0]}), coords / "stranger.star")
    assert main(["cryoem", "train", "--micrographs", str(blobs / "mics"), "--coords", str(coords), "--diameter", "8",
                 "--out", str(tmp_path / "run"), "--epochs", "1"]) == 1
    assert "stranger.star: coordinate file matches no micrograph" in one_error_line(capsys)


def test_evaluate_keeps_results_and_lists_unmatched(blobs, tmp_path, capsys):
    picks = tmp_path / "picks"
    picks.mkdir()
    (picks / "m1.star").write_bytes((blobs / "coords" / "m1.star").read_bytes())
    write_coordinates(pd.DataFrame({"x": [1.0], "y": [2.0]}), picks / "stray.star")
    out = tmp_path / "eval"
    assert main(["cryoem", "evaluate", "--picks", str(picks), "--truth", str(blobs / "coords"), "--diameter", "8",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 input(s) failed" in err and "stray.star: no truth file" in err
    assert pd.read_csv(out / "summary.csv")["f1"].tolist() == [1.0]


def test_every_cryoem_option_says_its_default():
    from deepscope.cli.main import COMMANDS, build_parser

    top = next(iter(a for a in build_parser()._subparsers._group_actions))
    commands = top.choices["cryoem"]._subparsers._group_actions[0].choices
    for name in COMMANDS["cryoem"]:
        for action in commands[name]._actions:
            # -h/-q/-v are the top level's; --config and --resume are the shared training options
            if not action.option_strings or action.dest in ("help", "verbose", "quiet", "config", "resume"):
                continue
            text = action.help or ""
            assert text == argparse.SUPPRESS or "default" in text or "required" in text, \
                f"cryoem {name} {action.option_strings[0]}: help shows no default ({text!r})"


def test_old_flip_spellings_still_work(cryoem_dir, blobs, tmp_path):
    # --picks-flip-y (evaluate) is the hidden old spelling of --flip-y: both score the same
    flipped = tmp_path / "flipped"
    assert main(["-q", "cryoem", "convert", str(blobs / "coords"), "--to", "star", "--flip-y", "128",
                 "--out", str(flipped)]) == 0
    for flag in ("--flip-y", "--picks-flip-y"):
        out = tmp_path / flag.strip("-")
        assert main(["-q", "cryoem", "evaluate", "--picks", str(flipped), "--truth", str(blobs / "coords"),
                     "--diameter", "8", "--out", str(out), flag, "128"]) == 0
        assert pd.read_csv(out / "summary.csv")["f1"].tolist() == [1.0]
    # --coords-flip-y (train) flips with each micrograph's height, like --flip-y 128 here
    from deepscope.cli.main import build_parser

    top = next(iter(a for a in build_parser()._subparsers._group_actions))
    train = top.choices["cryoem"]._subparsers._group_actions[0].choices["train"]
    base = ["--micrographs", "m", "--coords", "c", "--diameter", "8", "--out", "o"]
    assert train.parse_args(base + ["--coords-flip-y"]).coords_flip_y
    assert train.parse_args(base + ["--flip-y", "128"]).flip_y == 128
    assert "--coords-flip-y" not in train.format_help() and "--picks-flip-y" not in train.format_help()


@pytest.mark.parametrize("model, named", [(["--model", "cryoem_empiar10017"], "cryoem_empiar10017"),
                                          ([], "the default model cryoem_general")])
def test_evaluate_warns_when_the_model_saw_the_micrographs(tmp_path, caplog, model, named):
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.registry import resolve_model

    # an EMPIAR-10017 micrograph both pickers trained on
    trained_on = load_checkpoint(resolve_model("cryoem_empiar10017", "cryoem"))["meta"]["train_micrographs"][0]
    picks = tmp_path / "picks"
    picks.mkdir()
    write_coordinates(pd.DataFrame({"x": [100.0], "y": [200.0]}), picks / f"{trained_on}.star")
    with caplog.at_level("WARNING"):
        assert main(["-q", "cryoem", "evaluate", "--picks", str(picks), "--truth", str(picks), "--diameter", "108",
                     "--out", str(tmp_path / "eval"), *model]) == 0
    assert f"trained or validated {named} ({trained_on})" in caplog.text
