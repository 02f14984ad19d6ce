"""The shipped pickers: demo section offline, and F1 on held-out EMPIAR-10017 micrographs."""

import pandas as pd
import pytest

from deepscope.core.report import Report
from deepscope.cryoem.demo import add_demo_section
from deepscope.cryoem.predictor import Picker
from deepscope.core.batch.options import BatchOptions

# Never used in training, validation or tuning of either shipped picker (docs/cryoem.md).
HELD_OUT = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_30_21_0", "Falcon_2012_06_12-16_44_07_0"]
# the 80S ribosome set: cryoem_general adapted to the first six without their labels; the last four it never read
RIBOSOME_ADAPTED = ["061_10028", "062_10028", "063_10028", "064_10028", "065_10028", "311_10028"]
RIBOSOME_TEST = ["312_10028", "313_10028", "314_10028", "315_10028"]


def test_the_default_picker_is_the_general_one_and_neither_saw_the_test_micrographs():
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.registry import resolve_model

    assert resolve_model(None, "cryoem") == resolve_model("cryoem_general", "cryoem")
    specialist = load_checkpoint(resolve_model("cryoem_empiar10017", "cryoem"))["meta"]
    assert len(specialist["train_micrographs"]) == 10
    for name in ("cryoem_empiar10017", "cryoem_general"):
        assert not Picker.from_checkpoint(name).seen_micrographs & set(HELD_OUT), name


def test_demo_section_runs_offline(tmp_path):
    report = Report(tmp_path, "demo")
    add_demo_section(report, report.out_dir)
    page = report.write().read_text()
    assert "picking on held-out micrographs" in page
    assert (tmp_path / "cryoem_enhance.png").is_file()
    assert len(list(tmp_path.glob("cryoem_picks_*.png"))) == 2
    assert "cryoem_class_averages.png" in page and (tmp_path / "cryoem_class_averages.png").is_file()
    junk = pd.read_csv(tmp_path / "cryoem_false_picks.csv").set_index("pick set")["junk fraction"]
    # random boxes land mostly in junk classes, the picker's picks and the true centres rarely
    assert junk["random"] >= 0.6 and junk["deepscope"] <= 0.15 and junk["truth"] <= 0.15


# F1 and median centre error (px) measured when shipped (docs/cryoem.md), int8 on the CPU: the specialist
# 0.885 / 4.31, the general default 0.875 / 4.49 (its edge margin, 0.5 d, keeps picks CryoPPP's labels
# never reach; "A general picker")
@pytest.mark.parametrize("name, least_f1, most_centre_px", [("cryoem_empiar10017", 0.88, 4.5),
                                                          (None, 0.87, 4.55)])
def test_shipped_picker_on_held_out_micrographs(cryoem_dir, tmp_path, name, least_f1, most_centre_px):
    from deepscope.cryoem.evaluate import evaluate_pick_sets
    from deepscope.cryoem.pick_sets import load_pick_set
    from deepscope.cryoem.predictor import pick_files

    root = cryoem_dir / "empiar10017"
    picker = Picker.from_checkpoint(name)
    rows, failures = pick_files([root / "micrographs" / f"{s}.jpg" for s in HELD_OUT], picker, 108.0, tmp_path,
                                options=BatchOptions(progress=False))
    assert not failures and len(rows) == 3
    truth = {s: t for s, t in load_pick_set(root / "particles", what="truth").items() if s in HELD_OUT}
    result = evaluate_pick_sets(load_pick_set(tmp_path), truth, 108.0)
    summary = result["summary"].set_index("picker")
    assert summary.loc["deepscope", "f1"] >= least_f1
    # one view, centroid refinement and the measured offset (the specialist on the 8 px grid: 7.24)
    assert summary.loc["deepscope", "median_centre_error_px"] <= most_centre_px
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


def _same_pixels_in_three_containers(source, out):
    """The sample's pixels as lossless PNG, float32 MRC and 16-bit TIFF (scaled to the detector's range)."""
    import numpy as np
    from PIL import Image

    from deepscope.cryoem.io import write_mrc

    pixels = np.asarray(Image.open(source).convert("L"))
    Image.fromarray(pixels).save(out / "m.png")
    write_mrc(pixels.astype(np.float32), out / "m.mrc")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(out / "m.tif")
    return [out / "m.png", out / "m.mrc", out / "m.tif"]


def test_same_pixels_give_the_same_picks_in_any_container(tmp_path):
    import numpy as np

    from deepscope.cryoem.preprocess import load_for_picking
    from deepscope.cryoem.recentre import load_for_recentring
    from deepscope.samples import sample_dir

    picker = Picker.from_checkpoint()
    source = sample_dir("cryoem") / f"{HELD_OUT[0]}.jpg"
    picks, recentred = [], []
    for path in _same_pixels_in_three_containers(source, tmp_path):
        image, scale, _ = load_for_picking(path, 27.0, picker.working_diameter)  # default enhance
        picks.append(picker.pick(image, scale)[["x", "y"]].to_numpy())
        # --recentre reads the micrograph a second time, from the same container
        fine = load_for_recentring(path, 27.0)
        recentred.append(picker.pick(image, scale, micrograph=fine)[["x", "y"]].to_numpy())
    assert len(picks[0]) > 100
    for other, other_recentred in zip(picks[1:], recentred[1:]):
        assert len(other) == len(picks[0]) and len(other_recentred) == len(recentred[0])
        assert np.abs(other - picks[0]).max() <= 1.0
        assert np.abs(other_recentred - recentred[0]).max() <= 0.01
    # refined centres are off the binning grid (working pixel i is x = 2 i + 0.5 at this scale)
    off_grid = np.abs((picks[0] - 0.5 + 1) % 2 - 1) > 0.05
    assert off_grid.mean() > 0.5


def test_raw_like_input_is_picked_like_the_jpeg(cryoem_dir, tmp_path):
    """The issue's raw-like input: the micrograph standardised, plus white noise of std 3, as float32 MRC."""
    import numpy as np
    from PIL import Image

    from deepscope.cryoem.evaluate import match_picks
    from deepscope.cryoem.pick_sets import load_pick_set
    from deepscope.cryoem.io import write_mrc
    from deepscope.cryoem.preprocess import load_for_picking

    root = cryoem_dir / "empiar10017"
    stem = HELD_OUT[0]
    pixels = np.asarray(Image.open(root / "micrographs" / f"{stem}.jpg").convert("L"), dtype=np.float32)
    standard = (pixels - pixels.mean()) / pixels.std()
    noisy = standard + np.random.default_rng(0).normal(0, 3.0, standard.shape).astype(np.float32)
    write_mrc(noisy, tmp_path / f"{stem}.mrc")
    picker = Picker.from_checkpoint()
    image, scale, _ = load_for_picking(tmp_path / f"{stem}.mrc", 108.0, picker.working_diameter)
    truth = load_pick_set(root / "particles", what="truth")[stem]
    # 0.873 measured (the model before: 0.888); 0.625 with --enhance off, 0.426 with the old MRC default
    assert match_picks(picker.pick(image, scale), truth, 54.0)["f1"] >= 0.84


def test_the_general_picker_never_saw_the_test_ribosomes_and_finds_more_of_them(cryoem_dir):
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.cryoem.evaluate import match_picks
    from deepscope.cryoem.io import read_coordinates
    from deepscope.cryoem.preprocess import load_for_picking
    from deepscope.registry import resolve_model

    ribosome = cryoem_dir / "ribosome80s_empiar10028"
    meta = load_checkpoint(resolve_model("cryoem_general", "cryoem"))["meta"]
    seen = set(meta["train_micrographs"]) | set(meta["val_micrographs"]) | set(meta["init_micrographs"])
    # Six ribosome micrographs were read, labelled only by selftrain's kept picks; the four scored here never.
    assert {stem for stem in seen if "10028" in stem} <= set(RIBOSOME_ADAPTED) and not seen & set(HELD_OUT)
    recall = {}
    for name in ("cryoem_empiar10017", "cryoem_general"):
        picker = Picker.from_checkpoint(name)
        found = total = 0
        for stem in RIBOSOME_TEST:
            truth = read_coordinates(ribosome / "particles" / f"{stem}.csv")
            image, scale, _ = load_for_picking(ribosome / "micrographs" / f"{stem}.png", 56.0,
                                               picker.working_diameter)
            found += match_picks(picker.pick(image, scale), truth, 28.0)["tp"]
            total += len(truth)
        recall[name] = found / total
    # 0.669 and 0.983 when shipped (docs/cryoem.md, "A general picker")
    assert recall["cryoem_empiar10017"] < 0.75 and recall["cryoem_general"] >= 0.93
