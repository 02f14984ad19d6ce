"""Small things a new user met: each says what is wrong where it is wrong, or just works."""

import shutil

import pandas as pd
import pytest

from deepscope.cli.main import main
from deepscope.core.report import Report
from deepscope.errors import ModelError
from deepscope.galaxy.crossmatch import coordinate_columns
from deepscope.registry import resolve_model


def test_an_option_of_a_sibling_command_shows_this_commands_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["galaxy", "predict", "cutouts/", "--frames", "frames/", "--out", "pred.csv"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: deepscope galaxy predict ")
    assert err.splitlines()[-1] == "deepscope galaxy predict: error: unrecognized arguments: --frames frames/"


def test_a_model_of_another_domain_is_named_as_such():
    with pytest.raises(ModelError) as error:
        resolve_model("galaxy_bars", "spectra")
    assert str(error.value) == ("galaxy_bars is a shipped galaxy model, not a spectra one; shipped spectra models: "
                                "spectra_mk, spectra_mk_fast")
    with pytest.raises(ModelError, match="no such shipped model, run directory or checkpoint"):
        resolve_model("galaxy_barz", "spectra")


def test_crossmatch_finds_the_manga_coordinates(shared_data, tmp_path, capsys):
    manga = shared_data / "galaxy" / "external_bar_labels" / "manga_bars.csv"
    assert coordinate_columns(pd.read_csv(manga, nrows=2)) == ("objra", "objdec")
    out = tmp_path / "matched.csv"
    labels = shared_data / "galaxy" / "sdss_gz2_bars" / "labels.csv"
    assert main(["-q", "galaxy", "crossmatch", str(labels), str(manga), "--radius", "2", "--out", str(out)]) == 0
    matched = pd.read_csv(out)
    assert len(matched) > 100 and matched["manga_bars_sep_arcsec"].max() <= 2


def test_report_tables_have_one_header_row_and_one_precision_per_column(tmp_path):
    report = Report(tmp_path, "tables")
    frame = pd.DataFrame({"picker": ["a", "b"], "f1": [0.85, 0.8512345], "n": [3, 40], "error": [1.5, None]})
    report.table(frame.set_index("picker"))
    report.table(frame, index=True)
    named, plain = report._parts
    assert named == plain  # a named index is a column under its name; a row count is not shown
    assert named.count("<tr") == 3  # one header row, two rows
    assert "<th>picker</th>" in named and "<th></th>" not in named
    assert "<td>0.8500</td>" in named and "<td>0.8512</td>" in named  # the same decimals down a column
    assert "<td>1.5</td>" in named and "<td>3</td>" in named and "nan" not in named.lower()


def test_predict_skips_the_rows_galaxy_cutout_could_not_cut(bars_dir, tmp_path, caplog):
    # The table galaxy cutout writes: every catalogue row, an empty file where the galaxy was off every frame.
    images = sorted((bars_dir / "images").glob("*.jpeg"))[:2]
    for image in images:
        shutil.copy(image, tmp_path / image.name)
    table = pd.DataFrame({"ra": [0.1, 0.2, 0.3], "file": [images[0].name, "", images[1].name],
                          "status": ["ok", "off every frame", "edge: 4% of the field is off the frames"],
                          "field_arcsec": 19.2})
    table.to_csv(tmp_path / "cutouts.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main(["-q", "galaxy", "predict", "--catalog", str(tmp_path / "cutouts.csv"), "--out", str(out)]) == 0
    predicted = pd.read_csv(out)
    assert [name.rsplit("/", 1)[-1] for name in predicted["file"]] == [image.name for image in images]
    assert list(predicted["status"]) == ["ok", "edge: 4% of the field is off the frames"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"{tmp_path / 'cutouts.csv'}: skipped 1 row(s) with no cutout (empty file; a status column says why)" \
        in warnings


@pytest.mark.parametrize("out", ["e1.star", "picks.box", "e1.cs"])
def test_pick_out_named_like_a_coordinate_file_is_refused_before_picking(tmp_path, capsys, out):
    from deepscope.samples import sample_dir

    micrograph = next(sample_dir("cryoem").glob("*.jpg"))
    assert main(["-q", "cryoem", "pick", str(micrograph), "--diameter", "27", "--out", str(tmp_path / out)]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"deepscope: error: {tmp_path / out}: --out is a directory") and "name a directory" in line
    assert list(tmp_path.iterdir()) == []
    # An existing directory of that name is the user's choice and is used.
    (tmp_path / out).mkdir()
    assert main(["-q", "cryoem", "pick", str(micrograph), "--diameter", "27", "--out", str(tmp_path / out),
                 "--threads", "1"]) == 0
    assert (tmp_path / out / f"{micrograph.stem}.star").is_file()
