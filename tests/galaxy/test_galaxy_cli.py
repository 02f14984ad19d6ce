"""The galaxy commands end to end on real SDSS cutouts, with a tiny trained model."""

import json
import shutil

import pandas as pd
import pytest

from deepscope.cli.main import main


def _run(capsys, *argv):
    code = main(list(map(str, argv)))
    return code, capsys.readouterr()


@pytest.fixture(scope="module")
def tiny_labels(bars_dir, tmp_path_factory):
    """24 training and 16 test cutouts of each class, copied with a labels.csv."""
    folder = tmp_path_factory.mktemp("bars")
    table = pd.read_csv(bars_dir / "labels.csv")
    parts = [table[(table.split == s) & (table.barred == b)].head(n)
             for s, n in (("train", 24), ("test", 16)) for b in (0, 1)]
    table = pd.concat(parts)
    (folder / "images").mkdir()
    for name in table["file"]:
        shutil.copy(bars_dir / name, folder / name)
    table.to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


@pytest.fixture(scope="module")
def tiny_run(tiny_labels, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    assert main(["-q", "galaxy", "train", "--data", str(tiny_labels), "--out", str(run_dir),
                 "--epochs", "2", "--batch-size", "16", "--threads", "1"]) == 0
    return run_dir


def test_train_writes_run_dir(tiny_run):
    for name in ("config.yaml", "last.pt", "best.pt", "history.csv"):
        assert (tiny_run / name).is_file()
    assert len(pd.read_csv(tiny_run / "history.csv")) == 2


def test_predict_writes_contract_columns(tiny_run, tiny_labels, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _ = _run(capsys, "galaxy", "predict", tiny_labels.parent / "images", "--out", out,
                   "--model", tiny_run)
    assert code == 0
    pred = pd.read_csv(out)
    assert list(pred.columns[:3]) == ["file", "p_bar", "barred"]
    assert len(pred) == 80
    assert pred["p_bar"].between(0, 1).all() and set(pred["barred"]) <= {0, 1}


def test_predict_keeps_good_rows_and_lists_bad_files(tiny_run, tiny_labels, tmp_path, capsys):
    images = sorted((tiny_labels.parent / "images").glob("*.jpeg"))[:3]
    truncated = tmp_path / "truncated.jpeg"
    truncated.write_bytes(images[0].read_bytes()[:300])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    out = tmp_path / "pred.csv"
    code, captured = _run(capsys, "galaxy", "predict", *images, truncated, text, "--out", out,
                          "--model", tiny_run)
    assert code == 1
    assert len(pd.read_csv(out)) == 3
    assert "truncated.jpeg" in captured.err and "notes.png" in captured.err
    assert "Traceback" not in captured.err


def test_predict_unwritable_output_fails_before_work(tiny_run, tiny_labels, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, captured = _run(capsys, "galaxy", "predict", tiny_labels.parent / "images",
                          "--out", blocker / "pred.csv", "--model", tiny_run)
    assert code == 1
    assert captured.err.count("\n") == 1 and "cannot write output" in captured.err


def test_unknown_model_is_one_line(tiny_labels, tmp_path, capsys):
    code, captured = _run(capsys, "galaxy", "predict", tiny_labels.parent / "images",
                          "--out", tmp_path / "p.csv", "--model", tmp_path / "nope")
    assert code == 1 and "no such run directory" in captured.err


def test_train_names_missing_column(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,bar\na.jpeg,1\n")
    code, captured = _run(capsys, "galaxy", "train", "--data", labels, "--out", tmp_path / "run")
    assert code == 1
    assert "labels.csv: missing column(s) barred" in captured.err
    assert "Traceback" not in captured.err


def test_evaluate_writes_table_and_report(tiny_run, tiny_labels, tmp_path, capsys):
    code, captured = _run(capsys, "galaxy", "evaluate", "--labels", tiny_labels, "--model", tiny_run,
                          "--out", tmp_path / "eval")
    assert code == 0
    table = pd.read_csv(tmp_path / "eval" / "table_all.csv", index_col=0)
    assert list(table.index) == ["Barred", "Unbarred", "Average"]
    assert table.loc["Average", "Number in sample"] == 32
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["size_matched"]["n"] <= 32
    assert 0 <= metrics["all"]["accuracy"] <= 1
    assert metrics["occlusion"]["n"] == 16
    html = (tmp_path / "eval" / "report.html").read_text()
    for figure in ("roc.png", "calibration.png", "confusion_all.png", "confusion_size_matched.png"):
        assert figure in html and (tmp_path / "eval" / figure).is_file()


def test_layers_writes_one_png_per_conv_layer(tiny_run, tiny_labels, tmp_path, capsys):
    image = next((tiny_labels.parent / "images").glob("*.jpeg"))
    code, _ = _run(capsys, "galaxy", "layers", image, "--out", tmp_path / "layers", "--model", tiny_run)
    assert code == 0
    pngs = sorted(p.name for p in (tmp_path / "layers").glob("*.png"))
    assert pngs[0] == "01_1_0.png" and len(pngs) == 1 + 7  # barnet: 7 convolutions + the input


def test_occlusion_writes_png(tiny_run, tiny_labels, tmp_path, capsys):
    image = next((tiny_labels.parent / "images").glob("*.jpeg"))
    out = tmp_path / "occ.png"
    code, captured = _run(capsys, "galaxy", "occlusion", image, "--out", out, "--model", tiny_run)
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert captured.out.startswith(str(image))
