"""Every spectra prediction says how sure it is and flags input unlike anything the model knows."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from deepscope.cli.main import main
from deepscope.samples import sample_dir
from deepscope.spectra.synthetic import make_oddity

SAMPLES = sample_dir("spectra")


def _write_text(path, wave, flux):
    np.savetxt(path, np.column_stack([wave, flux]), header="wavelength flux", comments="")
    return path


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    """The bundled ordinary stars plus three oddities, predicted through the command line."""
    folder = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    # Text files are named one by one: directories are searched for FITS and MKCLASS files only.
    odd = [str(_write_text(folder / f"{kind}.txt", *make_oddity(kind, rng)))
           for kind in ("pure_noise", "qso_like", "blackbody_800K")]
    out = folder / "pred.csv"
    assert main(["-q", "spectra", "predict", str(SAMPLES), *odd, "--out", str(out)]) == 0
    return pd.read_csv(out, keep_default_na=False)


def test_columns_follow_the_type(predictions):
    assert list(predictions.columns[-4:]) == ["confidence", "flag", "rv_kms", "rv_err_kms"]
    assert predictions["confidence"].between(1 / 7, 1).all()  # never below a uniform guess over O..M


def test_oddities_are_flagged_out_of_distribution(predictions):
    odd = predictions[predictions["file"].str.endswith(".txt")]
    assert len(odd) == 3
    assert odd["flag"].str.contains("out_of_distribution").all()


def test_ordinary_bundled_stars_are_mostly_not_flagged(predictions):
    stars = predictions[~predictions["file"].str.endswith(".txt")]
    # The SDSS M dwarf is genuinely low S/N in the blue window (3.6): the one expected flag.
    assert (stars["flag"] != "").sum() <= 1
    assert stars.loc[stars["flag"] == "", "confidence"].median() > 0.8


def test_drop_flagged_leaves_them_out(predictions, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    noise = _write_text(folder / "noise.txt", *make_oddity("pure_noise", np.random.default_rng(1)))
    fits.PrimaryHDU().writeto(folder / "broken.fits")  # a bad file still fails, listed
    star = sorted(SAMPLES.glob("pickles_*.fits"))[0]
    out = tmp_path / "kept.csv"
    assert main(["-q", "spectra", "predict", str(folder), str(noise), str(star), "--out", str(out),
                 "--drop-flagged"]) == 1
    kept = pd.read_csv(out, keep_default_na=False)
    assert kept["file"].tolist() == [str(star)] and (kept["flag"] == "").all()


def test_drop_flagged_needs_a_table_output(tmp_path, capsys):
    assert main(["spectra", "predict", str(SAMPLES), "--out", str(tmp_path / "parts"), "--drop-flagged"]) == 1
    assert "--drop-flagged needs a .csv or .parquet --out" in capsys.readouterr().err


def test_a_checkpoint_reports_with_its_own_temperature():
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint()
    items = [predictor.load_input(path) for path in sorted(SAMPLES.glob("*.fits"))[:4]]
    shipped = [row["confidence"] for row in predictor.assess(items)]
    predictor.meta["temperature"] *= 4  # softer
    softer = [row["confidence"] for row in predictor.assess(items)]
    assert all(s < c for s, c in zip(softer, shipped) if c < 1.0) and softer != shipped


def test_an_snr_term_softens_the_confidence_of_noisy_spectra_only():
    from deepscope.spectra.calibration import SNR_TEMPERATURE_TERM
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint()
    assert "temperature_snr_term" not in predictor.meta  # spectra_mk's T was fitted on held-out libraries
    stars = sorted(path for path in SAMPLES.iterdir() if path.name not in ("README.md", "labels.csv"))
    features = predictor.features([predictor.load_input(path) for path in stars])
    plain = np.array([row["confidence"] for row in predictor.assess_features(features)])
    predictor.meta["temperature_snr_term"] = SNR_TEMPERATURE_TERM
    softened = np.array([row["confidence"] for row in predictor.assess_features(features)])
    # the SDSS M dwarf reads S/N 3.6, the library stars far more; NaN (nothing to read) is noiseless
    noisy, clean = features.snr < 10, ~(features.snr <= 100)
    assert noisy.any() and clean.any()
    assert (softened[noisy] < plain[noisy] - 0.01).all()  # 1.000 -> 0.981 for the M dwarf
    np.testing.assert_allclose(softened[clean], plain[clean], atol=0.005)


def test_the_distilled_model_flags_what_the_ensemble_flags(predictions, tmp_path):
    # The flags read the spectrum and the training templates, not the network, and the student
    # keeps its teacher's templates: the same inputs get the same flags, the types their own confidence.
    rng = np.random.default_rng(0)
    odd = [str(_write_text(tmp_path / f"{kind}.txt", *make_oddity(kind, rng)))
           for kind in ("pure_noise", "qso_like", "blackbody_800K")]
    out = tmp_path / "fast.csv"
    assert main(["-q", "spectra", "predict", str(SAMPLES), *odd, "--out", str(out), "--model", "spectra_mk_fast"]) == 0
    fast = pd.read_csv(out, keep_default_na=False)
    assert [Path(f).name for f in fast["file"]] == [Path(f).name for f in predictions["file"]]
    assert fast["flag"].tolist() == predictions["flag"].tolist()
    assert fast["confidence"].between(1 / 7, 1).all() and not fast["confidence"].equals(predictions["confidence"])
    stars = ~fast["file"].str.endswith(".txt")
    assert (fast.loc[stars, "main_class"] == predictions.loc[stars, "main_class"]).mean() >= 0.9
