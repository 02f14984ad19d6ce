"""Survey-like training copies: each perturbation does what it says, and items look like make_dataset's."""

import numpy as np

from spectra.spectra_helpers import synthetic_spectrum

from deepscope.spectra.augment import (ObservedSpectra, SurveyAugment, add_noise, flux_level, noisy_copies, perturb,
                                       survey_dataset)
from deepscope.spectra.preparation.grid import FineGrid, Grid, resample_rows
from deepscope.spectra.targets import type_targets

NOTHING = SurveyAugment(rv_sigma_kms=0.0, rv_wide_share=0.0, noise_share=0.0, blur_share=0.0, blue_cut_share=0.0,
                        red_cut_share=0.0, tilt_share=0.0)


def _observed(n=4):
    fine = FineGrid(Grid())
    rows = [synthetic_spectrum(42.0, 5, snr=1e6, rng=np.random.default_rng(i)) for i in range(n)]
    flux, cover = zip(*(resample_rows(w, f[None], np.ones((1, f.size), bool), fine.edges) for w, f in rows))
    return ObservedSpectra(np.concatenate(flux), np.concatenate(cover), fine)


def test_noise_has_the_asked_signal_to_noise():
    flux = np.full((2, 20000), 3.0)
    noisy = add_noise(flux, flux_level(flux, np.ones_like(flux)), np.array([10.0, 50.0]), np.random.default_rng(0))
    assert np.allclose(3.0 / noisy.std(axis=1), [10.0, 50.0], rtol=0.05)


def test_each_perturbation_alone():
    observed = _observed()
    fine, rng = observed.fine, np.random.default_rng(1)
    same = perturb(observed.flux, observed.cover, fine, NOTHING, rng)
    assert np.array_equal(same[0], observed.flux) and np.array_equal(same[1], observed.cover)
    assert not same[2].any()
    blue = perturb(observed.flux, observed.cover, fine, SurveyAugment(**{**NOTHING.__dict__, "blue_cut_share": 1.0}),
                   rng)[1]
    starts = fine.wave[np.argmax(blue >= 0.5, axis=1)]
    assert ((starts >= 3850.0) & (starts <= 4410.0)).all() and (starts > 3860.0).any()
    wide = SurveyAugment(**{**NOTHING.__dict__, "rv_sigma_kms": 5.0})
    assert 3.0 < perturb(np.repeat(observed.flux, 100, 0), np.repeat(observed.cover, 100, 0), fine, wide,
                         rng)[2].std() < 7.0
    blurred = perturb(observed.flux, observed.cover, fine, SurveyAugment(**{**NOTHING.__dict__, "blur_share": 1.0}),
                      rng)[0]
    inside = slice(fine.pad, fine.n - fine.pad)
    roughness = [np.abs(np.diff(flux[:, inside])).mean(axis=1) for flux in (blurred, observed.flux)]
    assert (roughness[0] < roughness[1]).all()


def test_survey_items_look_like_make_dataset_items():
    from deepscope.spectra.train import make_dataset

    observed = _observed()
    targets = type_targets(["G2V", "K0III", "A0V", "M2V"])
    survey = survey_dataset(observed, targets, SurveyAugment(), red_limit=4620.0)
    plain = make_dataset(np.zeros((8, 2, 580), np.float32), {k: np.concatenate([v, v]) for k, v in targets.items()})
    assert len(survey) == 8
    items = survey.__getitems__([0, 5])
    (x, y), (x_short, y_short) = items
    assert x.shape == plain[0][0].shape and set(y) == set(plain[0][1])
    # The short copy (index 5 = spectrum 1 cut at 4620 A) has no data redward of it (jitter may shift it a pixel).
    assert x_short[1][Grid().wave > 4620.0].sum() <= 1 and x_short[1].sum() > 200
    assert float(y_short["lo"]) == float(targets["lo"][1])


def test_noisy_validation_copies_are_fixed_by_their_seed():
    observed = _observed(2)
    a, b, c = noisy_copies(observed, 10.0, 0), noisy_copies(observed, 10.0, 0), noisy_copies(observed, 10.0, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (2, 2, 580)

