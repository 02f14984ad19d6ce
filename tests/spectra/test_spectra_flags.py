"""The flag column's reasons: scores on known inputs, and the full detector on oddities and real stars."""

import numpy as np
import pytest

from spectra.spectra_helpers import prepare, synthetic_spectrum

from deepscope.samples import sample_dir
from deepscope.spectra import flags
from deepscope.spectra.io.files import Spectrum, read_spectrum
from deepscope.spectra.preparation.grid import Grid, to_air
from deepscope.spectra.synthetic import ODDITY_KINDS, make_oddity


@pytest.fixture(scope="module")
def shipped():
    """The shipped model's metadata and its template matcher (the detector's reference set)."""
    from deepscope.spectra.predictor import SpectraPredictor
    from deepscope.spectra.templates import TemplateMatcher

    meta = SpectraPredictor.from_checkpoint().meta
    return meta, TemplateMatcher.from_meta(meta)


def flags_of(spectrum, shipped):
    """The flag the predictor writes for one spectrum."""
    meta, matcher = shipped
    grid = meta["grid"]
    wave = to_air(spectrum.wave) if spectrum.medium == "vacuum" else spectrum.wave
    snr, median_flux = flags.spectrum_scores_rows(wave, spectrum.flux[None], spectrum.valid[None], grid.start,
                                                  grid.stop)
    x = prepare(spectrum, grid, meta["min_coverage"])[None]
    mismatch = flags.template_mismatch(x, matcher.chi2(x).min(axis=1))
    return flags.flag_reasons(snr, flags.blue_coverage(x[:, 1], grid.wave), median_flux, mismatch)[0]


def oddity(kind, seed=0):
    star = synthetic_spectrum(42.0, 5, snr=200.0, rng=np.random.default_rng(seed))
    wave, flux = make_oddity(kind, np.random.default_rng(seed), star=star, galaxy_stars=[star])
    return Spectrum(wave, flux, np.isfinite(flux) & (flux != 0))


@pytest.mark.parametrize("snr", [3.0, 30.0])
def test_der_snr_recovers_the_noise_of_a_smooth_spectrum(snr):
    rng = np.random.default_rng(1)
    wave = np.arange(3700.0, 5700.0)
    flux = (wave / 4500.0) ** -2 * (1.0 + rng.normal(0.0, 1.0 / snr, wave.size))
    assert flags.der_snr(flux) == pytest.approx(snr, rel=0.1)


def test_der_snr_is_negative_for_negative_flux_and_zero_for_too_few_pixels():
    assert flags.der_snr(-5.0 + np.random.default_rng(0).normal(0.0, 1.0, 500)) < -3.0
    assert flags.der_snr(np.ones(4)) == 0.0


def test_spectrum_scores_use_only_valid_pixels_on_the_grid():
    wave = np.arange(3000.0, 7000.0)
    flux = np.where((wave > 3850) & (wave < 5550), 2.0, -100.0)
    valid = np.ones(wave.size, bool)
    valid[1000:1100] = False
    flux[1000:1100] = -100.0
    assert flags.spectrum_scores_rows(wave, flux[None], valid[None], 3850.0, 5550.0)[1].tolist() == [2.0]


def test_blue_coverage_counts_only_the_classification_window():
    grid = Grid()
    red_gap = np.ones((1, grid.n))
    red_gap[0, grid.wave > 5000] = 0
    blue_gap = np.ones((1, grid.n))
    blue_gap[0, (grid.wave > 4000) & (grid.wave < 4300)] = 0
    assert flags.blue_coverage(red_gap, grid.wave)[0] == 1.0
    assert flags.blue_coverage(blue_gap, grid.wave)[0] < flags.MIN_BLUE_COVERAGE


def test_template_mismatch_is_small_for_a_template_and_large_for_a_featureless_spectrum():
    grid = Grid()
    rng = np.random.default_rng(0)
    star = prepare(Spectrum(*synthetic_spectrum(42.0, 5, snr=300.0, rng=rng), np.ones(2000, bool)), grid)
    flat = prepare(Spectrum(*make_oddity("flat_continuum", rng), np.ones(2000, bool)), grid)
    templates = np.stack([star, prepare(Spectrum(*synthetic_spectrum(20.0, 5, rng=rng), np.ones(2000, bool)), grid)])
    from deepscope.spectra.templates import TemplateMatcher

    matcher = TemplateMatcher(templates[:, 0], templates[:, 1] > 0, ["G2V", "A0V"])
    x = np.stack([star, flat])
    mismatch = flags.template_mismatch(x, matcher.chi2(x).min(axis=1))
    assert mismatch[0] < 0.01
    assert mismatch[1] > 10 * flags.MAX_TEMPLATE_MISMATCH


def test_each_reason_is_raised_by_its_own_score_alone():
    ordinary = dict(snr=50.0, blue_cover=1.0, median_flux=1.0, mismatch=0.05)
    assert flags.flag_reasons(*([v] for v in ordinary.values())) == [""]
    for key, bad, reason in [("snr", 2.0, "low_snr"), ("snr", -2.0, "low_snr"),
                             ("blue_cover", 0.6, "short_coverage"), ("blue_cover", 0.3, "missing_mk_lines"),
                             ("median_flux", -1.0, "negative_flux"), ("mismatch", np.inf, "out_of_distribution")]:
        scores = {**ordinary, key: bad}
        assert flags.flag_reasons(*([v] for v in scores.values())) == [reason], key


@pytest.mark.parametrize("kind", ["pure_noise", "qso_like", "flat_continuum", "blackbody_200000K", "sign_flipped"])
def test_not_a_star_is_flagged(kind, shipped):
    assert flags_of(oddity(kind), shipped) != ""


def test_a_low_snr_star_is_flagged_low_snr(shipped):
    assert "low_snr" in flags_of(oddity("star_snr2"), shipped).split(";")


@pytest.mark.parametrize("name", ["pickles_g2v.fits", "mkclass_t340l30p00.rbn.gz",
                                  "miles_MILES_res2.50_star_m0594V.fits.gz"])
def test_bundled_ordinary_stars_are_not_flagged(name, shipped):
    assert flags_of(read_spectrum(sample_dir("spectra") / name), shipped) == ""


def test_stelib_stars_never_trained_on_are_rarely_out_of_distribution(shipped, spectra_dir):
    files = sorted((spectra_dir / "stelib").glob("*.fits*"))[::12]
    if not files:
        pytest.skip("no STELIB files")
    found = [flags_of(read_spectrum(f), shipped) for f in files]
    assert sum("out_of_distribution" in f for f in found) <= 2


def test_make_oddity_is_reproducible_and_refuses_what_it_cannot_make():
    a = make_oddity("qso_like", np.random.default_rng(3))[1]
    b = make_oddity("qso_like", np.random.default_rng(3))[1]
    np.testing.assert_array_equal(a, b)
    assert len(ODDITY_KINDS) == 10
    with pytest.raises(ValueError, match="unknown oddity kind"):
        make_oddity("quasar", np.random.default_rng(0))
    with pytest.raises(ValueError, match="real star"):
        make_oddity("wavelength_flipped", np.random.default_rng(0))


def _cut(spectrum, low, high):
    """The spectrum with only its pixels from ``low`` to ``high`` Angstrom valid."""
    return Spectrum(spectrum.wave, spectrum.flux, spectrum.valid & (spectrum.wave >= low) & (spectrum.wave <= high),
                    spectrum.medium)


def test_a_spectrum_without_most_mk_lines_keeps_its_row_but_gets_no_type():
    from deepscope.spectra.predictor import NO_TYPE, SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint()
    star = read_spectrum(sample_dir("spectra") / "miles_MILES_res2.50_star_m0594V.fits.gz")
    # 4500 A on: 15% of the 3850-4620 A window; 4150 A on: 60% of it, still typed but flagged.
    whole, red_only, most = (predictor.prepare(s, "star") for s in (star, _cut(star, 4500.0, 9000.0),
                                                                    _cut(star, 4150.0, 9000.0)))
    rows = predictor.assess([whole, red_only, most])
    assert rows[0]["sptype"] and rows[0]["flag"] == ""
    assert rows[1]["flag"].split(";") == ["missing_mk_lines"]
    assert {k: rows[1][k] for k in ("sptype", "main_class", "lum_class")} == {"sptype": "", "main_class": "",
                                                                             "lum_class": ""}
    assert all(np.isnan(rows[1][k]) for k in ("subclass", "code", "temperature_index", "confidence"))
    assert set(NO_TYPE) <= set(rows[1]) and np.isfinite(rows[1]["rv_kms"])
    assert rows[2]["sptype"] and rows[2]["flag"].split(";") == ["short_coverage"]
