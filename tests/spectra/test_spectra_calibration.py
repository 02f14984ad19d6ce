"""Main-class confidence: temperature scaling, expected calibration error, reliability diagram."""

import numpy as np
import pytest

from deepscope.spectra.calibration import (
    expected_calibration_error,
    fit_temperature,
    main_class_confidence,
    reliability_figure,
    reliability_table,
)


def overconfident_set(n=3000, accuracy=0.7, seed=0):
    """Log-probabilities that put ~99% on one class, which is right only ``accuracy`` of the time."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 7, n)
    right = rng.random(n) < accuracy
    predicted = np.where(right, true, (true + rng.integers(1, 7, n)) % 7)
    log_p = np.full((n, 70), -9.0)
    log_p[np.arange(n), 10 * predicted + 5] = 0.0
    return log_p, true, predicted


def calibrated_set(n=20000, seed=0):
    """Confidences drawn at random, each right with exactly its own probability."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.2, 1.0, n)
    return confidence, rng.random(n) < confidence


def test_ece_of_a_calibrated_set_is_near_zero_and_of_an_overconfident_one_is_not():
    confidence, correct = calibrated_set()
    assert expected_calibration_error(confidence, correct) < 0.015
    log_p, true, predicted = overconfident_set()
    raw = main_class_confidence(log_p, predicted, 1.0)
    assert expected_calibration_error(raw, true == predicted) > 0.2


def test_fitted_temperature_brings_ece_down():
    log_p, true, predicted = overconfident_set()
    temperature = fit_temperature(log_p, true, predicted)
    before = expected_calibration_error(main_class_confidence(log_p, predicted, 1.0), true == predicted)
    after = expected_calibration_error(main_class_confidence(log_p, predicted, temperature), true == predicted)
    assert temperature > 1.0
    assert after < 0.05 < before
    held_out, true2, predicted2 = overconfident_set(seed=1)
    assert expected_calibration_error(main_class_confidence(held_out, predicted2, temperature),
                                      true2 == predicted2) < 0.05


def test_confidence_is_the_summed_probability_of_the_predicted_main_class():
    p = np.full(70, 0.1 / 60)
    p[40:50] = 0.09  # G holds 0.9
    log_p = np.log(p)[None]
    assert main_class_confidence(log_p, [4], 1.0)[0] == pytest.approx(0.9)
    assert main_class_confidence(log_p, [5], 1.0)[0] == pytest.approx(0.1 / 6)
    assert 0.9 > main_class_confidence(log_p, [4], 3.0)[0] > 1 / 7


def test_reliability_table_bins_every_prediction_once():
    confidence = np.array([0.05, 0.15, 0.95, 1.0, 1.0])
    table = reliability_table(confidence, [False, True, True, True, False])
    assert table["n"].sum() == 5
    assert table.iloc[-1].to_dict() == pytest.approx({"lo": 0.9, "hi": 1.0, "n": 3, "confidence": 2.95 / 3,
                                                      "accuracy": 2 / 3})


def test_fit_temperature_refuses_an_empty_set():
    with pytest.raises(ValueError, match="no held-out predictions"):
        fit_temperature(np.zeros((0, 70)), [], [])


@pytest.mark.parametrize(("name", "temperature"), [("spectra_mk", 0.562), ("spectra_mk_fast", 0.527)])
def test_shipped_checkpoints_carry_their_own_temperature(name, temperature):
    from deepscope.spectra.predictor import SpectraPredictor

    assert SpectraPredictor.from_checkpoint(name).meta["temperature"] == temperature


def test_a_checkpoint_without_a_temperature_reports_the_raw_probability_and_says_so_once(tmp_path, caplog):
    import torch

    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.registry import resolve_model
    from deepscope.samples import sample_dir
    from deepscope.spectra.calibration import main_class_mass
    from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS
    from deepscope.spectra.predictor import SpectraPredictor

    record = load_checkpoint(resolve_model("spectra_mk_fast", "spectra"))
    del record["meta"]["temperature"]
    torch.save(record, tmp_path / "uncalibrated.pt")
    with caplog.at_level("WARNING", logger="deepscope.spectra.calibration"):
        predictor = SpectraPredictor.from_checkpoint(tmp_path / "uncalibrated.pt")
        SpectraPredictor.from_checkpoint(tmp_path / "uncalibrated.pt")
    said = [r.getMessage() for r in caplog.records if "no calibration temperature" in r.getMessage()]
    assert len(said) == 1 and "uncalibrated.pt" in said[0]
    items = [predictor.load_input(path) for path in sorted(sample_dir("spectra").glob("*.fits"))[:6]]
    rows = predictor.assess(items)
    mass = main_class_mass(predictor.outputs(predictor.features(items).x)[:, :N_T_BINS])
    raw = [round(float(mass[i, MAIN_CLASSES.index(row["main_class"])]), 4) for i, row in enumerate(rows)]
    assert [row["confidence"] for row in rows] == raw


def test_reliability_figure_names_each_curve_with_its_class_and_ece():
    confidence, correct = calibrated_set(2000)
    fig = reliability_figure({"G": (confidence, correct), "K": (confidence[::2], correct[::2])})
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("G (ECE 0.0") for label in labels)
    assert any(label.startswith("K (ECE") and "n=1000" in label for label in labels)
