"""Rerunning a stopped training command resumes it and never overwrites what it had finished.

Each command is stopped by SIGTERM right after an epoch's checkpoints are
written (from inside the process, so the stop lands at a known point), then
rerun as it was: only the missing epochs are trained; a finished run, or a
finished network, fold or member, is left byte for byte; and a rerun with
other settings is refused with one line, writing nothing.
"""

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from deepscope.cli.main import main
from deepscope.core import trainer
from deepscope.core.lock import LOCK_NAME
from galaxy.synthetic_galaxies import write_bar_sample
from spectra.spectra_helpers import synthetic_library

from cryoem.cryoem_helpers import write_blob_micrographs


def _stop_after(patch, epochs, where=""):
    """SIGTERM this process once a ``last.pt`` under a path containing ``where`` holds ``epochs`` epochs."""
    real = trainer.save_checkpoint

    def save(path, *args, **fields):
        real(path, *args, **fields)
        if Path(path).name == "last.pt" and fields["epoch"] + 1 == epochs and where in str(path):
            os.kill(os.getpid(), signal.SIGTERM)

    patch.setattr(trainer, "save_checkpoint", save)


def _record_epochs(patch):
    """The (run directory, epoch number) of every ``last.pt`` written from now on."""
    saved = []
    real = trainer.save_checkpoint

    def save(path, *args, **fields):
        real(path, *args, **fields)
        if Path(path).name == "last.pt":
            saved.append((Path(path).parent.name, fields["epoch"] + 1))

    patch.setattr(trainer, "save_checkpoint", save)
    return saved


def _files(folder):
    """Every file under ``folder`` with its bytes and modification time."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def _stopped(capsys, argv, monkeypatch, epochs, where=""):
    """Run ``argv`` until SIGTERM after ``epochs`` epochs (of the run under ``where``); its stderr."""
    with monkeypatch.context() as patch:
        _stop_after(patch, epochs, where)
        assert main(argv) == 128 + signal.SIGTERM
    return capsys.readouterr().err


def _rerun(argv, monkeypatch):
    """Run ``argv`` to the end; the epochs it trained."""
    with monkeypatch.context() as patch:
        saved = _record_epochs(patch)
        assert main(argv) == 0
    return saved


def _check_finished_and_refusal(capsys, caplog, argv, out, other):
    """A finished run's rerun writes nothing; one with ``other`` settings is one line naming the ways out."""
    done = _files(out)
    caplog.clear()
    assert main(argv) == 0
    assert f"{out}: this run finished already (finished.json); nothing was trained or written" in caplog.text
    capsys.readouterr()
    assert _files(out) == done
    assert main([*argv, *other]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a run with other settings" in err and "fresh --out" in err
    assert _files(out) == done
    return err


def test_galaxy_train_rerun_resumes_from_the_next_epoch(tmp_path, monkeypatch, capsys, caplog):
    labels = write_bar_sample(tmp_path / "toy", n=16, size=32, test_fraction=0.0, seed=3)
    (tmp_path / "tiny.yaml").write_text("model_kwargs:\n  width: 4\n")
    out = tmp_path / "run"
    argv = ["-q", "galaxy", "train", "--data", str(labels), "--out", str(out), "--input-size", "32",
            "--config", str(tmp_path / "tiny.yaml"), "--epochs", "2", "--batch-size", "16", "--threads", "1"]

    err = _stopped(capsys, argv, monkeypatch, 1)
    assert err.strip().splitlines() == [
        f"deepscope: terminated; {out} holds 1 of 2 epochs; rerun the same command (same --out) to resume "
        "from epoch 2"]
    first_epoch = (out / "history.csv").read_text()
    assert _rerun(argv, monkeypatch) == [("run", 2)]
    assert (out / "history.csv").read_text().startswith(first_epoch)
    assert len(pd.read_csv(out / "history.csv")) == 2
    summary = capsys.readouterr().out
    err = _check_finished_and_refusal(capsys, caplog, argv, out, ["--epochs", "3"])
    assert "epochs 3 (was 2)" in err and "--resume" in err
    # --resume continues the run with the new settings: one more epoch
    assert _rerun([*argv, "--epochs", "3", "--resume"], monkeypatch) == [("run", 3)]
    assert summary.startswith('{"best_val_score"')


def test_spectra_train_rerun_keeps_the_finished_member(tmp_path, monkeypatch, capsys, caplog):
    labels = _library(tmp_path / "lib", 40, seed=0)
    out = tmp_path / "run"
    argv = ["-q", "spectra", "train", "--data", str(labels), "--out", str(out), "--arch", "spectra_ann",
            "--members", "2", "--epochs", "2", "--patience", "5"]

    err = _stopped(capsys, argv, monkeypatch, 1, where="member1")
    assert f"{out / 'member1'} holds 1 of 2 epochs; rerun the same command (same --out)" in err
    member0 = _files(out / "member0")
    assert (out / "member0" / "calibration.json").is_file() and not (out / "best.pt").exists()
    assert _rerun(argv, monkeypatch) == [("member1", 2)]
    assert _files(out / "member0") == member0  # trained, calibrated, and left alone
    assert (out / "best.pt").is_file() and (out / "calibration.json").is_file()
    err = _check_finished_and_refusal(capsys, caplog, argv, out, ["--epochs", "3"])
    assert "--resume" not in err  # spectra train has none


def test_spectra_crossval_rerun_does_not_redo_finished_folds(tmp_path, monkeypatch, capsys, caplog):
    a, b = _library(tmp_path / "lib_a", 40, seed=3), _library(tmp_path / "lib_b", 40, seed=4)
    out = tmp_path / "loo"
    argv = ["-q", "spectra", "crossval", "--data", str(a), str(b), "--out", str(out), "--models", "spectra_ann",
            "--epochs", "2", "--min-stars", "30", "--members", "1"]

    err = _stopped(capsys, argv, monkeypatch, 1, where="lib_b")
    assert f"{out / 'runs' / 'lib_b' / 'spectra_ann'} holds 1 of 2 epochs" in err
    fold_a = _files(out / "runs" / "lib_a")
    assert _rerun(argv, monkeypatch) == [("spectra_ann", 2)]  # lib_b's second epoch, nothing of lib_a
    assert _files(out / "runs" / "lib_a") == fold_a
    table = pd.read_csv(out / "loo.csv")
    assert set(table["held_out"]) == {"lib_a", "lib_b"} and len(table) == 4
    runs = _files(out / "runs")
    assert _rerun(argv, monkeypatch) == []
    assert _files(out / "runs") == runs
    assert pd.read_csv(out / "loo.csv").equals(table)
    assert main([*argv, "--epochs", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert "holds a run with other settings (epochs 3 (was 2))" in err and "fresh --out" in err
    assert _files(out / "runs") == runs


def test_cryoem_train_rerun_resumes_from_the_next_epoch(tmp_path, monkeypatch, capsys, caplog):
    blobs = write_blob_micrographs(tmp_path / "blobs", seed=1)
    out = tmp_path / "run"
    argv = ["-q", "cryoem", "train", "--micrographs", str(blobs / "mics"), "--coords", str(blobs / "coords"),
            "--diameter", "8", "--working-diameter", "8", "--out", str(out), "--val", "m2", "--epochs", "2",
            "--width", "4", "--depth", "2", "--patches", "16", "--batch-size", "8", "--enhance", "off",
            "--threads", "1"]

    err = _stopped(capsys, argv, monkeypatch, 1)
    assert f"{out} holds 1 of 2 epochs; rerun the same command (same --out) to resume from epoch 2" in err
    first_epoch = (out / "history.csv").read_text()
    assert _rerun(argv, monkeypatch) == [("run", 2)]
    assert (out / "history.csv").read_text().startswith(first_epoch)
    printed = capsys.readouterr().out
    assert main(argv) == 0  # finished: the same report, from the stored summary
    assert capsys.readouterr().out == printed
    err = _check_finished_and_refusal(capsys, caplog, argv, out, ["--patches", "32"])
    assert "patches_per_epoch 32 (was 16)" in err and "--resume" in err


def test_autoencoder_pretrain_rerun_resumes_from_the_next_epoch(tmp_path, monkeypatch, capsys, caplog):
    library = _library(tmp_path / "lib", 30, seed=5).parent
    out = tmp_path / "ae"
    argv = ["-q", "spectra", "autoencoder", "pretrain", str(library), "--out", str(out), "--epochs", "2"]

    err = _stopped(capsys, argv, monkeypatch, 1)
    assert f"{out} holds 1 of 2 epochs; rerun the same command (same --out) to resume from epoch 2" in err
    assert _rerun(argv, monkeypatch) == [("ae", 2)]
    _check_finished_and_refusal(capsys, caplog, argv, out, ["--latent", "8"])


def test_checkpoints_without_a_record_are_not_overwritten(tmp_path, capsys):
    labels = write_bar_sample(tmp_path / "toy", n=16, size=32, test_fraction=0.0, seed=3)
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.pt").write_bytes(b"someone's checkpoint")
    assert main(["-q", "galaxy", "train", "--data", str(labels), "--out", str(out), "--input-size", "32"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"deepscope: error: {out} holds checkpoints (best.pt) but no config.yaml saying how they were "
                   "trained; rerun with --resume to continue it with these settings, or train into a fresh --out")
    assert (out / "best.pt").read_bytes() == b"someone's checkpoint"


def test_interrupt_lines_say_what_a_rerun_does(capsys):
    from deepscope.cli import cryoem_pick, galaxy_evaluate
    from deepscope.cli.main import rerun_hint

    assert rerun_hint(cryoem_pick) == "finished parts are kept; rerun the same command to resume"
    assert rerun_hint(galaxy_evaluate) == "rerun the same command to start again"
    trainer._PROGRESS.update(run_dir="runs/x", next_epoch=1, epochs=5)
    try:
        assert rerun_hint(galaxy_evaluate) == ("no epoch of runs/x was saved; rerun the same command (same --out) "
                                               "to start it again")
        trainer._PROGRESS.update(fitted=True)
        assert "runs/x is trained; rerun the same command" in rerun_hint(galaxy_evaluate)
    finally:
        trainer.forget_progress()


def _library(folder, n, seed):
    folder.mkdir(parents=True)
    rows = []
    for i, (wave, flux, sptype) in enumerate(synthetic_library(n, seed=seed)):
        hdu = fits.PrimaryHDU(np.asarray(flux, np.float32))
        hdu.header["CRVAL1"], hdu.header["CDELT1"], hdu.header["CRPIX1"] = float(wave[0]), 1.0, 1.0
        hdu.writeto(folder / f"star{i:03d}.fits")
        rows.append({"file": f"star{i:03d}.fits", "sptype": sptype})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


@pytest.fixture(autouse=True)
def _no_progress_left_behind():
    yield
    trainer.forget_progress()
