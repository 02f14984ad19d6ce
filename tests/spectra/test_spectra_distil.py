"""Distillation: the loss, the teacher's answers as targets, and a student that follows them."""

import dataclasses

import numpy as np
import pytest
import torch

from deepscope.spectra.distil import distillation_loss, with_mixup, with_teacher
from deepscope.spectra.mktype import N_LUM, N_T_BINS
from deepscope.spectra.predictor import SpectraPredictor
from spectra.spectra_helpers import prepare, synthetic_library

from deepscope.spectra.preparation.grid import Grid
from deepscope.spectra.io.spectrum import Spectrum
from deepscope.spectra.targets import spectra_loss, type_targets
from deepscope.spectra.train import DEFAULT_CONFIG, make_dataset, train_classifier


def _targets(sptypes):
    return {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in type_targets(sptypes).items() if k != "usable"}


class _Constant(torch.nn.Module):
    """A teacher that gives one answer whatever it reads."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = torch.as_tensor(outputs, dtype=torch.float32)

    def forward(self, x):
        return self.outputs.expand(len(x), -1)


def _answer(t_bin, lum_class):
    outputs = np.full(N_T_BINS + N_LUM, -20.0, np.float32)
    outputs[t_bin] = outputs[N_T_BINS + lum_class - 1] = 0.0
    return outputs


def test_loss_is_zero_for_the_teachers_answer_and_the_label_loss_without_it():
    teacher = torch.randn(4, N_T_BINS + N_LUM)
    targets = {**_targets(["G2V", "K3III", "A0V", "M2III"]), "teacher": teacher}
    assert float(distillation_loss(1.0)(teacher, targets)) == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(4, N_T_BINS + N_LUM)
    assert float(distillation_loss(1.0)(other, targets)) > 0.1
    assert float(distillation_loss(0.0)(other, targets)) == pytest.approx(float(spectra_loss(other, targets)))
    half = float(distillation_loss(0.5)(other, targets))
    assert half == pytest.approx(0.5 * float(distillation_loss(1.0)(other, targets))
                                 + 0.5 * float(spectra_loss(other, targets)), rel=1e-5)


def test_teacher_answers_the_copy_the_student_sees():
    x = np.random.default_rng(0).normal(size=(3, 2, 580)).astype(np.float32)
    x[:, 1] = 1.0
    seen = []

    class _Recorder(torch.nn.Module):
        def forward(self, batch):
            seen.append(batch.clone())
            return torch.zeros(len(batch), N_T_BINS + N_LUM)

    taught = with_teacher(make_dataset(x, type_targets(["G2V"] * 3), augment=True), _Recorder())
    torch.manual_seed(0)
    item, targets = taught[1]
    assert torch.equal(seen[-1][0], item)  # the augmented copy, not the stored spectrum
    assert not torch.equal(item, torch.from_numpy(x[1]))
    assert targets["teacher"].shape == (N_T_BINS + N_LUM,) and "t" in targets


def test_the_teacher_answers_a_loaders_batch_in_one_call():
    x = np.random.default_rng(1).normal(size=(8, 2, 580)).astype(np.float32)
    x[:, 1] = 1.0
    calls = []

    class _Sum(torch.nn.Module):
        def forward(self, batch):
            calls.append(len(batch))
            return batch[:, 0, :N_T_BINS + N_LUM] * 2.0

    taught = with_teacher(make_dataset(x, type_targets(["G2V"] * 8)), _Sum())
    items, targets = next(iter(torch.utils.data.DataLoader(taught, batch_size=4)))
    assert calls == [4]
    assert torch.equal(targets["teacher"], items[:, 0, :N_T_BINS + N_LUM] * 2.0)


def _plain_dataset(n=5):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, 2, 580)).astype(np.float32)
    x[:, 1] = 1.0
    x[1, 1, :200] = 0.0  # a blue-short spectrum: a mixture with it keeps only the pixels both cover
    x[:, 0] *= x[:, 1]
    targets = {k: v for k, v in type_targets(["K3III"] * n).items() if k != "usable"}
    targets["w"] = np.full(n, 2.5, np.float32)
    return x, make_dataset(x, targets)


def test_a_mixed_item_is_two_spectra_mixed_on_the_pixels_both_cover():
    x, dataset = _plain_dataset()
    mixed = with_mixup(dataset, 1.0)
    torch.manual_seed(0)
    for i in range(len(x)):
        item, targets = mixed[i]
        assert float(targets["w"]) == 1.0  # a mixture has no main class to weigh
        # Some other spectrum b and some lam in [0, 1] give item = lam * x[i] + (1 - lam) * b there.
        found = False
        for b in x:
            mask = x[i, 1] * b[1]
            if not torch.equal(item[1], torch.from_numpy(mask)):
                continue
            inside = mask > 0
            a_flux, b_flux, got = x[i, 0][inside], b[0][inside], item[0].numpy()[inside]
            if np.allclose(a_flux, b_flux):
                found = np.allclose(got, a_flux, atol=1e-5)
            else:
                lam = np.dot(got - b_flux, a_flux - b_flux) / np.dot(a_flux - b_flux, a_flux - b_flux)
                found = -1e-6 <= lam <= 1 + 1e-6 and np.allclose(got, lam * a_flux + (1 - lam) * b_flux, atol=1e-5)
            if found:
                break
        assert found and np.all(item[0].numpy()[item[1].numpy() == 0] == 0)


def test_no_item_is_mixed_at_share_zero_and_a_rerun_mixes_the_same():
    x, dataset = _plain_dataset()
    assert all(torch.equal(with_mixup(dataset, 0.0)[i][0], dataset[i][0]) for i in range(len(x)))
    mixed = with_mixup(dataset, 0.5)
    torch.manual_seed(3)
    first = [mixed[i][0] for i in range(len(x))]
    torch.manual_seed(3)
    assert all(torch.equal(a, mixed[i][0]) for i, a in enumerate(first))
    assert any(not torch.equal(a, dataset[i][0]) for i, a in enumerate(first))


def _toy_spectra(n=60):
    library = synthetic_library(n, seed=3)
    x = np.stack([prepare(Spectrum(w, f, np.ones(w.size, bool)), Grid()) for w, f, _ in library])
    return x, [sptype for _, _, sptype in library]


def test_student_follows_the_teacher_over_the_labels(tmp_path):
    x, sptypes = _toy_spectra()
    teacher = _Constant(_answer(65, 3))  # M5III for every spectrum, whatever the label says
    config = dataclasses.replace(DEFAULT_CONFIG, model="spectra_ann", epochs=15, patience=15, lr=3e-3)
    answers = {}
    for weight in (0.0, 1.0):
        run = tmp_path / f"w{weight}"
        train_classifier(x, sptypes, run, config, teacher=teacher, teacher_weight=weight, progress=False)
        answers[weight] = [row["sptype"] for row in SpectraPredictor.from_checkpoint(run).classify(x)]
    assert np.mean([a == "M5III" for a in answers[1.0]]) > 0.9
    assert np.mean([a == "M5III" for a in answers[0.0]]) < 0.2  # the labels: a spread of types
