"""The spectra commands end to end on toy libraries written by the tests."""


import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from spectra.spectra_helpers import synthetic_library

from deepscope.cli.main import main
from deepscope.samples import sample_dir


def _write_library(folder, n, seed):
    folder.mkdir(parents=True)
    rows = []
    for i, (wave, flux, sptype) in enumerate(synthetic_library(n, seed=seed)):
        name = f"star{i:03d}.fits"
        hdu = fits.PrimaryHDU(flux.astype(np.float32))
        hdu.header["CRVAL1"], hdu.header["CDELT1"], hdu.header["CRPIX1"] = float(wave[0]), 1.0, 1.0
        hdu.writeto(folder / name)
        rows.append({"file": name, "sptype": sptype})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("spectra")
    train = _write_library(root / "toy_a", 120, seed=0)
    test = _write_library(root / "toy_b", 30, seed=1)
    run = root / "run"
    code = main(["-q", "spectra", "train", "--data", str(train), "--out", str(run), "--arch", "spectra_ann",
                 "--epochs", "60", "--patience", "60", "--lr", "3e-3"])
    assert code == 0
    return root, run, test


def test_train_writes_checkpoint_and_config(trained, capsys):
    root, run, _ = trained
    assert (run / "best.pt").is_file() and (run / "config.yaml").is_file()
    # The default trains three members apart and ships them as one ensemble.
    for i in range(3):
        assert (run / f"member{i}" / "best.pt").is_file() and (run / f"member{i}" / "history.csv").is_file()
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint(run)
    assert type(predictor.model).__name__ == "SpectraEnsemble" and len(predictor.model.members) == 3
    assert "templates" in predictor.meta and predictor.grid.n == 580


def test_train_calibrates_every_network_and_the_ensemble_on_the_validation_split(trained, tmp_path):
    import json

    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.spectra.calibration import SNR_TEMPERATURE_TERM, main_class_confidence, temperatures_at_snr
    from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS
    from deepscope.spectra.predictor import SpectraPredictor

    root, run, test = trained
    for folder in (run, run / "member0", run / "member2"):
        summary = json.loads((folder / "calibration.json").read_text())
        assert load_checkpoint(folder)["meta"]["temperature"] == summary["temperature"] > 0
        # with the S/N term measured on networks trained as these are (no survey augmentation)
        assert load_checkpoint(folder)["meta"]["temperature_snr_term"] == summary["temperature_snr_term"] \
            == SNR_TEMPERATURE_TERM
        # 120 toy spectra: 18 held out, each with its short copy (no --survey-augment: no noisy copies).
        assert summary["n"] == 36 and 0 <= summary["ece_calibrated"] <= 1
        assert (folder / "reliability.png").stat().st_size > 0
    # The ensemble has its own temperature, not its first member's.
    assert load_checkpoint(run)["meta"]["temperature"] != load_checkpoint(run / "member0")["meta"]["temperature"]
    predictor = SpectraPredictor.from_checkpoint(run)
    items = [predictor.load_input(root / "toy_b" / f"star{i:03d}.fits") for i in range(10)]
    rows = predictor.assess(items)
    features = predictor.features(items)
    outputs = predictor.outputs(features.x)
    meta = load_checkpoint(run)["meta"]
    temperature = temperatures_at_snr(meta["temperature"], features.snr, meta["temperature_snr_term"])
    expected = main_class_confidence(outputs[:, :N_T_BINS], [MAIN_CLASSES.index(r["main_class"]) for r in rows],
                                     temperature)
    assert [r["confidence"] for r in rows] == [round(float(c), 4) for c in expected]


def test_one_member_trains_straight_into_the_run_directory(tmp_path, capsys):
    import json

    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.spectra.augment import SurveyAugment

    labels = _write_library(tmp_path / "lib", 30, seed=8)
    run = tmp_path / "run"
    assert main(["-q", "spectra", "train", "--data", str(labels), "--out", str(run), "--arch", "spectra_ann",
                 "--epochs", "2", "--members", "1"]) == 0
    assert (run / "history.csv").is_file() and not (run / "member0").exists()
    from deepscope.spectra.predictor import SpectraPredictor

    assert type(SpectraPredictor.from_checkpoint(run).model).__name__ == "SpectraANN"
    # Light perturbations by default, calibrated on clean copies; --survey-augment is recorded in the checkpoint
    # and calibrates on noisy copies too.
    assert "augment" not in load_checkpoint(run)["meta"]
    assert json.loads((run / "calibration.json").read_text())["n"] == 4 * 2
    survey = tmp_path / "survey"
    assert main(["-q", "spectra", "train", "--data", str(labels), "--out", str(survey), "--arch", "spectra_ann",
                 "--epochs", "2", "--members", "1", "--survey-augment"]) == 0
    assert load_checkpoint(survey)["meta"]["augment"] == SurveyAugment().as_meta()
    assert "temperature_snr_term" not in load_checkpoint(survey)["meta"]  # not measured on survey-trained networks
    assert json.loads((survey / "calibration.json").read_text())["n"] == 4 * 5  # 4 held out: clean, short, 3 noisy
    assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "r0"), "--members", "0"]) == 1
    assert "--members 0: need at least one" in capsys.readouterr().err


def test_teacher_distils_into_one_network_and_is_refused_when_it_cannot_teach(trained, tmp_path, capsys):
    root, teacher, _ = trained
    labels = root / "toy_a" / "labels.csv"
    run = tmp_path / "student"
    assert main(["-q", "spectra", "train", "--data", str(labels), "--out", str(run), "--arch", "spectra_cnn",
                 "--members", "1", "--epochs", "1", "--teacher", str(teacher), "--mixup", "0.5"]) == 0
    from deepscope.spectra.predictor import SpectraPredictor

    student = SpectraPredictor.from_checkpoint(run)
    assert type(student.model).__name__ == "SpectraCNN"
    assert student.meta["teacher"] == {"model": str(teacher), "weight": 1.0, "mixup": 0.5}
    capsys.readouterr()
    # A mixture has no catalogue type: mixing needs the teacher to answer for all of the loss.
    for extra, message in ((["--mixup", "0.5"], "--mixup 0.5 needs --teacher with --teacher-weight 1"),
                           (["--mixup", "0.5", "--teacher", str(teacher), "--teacher-weight", "0.5"],
                            "--mixup 0.5 needs --teacher with --teacher-weight 1"),
                           (["--mixup", "2", "--teacher", str(teacher)], "--mixup 2: need a share from 0 to 1")):
        assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "m"), *extra]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "m").exists()
    assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "w"), "--teacher", str(teacher),
                 "--teacher-weight", "1.5"]) == 1
    assert capsys.readouterr().err.strip().endswith("--teacher-weight 1.5: need a share from 0 to 1")
    assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "g"), "--teacher", str(teacher),
                 "--grid", "3850", "5550", "600"]) == 1
    err = capsys.readouterr().err
    assert f"--teacher {teacher}: it reads the grid" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists() and not (tmp_path / "w").exists()


def test_predict_columns_and_values(trained, tmp_path):
    root, run, _ = trained
    out = tmp_path / "pred.csv"
    assert main(["-q", "spectra", "predict", str(root / "toy_b"), "--out", str(out), "--model", str(run)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 30
    assert {"file", "sptype", "main_class", "subclass", "lum_class", "code"} <= set(table.columns)
    assert table["main_class"].isin(list("OBAFGKM")).all()
    assert ((table["code"] - 1.5) % 2 == 0).all()


def test_evaluate_beats_chance_and_reports_baseline(trained, tmp_path, capsys):
    root, run, test = trained
    out = tmp_path / "eval"
    assert main(["-q", "spectra", "evaluate", "--labels", str(test), "--model", str(run), "--out", str(out)]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 2 and metrics["method"].str.contains("template").any()
    network = metrics[~metrics["method"].str.contains("template")].iloc[0]
    # 120 toy spectra and 60 quick epochs: well above chance (about 0.2), far from converged.
    assert network["main_class_accuracy"] > 0.35 and network["subclass_mae"] < 8
    assert (out / "report.html").is_file() and list(out.glob("scatter_*.png"))
    assert "0 of them were in the training set of this model" in (out / "report.html").read_text()


def test_evaluate_flags_training_files_even_renamed(trained, tmp_path, caplog):
    import shutil

    root, run, _ = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(root / "toy_a" / "star000.fits", copy / "renamed.fits")
    pd.DataFrame({"file": ["renamed.fits"], "sptype": ["G2V"]}).to_csv(copy / "labels.csv", index=False)
    assert main(["-q", "spectra", "evaluate", "--labels", str(copy / "labels.csv"), "--model", str(run),
                 "--out", str(tmp_path / "eval")]) == 0
    assert "1 of them were in the training set of this model" in (tmp_path / "eval" / "report.html").read_text()


def test_batch_keeps_good_rows_and_lists_bad_files(trained, tmp_path, capsys):
    root, run, _ = trained
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.fits").write_bytes(b"")
    (bad / "garbage.fits").write_bytes(b"SIMPLE  = nonsense" * 10)
    wave = np.arange(7000.0, 9000.0)
    red = fits.PrimaryHDU(np.ones(wave.size, np.float32))
    red.header["CRVAL1"], red.header["CDELT1"] = 7000.0, 1.0
    red.writeto(bad / "red.fits")
    fits.PrimaryHDU(np.full(50, np.nan, np.float32)).writeto(bad / "nan.fits")
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    code = main(["-q", "spectra", "predict", str(root / "toy_b" / "star000.fits"), str(bad), "--out", str(out),
                 "--model", str(run)])
    err = capsys.readouterr().err
    assert code == 1
    assert "deepscope: error: 4 input(s) failed" in err and "Traceback" not in err
    assert "red.fits: covers only 0%" in err and "empty.fits: empty file" in err
    assert len(pd.read_csv(out)) == 1


@pytest.mark.parametrize("argv, message", [
    (["spectra", "predict", "missing_dir", "--out", "p.csv"], "missing_dir: no such file or directory"),
    (["spectra", "train", "--data", "nope.csv", "--out", "run"], "nope.csv: no such file"),
    (["spectra", "evaluate", "--labels", "x.csv", "--out", "e", "--model", "nomodel"],
     "nomodel: no such shipped model, run directory or checkpoint; shipped spectra models: spectra_mk"),
    (["spectra", "predict", str(sample_dir("spectra")), "--out", "p.csv", "--model", "nomodel"],
     "nomodel: no such shipped model"),
    (["spectra", "compress", ".", "--out", "c.csv", "--model", "nomodel"], "nomodel: no such shipped model"),
    (["spectra", "train", "--data", "nope.csv", "--out", "run", "--arch", "barnet"],
     "--arch barnet is not a spectra network; choose from: spectra_ae_classifier, spectra_ann, spectra_cnn"),
    (["spectra", "crossval", "--data", "nope.csv", "--out", "loo", "--models", "spectra_cnn", "spectra_autoencoder"],
     "--arch spectra_autoencoder is not a spectra network; choose from:"),
])
def test_user_errors_are_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepscope: error:") and message in err[0]


def test_unwritable_output_fails_before_work(trained, tmp_path, capsys):
    root, run, _ = trained
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["-q", "spectra", "predict", str(root / "toy_b"), "--out", str(blocker / "p.csv"), "--model", str(run)])
    assert code == 1 and "cannot write output" in capsys.readouterr().err


def test_missing_sptype_column(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,type\na.fits,G2V\n")
    assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "run")]) == 1
    assert "missing column(s) sptype" in capsys.readouterr().err


def test_crossval_table(tmp_path, capsys):
    a = _write_library(tmp_path / "lib_a", 40, seed=3)
    b = _write_library(tmp_path / "lib_b", 40, seed=4)
    out = tmp_path / "loo"
    code = main(["-q", "spectra", "crossval", "--data", str(a), str(b), "--out", str(out), "--models", "spectra_ann",
                 "--epochs", "2", "--min-stars", "30"])
    assert code == 0
    table = pd.read_csv(out / "loo.csv")
    assert set(table["held_out"]) == {"lib_a", "lib_b"} and len(table) == 4
    assert (out / "runs" / "lib_a" / "spectra_ann" / "calibration.json").is_file()
    # Each held-out library is scored on all its 40 typed spectra: accuracies are whole counts of 40.
    assert (table["n"] == 40).all()
    hits = table["main_class_accuracy"] * table["n"]
    assert (hits - hits.round()).abs().max() < 1e-9


def test_talks_1900_point_grid_end_to_end(tmp_path, capsys):
    labels = _write_library(tmp_path / "lib", 30, seed=6)
    run = tmp_path / "run"
    assert main(["-q", "spectra", "train", "--data", str(labels), "--out", str(run), "--arch", "spectra_cnn",
                 "--grid", "3850", "5550", "1900", "--epochs", "1"]) == 0
    out = tmp_path / "pred.csv"
    assert main(["-q", "spectra", "predict", str(tmp_path / "lib"), "--out", str(out), "--model", str(run)]) == 0
    assert len(pd.read_csv(out)) == 30
    from deepscope.spectra.predictor import SpectraPredictor

    assert SpectraPredictor.from_checkpoint(run).grid.n == 1900


def test_bad_grid_is_refused(tmp_path, capsys):
    labels = _write_library(tmp_path / "lib", 3, seed=7)
    assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "r"),
                 "--grid", "5000", "4000", "580"]) == 1
    assert "need 0 < START < STOP" in capsys.readouterr().err


def test_all_bad_inputs_leave_no_output(trained, tmp_path, capsys):
    root, run, _ = trained
    (tmp_path / "a.fits").write_bytes(b"")
    (tmp_path / "b.txt").write_text("no numbers here\n")
    out = tmp_path / "pred.csv"
    code = main(["-q", "spectra", "predict", str(tmp_path / "a.fits"), str(tmp_path / "b.txt"), "--out", str(out),
                 "--model", str(run)])
    assert code == 1 and not out.exists() and not list(tmp_path.glob(".pred.csv*"))
    err = capsys.readouterr().err
    assert "2 input(s) failed" in err and "b.txt: not a two-column numeric spectrum" in err


def test_shipped_model_by_name_gives_the_default_predictions(tmp_path):
    sample = sample_dir("spectra") / "pickles_g2v.fits"
    by_name, default = tmp_path / "by_name.csv", tmp_path / "default.csv"
    assert main(["-q", "spectra", "predict", str(sample), "--out", str(by_name), "--model", "spectra_mk"]) == 0
    assert main(["-q", "spectra", "predict", str(sample), "--out", str(default)]) == 0
    assert by_name.read_text() == default.read_text()
    assert pd.read_csv(by_name)["main_class"].tolist() == ["G"]


def test_wrong_arch_fails_before_reading_data(tmp_path, capsys):
    """A real, readable labels table: only the network check can stop it this fast."""
    import time

    labels = _write_library(tmp_path / "lib", 3, seed=9)
    start = time.perf_counter()
    assert main(["spectra", "train", "--data", str(labels), "--out", str(tmp_path / "run"), "--arch", "barnet"]) == 1
    assert time.perf_counter() - start < 3.0
    assert not (tmp_path / "run").exists()
    assert "choose from: spectra_ae_classifier, spectra_ann, spectra_cnn" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "evaluate", "embed", "denoise", "compress", "outliers"])
def test_cuda_without_a_gpu_is_one_clear_line(command, tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    labels = _write_library(tmp_path / "lib", 3, seed=10)
    inputs = ["--labels", str(labels)] if command == "evaluate" else [str(tmp_path / "lib")]
    model = [] if command in ("predict", "evaluate") else ["--model", "spectra_mk"]
    assert main(["spectra", command, *inputs, "--out", "out.csv", *model, "--device", "cuda:0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'cuda:0' requested but CUDA is not available" in err[0]


def _subcommands(parser):
    import argparse

    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _spectra_parsers():
    from deepscope.cli.main import build_parser

    return _subcommands(_subcommands(build_parser())["spectra"])


def test_every_spectra_option_states_its_default():
    import argparse

    parsers = _spectra_parsers()
    assert {"train", "predict", "evaluate", "crossval", "pretrain", "embed", "denoise", "compress",
            "outliers"} <= set(parsers)
    for name, parser in parsers.items():
        for action in parser._actions:
            if not action.option_strings or action.help in (None, argparse.SUPPRESS) or action.dest == "help":
                continue
            if action.dest in ("verbose", "quiet"):
                continue  # logging flags, shared by every command
            assert "default" in action.help or "required" in action.help, (name, action.option_strings)


def test_spectra_inference_commands_take_device_and_threads():
    parsers = _spectra_parsers()
    for name in ("predict", "evaluate", "crossval", "pretrain", "embed", "denoise", "compress", "outliers", "train"):
        flags = {flag for action in parsers[name]._actions for flag in action.option_strings}
        assert {"--device", "--threads"} <= flags, name


def test_trainable_network_list_matches_the_registry():
    from deepscope.cli.options import TRAINABLE_NETWORKS
    from deepscope.registry import list_models

    assert list(TRAINABLE_NETWORKS["spectra"]) == list_models("spectra", trainable=True)
