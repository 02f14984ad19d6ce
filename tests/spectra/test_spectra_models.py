"""Registered spectral networks, the partial-type loss and the template baseline."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.registry import create_model, list_models
from deepscope.spectra.io.files import Spectrum
from deepscope.spectra.models import N_OUTPUTS, N_T_BINS
from spectra.spectra_helpers import prepare, synthetic_library

from deepscope.spectra.autoencoder import add_noise
from deepscope.spectra.preparation.grid import Grid
from deepscope.spectra.evaluate import score_predictions
from deepscope.spectra.decoding import t_index_from_logits
from deepscope.spectra.targets import spectra_loss, t_target_distribution, type_targets
from deepscope.spectra.templates import TemplateMatcher
from deepscope.spectra.train import make_dataset

# The ensemble is built from trained members, so it has a test of its own.
SPECTRA_MODELS = [name for name in list_models() if name.startswith("spectra_") and name != "spectra_ensemble"]


def test_all_spectra_models_registered():
    assert set(SPECTRA_MODELS) == {"spectra_ann", "spectra_cnn", "spectra_cnn_small", "spectra_autoencoder",
                                   "spectra_ae_classifier"}
    assert "spectra_ensemble" in list_models()


def test_ensemble_averages_member_probabilities_head_by_head():
    torch.manual_seed(0)
    ensemble = create_model("spectra_ensemble", members=[("spectra_cnn", {}), ("spectra_ann", {"n_points": 580})])
    x = torch.randn(4, 2, 580)
    with torch.no_grad():
        out = ensemble.eval()(x)
        each = [member(x) for member in ensemble.members]
    for head in (slice(0, N_T_BINS), slice(N_T_BINS, None)):
        mean_p = torch.stack([torch.softmax(o[:, head], dim=1) for o in each]).mean(0)
        assert torch.allclose(out[:, head].exp(), mean_p, atol=1e-6)


@pytest.mark.parametrize("name", SPECTRA_MODELS)
@pytest.mark.parametrize("n_points", [580, 1900])
def test_forward_shape_and_finite(name, n_points):
    torch.manual_seed(0)
    model = create_model(name, n_points=n_points).eval()
    out = model(torch.randn(3, 2, n_points))
    expected = (3, n_points) if name == "spectra_autoencoder" else (3, N_OUTPUTS)
    assert out.shape == expected and torch.isfinite(out).all()


def test_ae_classifier_starts_from_pretrained_encoder(tmp_path):
    from deepscope.core.checkpoint import save_checkpoint

    torch.manual_seed(1)
    ae = create_model("spectra_autoencoder", n_points=580)
    save_checkpoint(tmp_path / "ae.pt", "spectra_autoencoder", {"n_points": 580}, ae)
    clf = create_model("spectra_ae_classifier", n_points=580, pretrained=str(tmp_path / "ae.pt"))
    assert torch.equal(clf.to_code.weight, ae.to_code.weight)
    assert torch.equal(clf.encoder.net[0].weight, ae.encoder.net[0].weight)


def test_loss_uses_only_what_a_type_knows():
    targets = {k: torch.from_numpy(np.asarray(v, np.float32))
               for k, v in type_targets(["G2V", "Am", "M6Svar", "sd:F"]).items() if k != "usable"}
    good = torch.zeros(4, N_OUTPUTS)
    # The best temperature logits are the soft targets themselves.
    good[:, :N_T_BINS] = torch.log(t_target_distribution(targets) + 1e-6)
    good[0, N_T_BINS + 4] = good[3, N_T_BINS + 5] = 20.0  # V for G2V, VI for sd:F
    good.requires_grad_(True)
    loss = spectra_loss(good, targets)
    loss.backward()
    # 'Am' and 'M6Svar' have no luminosity class: their luminosity logits get no gradient.
    assert torch.all(good.grad[1, N_T_BINS:] == 0) and torch.all(good.grad[2, N_T_BINS:] == 0)
    wrong = good.detach().clone()
    wrong[1, :N_T_BINS] = torch.roll(wrong[1, :N_T_BINS], 10)  # 'Am' predicted as an F star
    assert float(spectra_loss(wrong, targets)) > float(loss.detach()) + 1.0


def test_soft_targets_and_readout():
    targets = {k: torch.from_numpy(np.asarray(v, np.float32))
               for k, v in type_targets(["G2.5V", "Am"]).items() if k != "usable"}
    dist = t_target_distribution(targets).numpy()
    assert np.allclose(dist.sum(1), 1) and dist[0, 42] == pytest.approx(dist[0, 43])
    assert np.allclose(dist[1, 20:30], 0.1) and dist[1, :20].sum() == 0
    assert t_index_from_logits(np.log(dist[:1] + 1e-9))[0] == pytest.approx(42.5, abs=0.05)


def _prepared(library, grid=Grid()):
    return np.stack([prepare(Spectrum(w, f, np.ones(w.size, bool)), grid) for w, f, _ in library])


def test_template_matcher_recovers_toy_types():
    train, test = synthetic_library(150, seed=0), synthetic_library(40, seed=1)
    x_train, x_test = _prepared(train), _prepared(test)
    matcher = TemplateMatcher(x_train[:, 0], x_train[:, 1] > 0, [s for _, _, s in train])
    metrics, _ = score_predictions([s for _, _, s in test], pd.DataFrame(matcher.predict(x_test)))
    assert metrics["main_class_accuracy"] >= 0.9 and metrics["subclass_mae"] <= 1.5


def test_augmented_dataset_items():
    x = _prepared(synthetic_library(4, seed=2))
    data = make_dataset(x, type_targets(["G2V", "K3III", "Am", "HB"]), augment=True)
    item, target = data[0]
    assert item.shape == (2, 580) and set(target) == {"t", "t_known", "lo", "hi", "lum", "lum_known"}
    noisy = add_noise(x, 20.0, np.random.default_rng(0))
    assert 0.02 < float(np.std((noisy - x)[:, 0][x[:, 1] > 0])) < 0.08


def test_short_copies_align_and_keep_full_spectra_that_start_too_red(tmp_path):
    from deepscope.spectra.preparation.labelled import SHORT_RED_LIMIT, load_prepared

    grid = Grid(3850, 5550, 580)
    paths = []
    for name, start in (("blue", 3700.0), ("red", 4500.0)):
        wave = np.arange(start, 5700.0, 1.0)
        paths.append(tmp_path / f"{name}.txt")
        np.savetxt(paths[-1], np.column_stack([wave, 1.0 + 0.1 * np.sin(wave / 30.0)]))
    x, good, failures, short = load_prepared(paths, grid, short=True)
    assert list(good) == [0, 1] and not failures
    assert np.array_equal(x, load_prepared(paths, grid)[0])
    assert short.shape == x.shape
    assert short[0, 1].sum() == (grid.wave <= SHORT_RED_LIMIT).sum()
    # 4500-4620 A is under 40% of the grid: that spectrum trains only in full
    assert np.array_equal(short[1], x[1])


@pytest.mark.parametrize("weights", ["binary", "fractional"])
def test_template_chi2_is_the_mean_squared_difference_over_common_pixels(weights):
    rng = np.random.default_rng(4)
    n, templates = 60, 7
    x = np.zeros((6, 2, n), np.float32)
    x[:, 0] = rng.normal(size=(6, n))
    x[:, 1] = 1.0
    x[1, 1, 40:] = x[4, 1, 40:] = 0.0  # two spectra sharing a short mask, one with a shorter one
    x[5, 1, 15:] = 0.0  # under a third of the grid in common: no match at all
    if weights == "fractional":
        x[2, 1, :5] = 0.5
    x[:, 0] *= x[:, 1] > 0
    flux, mask = rng.normal(size=(templates, n)), np.ones((templates, n), bool)
    mask[3, :30] = False
    matcher = TemplateMatcher(flux, mask, ["G2V"] * templates)
    expected = np.empty((6, templates))
    for i in range(6):
        for t in range(templates):
            both = x[i, 1] * mask[t]
            common = both.sum()
            sq = (both * (x[i, 0] - flux[t] * mask[t]) ** 2).sum()
            expected[i, t] = sq / common if common >= 0.3 * n else np.inf
    assert np.allclose(matcher.chi2(x), expected, rtol=1e-4, atol=1e-5)
    assert np.isinf(matcher.chi2(x)[5]).all()
