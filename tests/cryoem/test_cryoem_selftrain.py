"""cryoem selftrain: pick, classify, keep the particle classes, fine-tune from --init, pick again; bad input."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.cli.main import main
from deepscope.core.checkpoint import load_checkpoint
from deepscope.cryoem.io import read_coordinates

from cli_errors import one_error_line

# one round of a couple of patches: where the weights start and what is kept matter, not what is learnt
FEW = ["--rounds", "1", "--epochs", "1", "--patches", "8", "--batch-size", "8", "--enhance", "off", "--threads", "1"]


def selftrain(root, out, *extra):
    return main(["-q", "cryoem", "selftrain", str(root / "mics"), "--diameter", "8", "--out", str(out),
                 "--init", str(root / "run"), *FEW, *extra])


def parameters(checkpoint):
    """The learnt weights (BatchNorm's running statistics follow the data, not the lr)."""
    state = load_checkpoint(checkpoint)["state_dict"]
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def test_selftrain_writes_its_rounds_and_a_picker_that_pick_uses(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    out = tmp_path / "self"
    assert selftrain(root, out) == 0
    assert "final picker: round 1's" in capsys.readouterr().out
    for stem in ("m0", "m1", "m2"):
        assert (out / "round_0" / "picks" / f"{stem}.star").is_file()
        assert (out / "round_1" / "picks" / f"{stem}.star").is_file()
    for r in (0, 1):
        assert (out / f"round_{r}" / "classes" / "class_averages.png").is_file()
    rounds = pd.read_csv(out / "rounds.csv")
    assert rounds["round"].tolist() == [0, 1] and rounds["final"].tolist() == [0, 1]
    assert (rounds["kept"] <= rounds["picks"]).all() and rounds["picks"].iloc[0] > 0
    assert "round_1/classes/class_averages.png" in (out / "report.html").read_text()
    # the final picker is round 1's, and cryoem pick takes the run directory
    assert load_checkpoint(out / "best.pt")["meta"] == load_checkpoint(out / "round_1" / "model" / "best.pt")["meta"]
    assert main(["-q", "cryoem", "pick", str(root / "mics" / "m0.mrc"), "--diameter", "8", "--model", str(out),
                 "--out", str(tmp_path / "picks"), "--enhance", "off"]) == 0
    assert (tmp_path / "picks" / "m0.star").is_file()

    # the same command again returns the finished run untouched; other settings are refused in one line
    stamp = (out / "best.pt").stat().st_mtime_ns
    assert selftrain(root, out) == 0
    assert (out / "best.pt").stat().st_mtime_ns == stamp
    capsys.readouterr()
    assert selftrain(root, out, "--seed", "3") == 1
    assert "holds a run with other settings (seed" in one_error_line(capsys)


def test_round_one_fine_tunes_from_the_init_weights(tiny_run, tmp_path):
    root, _ = tiny_run
    # without learning, the fine-tuned weights are the starting ones exactly
    assert selftrain(root, tmp_path / "self", "--lr", "0") == 0
    tuned, initial = parameters(tmp_path / "self" / "best.pt"), parameters(root / "run" / "best.pt")
    assert tuned.keys() == initial.keys()
    for key in initial:
        torch.testing.assert_close(tuned[key], initial[key], rtol=0, atol=0, msg=key)
    assert load_checkpoint(tmp_path / "self" / "best.pt")["meta"]["init"] == str(root / "run")


def test_init_blob_picks_round_zero_with_a_blob_detector_and_tunes_the_general_weights(tiny_run, tmp_path):
    from deepscope.cryoem.evaluate import match_picks

    root, _ = tiny_run
    out = tmp_path / "self"
    assert selftrain(root, out, "--init", "blob", "--patches", "4", "--batch-size", "4") == 0
    for stem in ("m0", "m1", "m2"):
        # every toy particle is among the blob detector's candidates, centred within half a radius
        found = match_picks(read_coordinates(out / "round_0" / "picks" / f"{stem}.star"),
                            read_coordinates(root / "coords" / f"{stem}.star"), 2.0)
        assert found["fn"] == 0, stem
    record = load_checkpoint(out / "best.pt")
    assert record["model"] == "cryoem_unet_joint" and record["meta"]["init"] == "cryoem_general"


def test_kept_labels_are_the_picks_of_particle_classes(tiny_run, tmp_path, monkeypatch):
    """Planted picks on empty ice fall in a junk class, and only the particle classes' picks become labels."""
    from deepscope.cryoem import selftrain as module
    from deepscope.cryoem.coordinates import write_coordinates

    root, _ = tiny_run
    picks_dir, round_dir = tmp_path / "picks", tmp_path / "round"
    picks_dir.mkdir()
    round_dir.mkdir()
    rng = np.random.default_rng(0)
    planted = {}
    for stem in ("m0", "m1", "m2"):
        truth = read_coordinates(root / "coords" / f"{stem}.star")[["x", "y"]]
        # empty spots: more than 2 diameters from every particle, inside the micrograph
        spots = rng.uniform(12, 116, size=(2000, 2))
        far = np.min(np.hypot(*(spots[:, None, :] - truth.to_numpy()[None]).transpose(2, 0, 1)), axis=1) > 16
        planted[stem] = pd.DataFrame(spots[far][:4], columns=["x", "y"])
        write_coordinates(pd.concat([truth, planted[stem]], ignore_index=True), picks_dir / f"{stem}.star")
    options = module.SelftrainOptions(n_classes=2, threads=1)
    counts = module._classify_and_keep(picks_dir, sorted((root / "mics").iterdir()), 8.0, round_dir, options,
                                       progress=False)
    particles = pd.read_csv(round_dir / "classes" / "particles.csv")
    assert counts["kept"] == int((particles["junk"] == 0).sum()) and counts["picks"] == len(particles)
    planted_junk = 0
    for stem in ("m0", "m1", "m2"):
        labels = read_coordinates(round_dir / "labels" / f"{stem}.star")
        mine = particles[particles["micrograph"] == stem]
        expected = mine[mine["junk"] == 0][["x", "y"]].to_numpy()
        np.testing.assert_allclose(np.sort(labels[["x", "y"]].to_numpy(), axis=0), np.sort(expected, axis=0),
                                   atol=1e-3)
        for x, y in planted[stem].to_numpy():
            row = mine[np.hypot(mine["x"] - x, mine["y"] - y) < 1e-3]
            planted_junk += int(row["junk"].iloc[0])
            if row["junk"].iloc[0]:
                assert not (np.hypot(labels["x"] - x, labels["y"] - y) < 1e-3).any()
    # the classification does call the planted picks junk here, so the exclusion above was exercised
    assert planted_junk >= 8


def test_stopping_rule_stops_when_the_kept_set_stops_growing():
    from deepscope.cryoem.selftrain import should_stop

    grew = [{"kept": 100, "agreement": np.nan}, {"kept": 150, "agreement": 0.7}]
    assert not should_stop(grew, 0.05, 0.95)
    assert should_stop(grew + [{"kept": 152, "agreement": 0.8}], 0.05, 0.95)
    assert should_stop(grew + [{"kept": 300, "agreement": 0.97}], 0.05, 0.95)


@pytest.mark.parametrize("extra, match", [
    (["--diameter", "-3"], "--diameter must be positive (pixels) or auto, got -3"),
    (["--diameter", "big"], "--diameter must be positive (pixels) or auto, got 'big'"),
    (["--threshold", "1"], "picked no particles in any of the 3 micrographs at --diameter 8"),
    (["--rounds", "0"], "--rounds must be at least 1, got 0"),
])
def test_bad_input_is_one_line_and_leaves_nothing(tiny_run, tmp_path, capsys, extra, match):
    root, _ = tiny_run
    assert selftrain(root, tmp_path / "self", *extra) == 1
    assert match in one_error_line(capsys)
    assert not (tmp_path / "self").exists()


def test_unreadable_or_single_micrograph_is_one_line(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    mics = tmp_path / "mics"
    mics.mkdir()
    for stem in ("m0", "m1"):
        (mics / f"{stem}.mrc").write_bytes((root / "mics" / f"{stem}.mrc").read_bytes())
    (mics / "broken.mrc").write_bytes(b"not a micrograph")
    args = ["-q", "cryoem", "selftrain", "--diameter", "8", "--init", str(root / "run"), *FEW]
    assert main([*args, str(mics), "--out", str(tmp_path / "self")]) == 1
    assert "broken.mrc" in one_error_line(capsys)
    assert main([*args, str(mics / "m0.mrc"), "--out", str(tmp_path / "self")]) == 1
    assert "needs at least 2 micrographs" in one_error_line(capsys)
    assert not (tmp_path / "self").exists()


def test_two_micrographs_with_one_stem_are_refused_before_anything_is_written(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m0.mrc").write_bytes((root / "mics" / "m0.mrc").read_bytes())
    args = ["-q", "cryoem", "selftrain", "--diameter", "8", "--init", str(root / "run"), *FEW]
    assert main([*args, str(tmp_path / "a" / "m0.mrc"), str(tmp_path / "b" / "m0.mrc"),
                 "--out", str(tmp_path / "self")]) == 1
    assert f"{tmp_path / 'b' / 'm0.mrc'}: same name as {tmp_path / 'a' / 'm0.mrc'}" in one_error_line(capsys)
    assert not (tmp_path / "self").exists()
