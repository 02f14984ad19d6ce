"""The training loop: learns, checkpoints each epoch, resumes to the same result."""

import dataclasses

import torch

from deepscope.config import TrainConfig
from deepscope.core.checkpoint import load_checkpoint
from deepscope.core.trainer import fit
from deepscope.galaxy.dataset import CutoutDataset
from deepscope.galaxy.train import cross_entropy, validation_score


def _toy_sets():
    # Bright centre = class 1, dark = class 0: learnable in a few epochs.
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(96, 3, 16, 16, generator=gen) * 0.3
    labels = torch.arange(96) % 2
    images[labels == 1, :, 6:10, 6:10] += 0.7
    train = CutoutDataset(images[:64].numpy(), labels[:64].numpy(), augment=True)
    val = CutoutDataset(images[64:].numpy(), labels[64:].numpy())
    return train, val


CONFIG = TrainConfig(model="barnet", model_kwargs={"width": 4}, epochs=4, batch_size=16, lr=1e-2,
                     patience=10, threads=1)


def test_fit_learns_and_writes_checkpoints(tmp_path):
    train, val = _toy_sets()
    result = fit("barnet", {"width": 4}, train, val, cross_entropy, CONFIG, tmp_path,
                 score_fn=validation_score, meta={"k": "v"}, progress=False)
    assert result.epochs_run == 4
    assert result.best_score > 0.9
    record = load_checkpoint(tmp_path / "last.pt")
    assert record["epoch"] == 3 and record["meta"] == {"k": "v"}
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "history.csv").is_file()


def test_resume_reproduces_uninterrupted_run(tmp_path):
    train, val = _toy_sets()
    full = fit("barnet", {"width": 4}, train, val, cross_entropy, CONFIG, tmp_path / "full",
               score_fn=validation_score, progress=False)
    short = dataclasses.replace(CONFIG, epochs=4)
    # Stop after two epochs by patience-free truncation: run 2 epochs of a 4-epoch schedule.
    fit("barnet", {"width": 4}, train, val, cross_entropy, short, tmp_path / "resumed",
        score_fn=validation_score, progress=False, stop_after=2)
    resumed = fit("barnet", {"width": 4}, train, val, cross_entropy, short, tmp_path / "resumed",
                  score_fn=validation_score, progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["val_loss"] for h in full.history] == [h["val_loss"] for h in resumed.history]
