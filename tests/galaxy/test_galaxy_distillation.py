"""Training towards a teacher network's probabilities."""

import numpy as np
import pytest

from deepscope.config import TrainConfig
from deepscope.errors import InputError, ModelError
from deepscope.galaxy import train as galaxy_train
from deepscope.galaxy.distillation import check_teacher, teacher_probabilities


def test_teacher_probabilities_join_the_training_targets(tiny_labels, tmp_path, monkeypatch):
    seen = {}
    real_dataset = galaxy_train.CutoutDataset

    def recording_dataset(images, labels, weights=None, augment=False, soft=None, **kwargs):
        if augment:  # the training set
            seen["labels"], seen["soft"] = labels, soft
        return real_dataset(images, labels, weights, augment=augment, soft=soft, **kwargs)

    def teacher(model, images):
        seen["teacher_images"] = len(images)
        return np.tile(np.float32([0.2, 0.8]), (len(images), 1))

    monkeypatch.setattr(galaxy_train, "CutoutDataset", recording_dataset)
    monkeypatch.setattr(galaxy_train, "teacher_probabilities", teacher)
    config = TrainConfig(model="barnet_fast", epochs=1, batch_size=16, threads=1)
    summary = galaxy_train.train_galaxy(tiny_labels, tmp_path / "run", config=config, progress=False,
                                        teacher="galaxy_bars", teacher_weight=0.25)
    labels, soft = seen["labels"], seen["soft"]
    assert seen["teacher_images"] == summary["n_train"] == len(labels)  # training rows only
    expected = 0.75 * np.eye(2)[labels] + 0.25 * np.array([0.2, 0.8])
    np.testing.assert_allclose(soft, expected, atol=1e-6)
    assert "teacher:" in (tmp_path / "run" / "config.yaml").read_text()


def test_teacher_must_exist_and_weigh_between_0_and_1(tmp_path):
    with pytest.raises(InputError, match="--teacher-weight must be between 0 and 1, got 1.5"):
        check_teacher("galaxy_bars", 1.5, ["0", "1"], 64)
    with pytest.raises(ModelError):
        check_teacher(tmp_path / "absent.pt", 0.5, ["0", "1"], 64)


def test_a_teacher_with_other_classes_or_size_is_refused():
    with pytest.raises(InputError, match="classes"):
        check_teacher("galaxy_morphology", 0.5, ["0", "1"], 64)
    with pytest.raises(InputError, match="reads 64 px cutouts, the run 32 px"):
        check_teacher("galaxy_bars", 0.5, ["0", "1"], 32)
    teacher = check_teacher("galaxy_bars", 0.5, [0, 1], 64)
    probabilities = teacher_probabilities(teacher, np.zeros((2, 3, 64, 64), np.float32))
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1.0)


def test_train_refuses_a_mismatched_teacher_before_the_run_directory(tiny_labels, tmp_path, capsys):
    from deepscope.cli.main import main

    code = main(["galaxy", "train", "--data", str(tiny_labels), "--out", str(tmp_path / "run"),
                 "--teacher", "galaxy_morphology"])
    err = capsys.readouterr().err
    assert code == 1 and "--teacher" in err and "classes" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
