"""The galaxy commands end to end on real SDSS cutouts, with a tiny trained model."""

import json
import time

import pandas as pd
import pytest
import torch

from deepscope.cli.main import build_parser, main
from deepscope.registry import list_models


def _run(capsys, *argv):
    code = main(list(map(str, argv)))
    return code, capsys.readouterr()


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
    # Labels without field_arcsec: the field of the shared SDSS cutouts.
    meta = torch.load(tiny_run / "best.pt", weights_only=True)["meta"]
    assert meta["field"] == {"kind": "fixed", "arcsec": 19.2, "pixels": 64}
    assert meta["zoom_range"] == pytest.approx([1 / 1.1, 1.1])  # the zooms drawn, recorded


def test_train_records_the_field_of_its_cutouts(tiny_labels, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    table = pd.read_csv(tiny_labels).assign(file=lambda t: str(tiny_labels.parent) + "/" + t.file)
    table.assign(field_arcsec=[12.0, 30.0] * (len(table) // 2)).to_csv(labels, index=False)
    code, captured = _run(capsys, "galaxy", "train", "--data", labels, "--out", tmp_path / "varied")
    assert code == 1 and "field_arcsec varies from 12 to 30 arcsec" in captured.err and "--field" in captured.err
    assert not (tmp_path / "varied").exists()
    table.assign(field_arcsec=12.0).to_csv(labels, index=False)
    for extra, field in (((), {"kind": "fixed", "arcsec": 12.0, "pixels": 32}),
                         (("--field", "5xdeVRad_r"), {"kind": "radius", "scale": 5.0, "radius_column": "deVRad_r",
                                                      "pixels": 32})):
        run = tmp_path / f"run{len(extra)}"
        code, _ = _run(capsys, "-q", "galaxy", "train", "--data", labels, "--out", run, "--input-size", "32",
                       "--epochs", "1", "--batch-size", "16", "--threads", "1", "--arch", "barnet_fast", *extra)
        assert code == 0
        assert torch.load(run / "best.pt", weights_only=True)["meta"]["field"] == field


def test_predict_writes_contract_columns(tiny_run, tiny_labels, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _ = _run(capsys, "galaxy", "predict", tiny_labels.parent / "images", "--out", out,
                   "--model", tiny_run)
    assert code == 0
    pred = pd.read_csv(out, keep_default_na=False)
    # A trained model records its size range, so its rows carry scale_flag after the decision columns.
    assert list(pred.columns) == ["file", "p_bar", "barred", "threshold", "scale_flag"]
    assert set(pred["scale_flag"]) <= {"", "small", "large"}
    assert len(pred) == 80
    assert (pred["barred"] == (pred["p_bar"] >= pred["threshold"]).astype(int)).all()
    threshold = torch.load(tiny_run / "best.pt", weights_only=True)["meta"]["threshold"]
    assert (pred["threshold"] == round(threshold, 6)).all()


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
    assert code == 1 and "no such shipped model, run directory or checkpoint" in captured.err
    assert "galaxy_bars, galaxy_bars_rescaled, galaxy_morphology" in captured.err


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
    # The support-weighted average recall is the accuracy: the table and the metrics must agree.
    assert metrics["all"]["accuracy"] == pytest.approx(table.loc["Average", "Recall %"] / 100, abs=1e-4)
    assert metrics["occlusion"]["n"] == 16
    html = (tmp_path / "eval" / "report.html").read_text()
    assert f"barred when p_bar &gt;= threshold {metrics['threshold']:.3f}" in html or \
        f"barred when p_bar >= threshold {metrics['threshold']:.3f}" in html
    assert "p_1" not in html
    for figure in ("roc.png", "calibration.png", "confusion_all.png", "confusion_size_matched.png"):
        assert figure in html and (tmp_path / "eval" / figure).is_file()


def test_evaluate_measures_external_bar_catalogues(tiny_run, tiny_labels, tmp_path, capsys):
    test = pd.read_csv(tiny_labels).query("split == 'test'")
    barred, unbarred = test[test.barred == 1], test[test.barred == 0]
    hoyle = tmp_path / "hoyle.csv"
    barred.head(5)[["ra", "dec"]].assign(bar_meas=3).to_csv(hoyle, index=False)
    manga = tmp_path / "manga.csv"
    pd.DataFrame({"name": ["m1", "m2", "m3"], "objra": [barred.ra.iloc[0], unbarred.ra.iloc[0], unbarred.ra.iloc[1]],
                  "objdec": [barred.dec.iloc[0], unbarred.dec.iloc[0], unbarred.dec.iloc[1]],
                  "Bars": [1.0, 0.0, -0.5]}).to_csv(manga, index=False)
    stripe82 = tmp_path / "s82.csv.gz"
    pd.DataFrame({"ra": unbarred.ra.head(3), "dec": unbarred.dec.head(3), "t03_bar_a06_bar_count": [0, 1, 0],
                  "t03_bar_a07_no_bar_count": [1, 9, 2]}).to_csv(stripe82, index=False)
    code, _ = _run(capsys, "galaxy", "evaluate", "--labels", tiny_labels, "--model", tiny_run, "--out",
                   tmp_path / "eval", "--hoyle", hoyle, "--manga", manga, "--stripe82", stripe82)
    assert code == 0
    external = json.loads((tmp_path / "eval" / "metrics.json").read_text())["external"]
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert external["hoyle"]["n_confirmed"] == 5
    confirmed = predictions.set_index("file").loc[barred.file.head(5), "predicted"]
    assert external["hoyle"]["confirmed_recall"] == pytest.approx(confirmed.mean())
    assert external["manga"]["n"] == 2
    assert [(s["min_votes"], s["n"]) for s in external["stripe82"]["by_votes"]] == [(0, 3), (2, 2), (5, 1), (10, 1)]
    summary = pd.read_csv(tmp_path / "eval" / "table_summary.csv", index_col=0)
    assert summary.loc["accuracy, Abraham et al. (2018)", "%"] == 94.1
    assert summary.loc["agreement with MaNGA (Bars >= 0.5)", "n"] == 2
    assert "confirmed-bar recall (Hoyle)" in (tmp_path / "eval" / "report.html").read_text()


def test_evaluate_missing_catalogue_fails_before_work(tiny_labels, tmp_path, capsys):
    code, captured = _run(capsys, "galaxy", "evaluate", "--labels", tiny_labels, "--out", tmp_path / "eval",
                          "--hoyle", tmp_path / "absent.csv")
    assert code != 0
    assert "--hoyle" in captured.err and "absent.csv: no such file" in captured.err
    assert not (tmp_path / "eval" / "predictions.csv").exists()


def test_explain_layers_writes_one_png_per_conv_layer_and_says_so(tiny_run, tiny_labels, tmp_path, capsys):
    image = next((tiny_labels.parent / "images").glob("*.jpeg"))
    code, captured = _run(capsys, "galaxy", "explain", image, "--layers", "--out", tmp_path / "layers",
                          "--model", tiny_run)
    assert code == 0
    assert captured.out == f"{tmp_path / 'layers' / 'report.html'}: the input and 7 layers' feature maps\n"
    pngs = sorted(p.name for p in (tmp_path / "layers").glob("*.png"))
    assert pngs[0] == "01_1_0.png" and len(pngs) == 1 + 7  # barnet: 7 convolutions + the input
    html = (tmp_path / "layers" / "report.html").read_text()
    # Layers and classes in words, not module paths and class codes.
    assert "conv1 (3x3 stride 2, 16 ch)" in html and "conv7 (3x3, 128 ch)" in html
    assert "p(barred) = " in html and "p_1" not in html and "(1.0)" not in html


def test_occlusion_writes_png(tiny_run, tiny_labels, tmp_path, capsys):
    image = next((tiny_labels.parent / "images").glob("*.jpeg"))
    out = tmp_path / "occ.png"
    code, captured = _run(capsys, "galaxy", "occlusion", image, "--out", out, "--model", tiny_run)
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert captured.out.startswith(str(image))


def test_layers_alias_writes_what_explain_layers_writes(tiny_run, tiny_labels, tmp_path, capsys):
    image = next((tiny_labels.parent / "images").glob("*.jpeg"))
    code, captured = _run(capsys, "galaxy", "layers", image, "--out", tmp_path / "layers", "--model", tiny_run,
                          "--max-channels", "4")
    assert code == 0 and "report.html" in captured.out
    assert len(list((tmp_path / "layers").glob("*.png"))) == 1 + 7


def test_explain_needs_one_mode_and_the_aliases_say_they_are_deprecated(capsys):
    with pytest.raises(SystemExit):
        main(["galaxy", "explain", "cutout.png", "--out", "x"])
    assert "one of the arguments --layers --occlusion is required" in capsys.readouterr().err
    parsers = _galaxy_parsers()
    for alias, mode in (("layers", "--layers"), ("occlusion", "--occlusion")):
        assert parsers[alias].description.startswith(f"Deprecated alias of `galaxy explain IMAGE {mode}`")
        assert mode not in parsers[alias].format_usage()


def _galaxy_parsers():
    top = next(a for a in build_parser()._subparsers._group_actions)
    commands = top.choices["galaxy"]._subparsers._group_actions[0]
    return commands.choices


def test_train_refuses_another_domains_arch_at_once(tmp_path, capsys):
    start = time.perf_counter()
    # The labels file does not even exist: --arch is checked before any data is read.
    code, captured = _run(capsys, "galaxy", "train", "--data", tmp_path / "none.csv", "--out", tmp_path / "run",
                          "--arch", "spectra_cnn")
    assert time.perf_counter() - start < 3
    assert code == 1
    assert captured.err == ("deepscope: error: --arch spectra_cnn is not a galaxy network; "
                            "choose from: abraham2018, barnet, barnet_fast\n")


@pytest.mark.parametrize("zoom", [("1.6", "0.6"), ("0", "1.5")])
def test_train_refuses_a_zoom_range_at_once(tmp_path, capsys, zoom):
    code, captured = _run(capsys, "galaxy", "train", "--data", tmp_path / "none.csv", "--out", tmp_path / "run",
                          "--zoom", *zoom)
    assert code == 1
    assert captured.err == (f"deepscope: error: --zoom {zoom[0]} {zoom[1]}: give the smallest zoom, then the "
                            "largest, both above 0\n")
    assert not (tmp_path / "run").exists()


def test_train_arch_help_names_the_registered_networks():
    arch = next(a for a in _galaxy_parsers()["train"]._actions if "--arch" in a.option_strings)
    names = list_models("galaxy", trainable=True)
    assert f"network to train: {', '.join(names)} (default barnet)" in arch.help


@pytest.mark.parametrize("command", ["select", "crossmatch", "train", "predict", "evaluate", "explain", "layers",
                                     "occlusion"])
def test_every_option_shows_its_default(command):
    for action in _galaxy_parsers()[command]._actions:
        if action.option_strings and action.dest not in ("help", "verbose", "quiet"):
            text = action.help.lower()
            assert "default" in text or "required" in text, f"galaxy {command} {action.option_strings[0]}"


def test_predict_help_explains_the_decision_and_the_shipped_thresholds():
    from deepscope.registry import resolve_model

    text = _galaxy_parsers()["predict"].description
    assert "1 when p_bar >= threshold" in text
    for name in ("galaxy_bars", "galaxy_morphology"):
        threshold = torch.load(resolve_model(name, "galaxy"), weights_only=True)["meta"]["threshold"]
        assert f"{threshold:.3f}" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("command", ["predict", "evaluate", "layers", "occlusion"])
def test_device_cuda_without_gpu_is_one_line(command, tiny_labels, tmp_path, capsys):
    image = next((tiny_labels.parent / "images").glob("*.jpeg"))
    argv = {"predict": [image, "--out", tmp_path / "p.csv"],
            "evaluate": ["--labels", tiny_labels, "--out", tmp_path / "eval"],
            "layers": [image, "--out", tmp_path / "layers"],
            "occlusion": [image, "--out", tmp_path / "occ.png"]}[command]
    code, captured = _run(capsys, "galaxy", command, *argv, "--device", "cuda")
    assert code == 1
    assert captured.err == ("deepscope: error: device 'cuda' requested but CUDA is not available on this machine; "
                            "use --device cpu\n")


def test_written_out_constants_match_the_predictor():
    """--help stays light by writing these out; they must still be the predictor's."""
    from deepscope.cli import galaxy_predict
    from deepscope.galaxy import predictor

    assert galaxy_predict.VIEW_COUNTS == predictor.VIEW_COUNTS
    assert galaxy_predict.PARTITION_SIZE == predictor.PARTITION_SIZE
