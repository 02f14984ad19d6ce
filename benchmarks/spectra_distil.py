"""A distilled single network against the ensemble that taught it, library by library, held out.

For each library of the leave-one-library-out protocol (the spectra
README's), ``--loo DIR`` holds the teacher trained without it in
``DIR/<library>/`` (``deepscope spectra train`` with the other libraries,
three members) and the student in ``DIR/<library>_fast/`` (the same data,
``--arch spectra_cnn_small --members 1 --teacher DIR/<library>``, with the
shipped student's ``--mixup 0.5 --epochs 120 --patience 120``). Prints, per held-out library, both models' main-class
accuracy, subclass MAE and luminosity-class accuracy and how often the
student gives the teacher's answer; then the student's confidence
calibration: the temperature fitted on all four libraries' held-out
predictions (what a shipped student stores) and the expected calibration
error when each library's temperature is fitted on the other three.
Measured figures, not asserts.

usage:
  python benchmarks/spectra_distil.py --loo DIR [--libraries miles mkclass pickles kesseli2017]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra"
LIBRARIES = ("miles", "mkclass", "pickles", "kesseli2017")


def agreement(student_outputs: np.ndarray, teacher_outputs: np.ndarray) -> dict:
    """How often a student gives the teacher's answer: type, main class and luminosity class."""
    from deepscope.spectra.decoding import outputs_to_rows

    pairs = list(zip(outputs_to_rows(student_outputs), outputs_to_rows(teacher_outputs)))
    return {column: float(np.mean([s[column] == t[column] for s, t in pairs]))
            for column in ("sptype", "main_class", "lum_class")}


def held_out(library, teacher_dir, student_dir):
    """Scores of teacher and student on one held-out library; the student's temperature-head outputs and truth."""
    from deepscope.spectra.evaluate import score_predictions
    from deepscope.spectra.mktype import MAIN_CLASSES, N_T_BINS, parse_mk
    from deepscope.spectra.decoding import outputs_to_rows
    from deepscope.spectra.predictor import SpectraPredictor
    from deepscope.spectra.preparation.labelled import load_labelled

    teacher, student = SpectraPredictor.from_checkpoint(teacher_dir), SpectraPredictor.from_checkpoint(student_dir)
    manifest, x, _ = load_labelled([DATA / library / "labels.csv"], teacher.grid, teacher.min_coverage,
                                   progress=False)
    outputs = {"teacher": teacher.outputs(x), "student": student.outputs(x)}
    rows = []
    for name, out in outputs.items():
        metrics, _ = score_predictions(list(manifest["sptype"]), pd.DataFrame(outputs_to_rows(out)))
        rows.append({"held out": library, "model": name, "n": metrics["n"],
                     "main class": round(metrics["main_class_accuracy"], 3),
                     "subclass MAE": round(metrics["subclass_mae"], 2),
                     "luminosity class": round(metrics["lum_class_accuracy"], 3)})
    rows[-1].update({f"agrees: {k}": round(v, 3) for k, v in agreement(outputs["student"], outputs["teacher"]).items()})
    parsed = [parse_mk(s) for s in manifest["sptype"]]
    true_main = np.array([-1 if mk is None else mk.a1 - 1 for mk in parsed])
    predicted = np.array([MAIN_CLASSES.index(r["main_class"]) for r in outputs_to_rows(outputs["student"])])
    return rows, outputs["student"][:, :N_T_BINS], true_main, predicted


def main():
    from deepscope.spectra.calibration import expected_calibration_error, fit_temperature, main_class_confidence

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loo", required=True, type=Path, help="DIR/<library> teachers, DIR/<library>_fast students")
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    args = parser.parse_args()
    rows, t_log_p, true, pred, library = [], [], [], [], []
    for name in args.libraries:
        scores, log_p, truth, predicted = held_out(name, args.loo / name, args.loo / f"{name}_fast")
        rows += scores
        keep = truth >= 0
        t_log_p.append(log_p[keep])
        true.append(truth[keep])
        pred.append(predicted[keep])
        library += [name] * int(keep.sum())
    print(pd.DataFrame(rows).to_string(index=False))
    t_log_p, true, pred, library = np.concatenate(t_log_p), np.concatenate(true), np.concatenate(pred), np.array(library)
    correct = true == pred
    crossfit = np.empty(len(true))
    for name in args.libraries:
        this = library == name
        temperature = fit_temperature(t_log_p[~this], true[~this], pred[~this])
        crossfit[this] = main_class_confidence(t_log_p[this], pred[this], temperature)
        print(f"{name}: T fitted on the others {temperature:.3f}, "
              f"ECE {expected_calibration_error(crossfit[this], correct[this]):.3f}")
    print(f"student: T fitted on all {len(true)} held-out stars (ship this): "
          f"{fit_temperature(t_log_p, true, pred):.3f}; pooled ECE with cross-fitted T "
          f"{expected_calibration_error(crossfit, correct):.3f}, "
          f"uncalibrated {expected_calibration_error(main_class_confidence(t_log_p, pred, 1.0), correct):.3f}")


if __name__ == "__main__":
    main()
