"""The shipped picker: demo section offline, and F1 on held-out EMPIAR-10017 micrographs."""

import pandas as pd
import pytest

from deepscope.core.report import Report
from deepscope.cryoem.demo import add_demo_section
from deepscope.cryoem.predictor import Picker
from deepscope.core.options import BatchOptions

# Never used in training, validation or tuning of the shipped model (fold A of
# the two-fold evaluation in src/deepscope/cryoem/README.md).
HELD_OUT = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_30_21_0", "Falcon_2012_06_12-16_44_07_0"]


def test_shipped_model_never_saw_the_test_micrographs():
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.registry import resolve_model

    meta = load_checkpoint(resolve_model(None, "cryoem"))["meta"]
    seen = set(meta["train_micrographs"]) | set(meta["val_micrographs"])
    assert not seen & set(HELD_OUT) and len(meta["train_micrographs"]) == 10


def test_demo_section_runs_offline(tmp_path):
    report = Report(tmp_path, "demo")
    add_demo_section(report, report.out_dir)
    page = report.write().read_text()
    assert "picking on held-out micrographs" in page
    assert (tmp_path / "cryoem_enhance.png").is_file()
    assert len(list(tmp_path.glob("cryoem_picks_*.png"))) == 2


def test_shipped_picker_on_held_out_micrographs(cryoem_dir, tmp_path):
    from deepscope.cryoem.evaluate import evaluate_pick_sets, load_pick_set
    from deepscope.cryoem.predictor import pick_files

    root = cryoem_dir / "empiar10017"
    picker = Picker.from_checkpoint()
    rows, failures = pick_files([root / "micrographs" / f"{s}.jpg" for s in HELD_OUT], picker, 108.0, tmp_path,
                                options=BatchOptions(progress=False))
    assert not failures and len(rows) == 3
    truth = {s: t for s, t in load_pick_set(root / "particles", what="truth").items() if s in HELD_OUT}
    result = evaluate_pick_sets(load_pick_set(tmp_path), truth, 108.0)
    summary = result["summary"].set_index("picker")
    assert summary.loc["deepscope", "f1"] >= 0.86  # 0.876 when shipped
    assert isinstance(result["curve"], pd.DataFrame) and result["curve"]["recall"].is_monotonic_decreasing


@pytest.mark.parametrize("diameter", [54.0, 216.0])
def test_other_diameters_rescale_the_micrograph(tmp_path, diameter):
    import numpy as np

    from deepscope.cryoem.preprocess import load_for_picking
    from deepscope.samples import sample_dir

    picker = Picker.from_checkpoint()
    path = next(sample_dir("cryoem").glob("*.jpg"))
    image, scale, shape = load_for_picking(path, diameter, picker.working_diameter)
    assert shape == (1024, 1024)
    assert np.isclose(image.shape[0], 1024 * picker.working_diameter / diameter, atol=1)
