"""Training under torchrun (2 CPU processes, gloo) and resuming from the command line.

``galaxy train`` is checked in depth (same run directory as a single
process, one writer, resuming under torchrun); ``spectra train`` (whose
autoencoder classifier runs two fits in one launch) and ``cryoem train``
(random patches per rank, picking tuned after training) are checked to run
and report once. All three hand their datasets to the same
``core.trainer.fit``, which holds the DDP logic and raises if the replicas'
weights ever differ.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from astropy.io import fits

import deepscope
from deepscope.cli.main import main
from deepscope.core import trainer
from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint
from galaxy.synthetic_galaxies import write_bar_sample
from spectra.spectra_helpers import synthetic_library

from cryoem.cryoem_helpers import write_blob_micrographs

EPOCHS = 3


@pytest.fixture(scope="module")
def toy_galaxies(tmp_path_factory):
    """48 synthetic 32-px galaxies (half barred) and a YAML making the network tiny."""
    folder = tmp_path_factory.mktemp("toy")
    labels = write_bar_sample(folder, n=48, size=32, test_fraction=0.0, seed=3)
    tiny = folder / "tiny.yaml"
    tiny.write_text("model_kwargs:\n  width: 4\n")
    return labels, tiny


def _train_args(toy_galaxies, out, epochs=EPOCHS):
    labels, tiny = toy_galaxies
    return ["galaxy", "train", "--data", str(labels), "--out", str(out), "--input-size", "32",
            "--config", str(tiny), "--epochs", str(epochs), "--batch-size", "16", "--threads", "1"]


def _torchrun(argv, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # The subprocesses import this checkout's deepscope, whatever is installed.
    src = str(Path(deepscope.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "deepscope", *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def single_run(toy_galaxies, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["-q", *_train_args(toy_galaxies, out)]) == 0
    return out


@pytest.fixture(scope="module")
def ddp_run(toy_galaxies, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    done = _torchrun(_train_args(toy_galaxies, out), cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.mark.distributed
def test_torchrun_writes_the_same_run_dir(ddp_run, single_run):
    out, _ = ddp_run
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single_run.iterdir())
    for name in ("last.pt", "best.pt"):
        ddp, single = load_checkpoint(out / name), load_checkpoint(single_run / name)
        assert set(ddp) == set(single)
        assert set(ddp["state_dict"]) == set(single["state_dict"])
    # One writer: one row per epoch, not one per rank.
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == list(range(1, EPOCHS + 1))


@pytest.mark.distributed
def test_torchrun_model_predicts(ddp_run):
    # Replicas in sync are checked by fit() itself (it raises when they differ).
    out, done = ddp_run
    record = load_checkpoint(out / "best.pt")
    # The threshold tuned after training is the one written back into the checkpoint.
    assert record["meta"]["threshold"] == json.loads(done.stdout)["threshold"]
    with torch.no_grad():
        logits = model_from_checkpoint(record)(torch.rand(4, 3, 32, 32))
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()


@pytest.mark.distributed
def test_torchrun_reports_from_one_rank(ddp_run):
    _, done = ddp_run
    assert len(done.stdout.strip().splitlines()) == 1  # the JSON summary, once
    assert done.stderr.count("training and") == 1
    for epoch in range(1, EPOCHS + 1):
        assert done.stderr.count(f"INFO deepscope.core.trainer: epoch {epoch}:") == 1


@pytest.mark.distributed
def test_torchrun_resumes(ddp_run, toy_galaxies, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("last.pt", "best.pt", "history.csv", "config.yaml"):
        (out / name).write_bytes((ddp_run[0] / name).read_bytes())
    done = _torchrun([*_train_args(toy_galaxies, out, epochs=EPOCHS + 1), "--resume"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr and "epoch 1:" not in done.stderr
    history = pd.read_csv(out / "history.csv")
    before = pd.read_csv(ddp_run[0] / "history.csv")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 2))
    pd.testing.assert_frame_equal(history.head(EPOCHS), before)
    assert load_checkpoint(out / "last.pt")["epoch"] == EPOCHS


def _spectra_library(folder, n):
    folder.mkdir()
    rows = []
    for i, (wave, flux, sptype) in enumerate(synthetic_library(n, seed=0)):
        hdu = fits.PrimaryHDU(flux.astype(np.float32))
        hdu.header["CRVAL1"], hdu.header["CDELT1"], hdu.header["CRPIX1"] = float(wave[0]), 1.0, 1.0
        hdu.writeto(folder / f"star{i:03d}.fits")
        rows.append({"file": f"star{i:03d}.fits", "sptype": sptype})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


@pytest.mark.distributed
def test_torchrun_spectra_train_with_pretraining(tmp_path):
    labels = _spectra_library(tmp_path / "lib", 40)
    out = tmp_path / "run"
    done = _torchrun(["spectra", "train", "--data", str(labels), "--out", str(out), "--arch",
                      "spectra_ae_classifier", "--pretrain-epochs", "2", "--epochs", "2", "--threads", "1",
                      "--members", "1"],
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) == 1
    # Two fits (autoencoder, then classifier), each logged by one rank only.
    assert done.stderr.count("INFO deepscope.core.trainer: epoch 1:") == 2
    for run in (out, out / "pretrain"):
        assert len(pd.read_csv(run / "history.csv")) == 2
        load_checkpoint(run / "best.pt")


@pytest.mark.distributed
def test_torchrun_cryoem_train(tmp_path):
    blobs = write_blob_micrographs(tmp_path / "blobs", seed=1)
    out = tmp_path / "run"
    done = _torchrun(["cryoem", "train", "--micrographs", str(blobs / "mics"), "--coords", str(blobs / "coords"),
                      "--diameter", "8", "--working-diameter", "8", "--out", str(out), "--val", "m2",
                      "--epochs", "2", "--width", "4", "--depth", "2", "--patches", "16", "--batch-size", "8",
                      "--enhance", "off", "--threads", "1"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained on 2 micrographs") == 1
    assert done.stderr.count("INFO deepscope.core.trainer: epoch 2:") == 1
    assert len(pd.read_csv(out / "history.csv")) == 2
    assert "val_f1" in load_checkpoint(out / "best.pt")["meta"]  # written back after tuning, by rank 0


def test_cli_resume_reproduces_uninterrupted_run(toy_galaxies, single_run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    full_fit = trainer.fit

    def interrupted_fit(*args, **kwargs):
        return full_fit(*args, **kwargs, stop_after=2)

    # Interrupt the first run after two epochs of the three-epoch schedule.
    with monkeypatch.context() as patch:
        patch.setattr(trainer, "fit", interrupted_fit)
        assert main(["-q", *_train_args(toy_galaxies, out)]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert main(["-q", *_train_args(toy_galaxies, out), "--resume"]) == 0
    resumed = load_checkpoint(out / "last.pt")["state_dict"]
    uninterrupted = load_checkpoint(single_run / "last.pt")["state_dict"]
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
