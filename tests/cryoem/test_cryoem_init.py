"""cryoem train --init: fine-tuning starts from a shipped or trained picker's weights, or refuses in one line."""

import pytest
import torch

from deepscope.cli.main import main
from deepscope.core.checkpoint import load_checkpoint

from cli_errors import one_error_line

# tiny runs: a couple of patches, so only where the weights start matters
FEW = ["--epochs", "1", "--patches", "8", "--batch-size", "8", "--val", "m2", "--enhance", "off"]


def parameters(run):
    """The learnt weights of a run's best checkpoint (BatchNorm's running statistics follow the data, not the lr)."""
    state = load_checkpoint(run / "best.pt")["state_dict"]
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def train(root, out, *extra):
    return main(["-q", "cryoem", "train", "--micrographs", str(root / "mics"), "--coords", str(root / "coords"),
                 "--diameter", "8", "--out", str(out), *FEW, *extra])


def test_init_starts_from_the_given_weights_and_counts_what_they_saw(tiny_run, tmp_path):
    root, _ = tiny_run
    start = root / "run"
    # without learning, the fine-tuned weights are the starting ones exactly
    assert train(root, tmp_path / "tuned", "--init", str(start), "--lr", "0") == 0
    tuned, initial = parameters(tmp_path / "tuned"), parameters(start)
    assert tuned.keys() == initial.keys()
    for key in initial:
        torch.testing.assert_close(tuned[key], initial[key], rtol=0, atol=0, msg=key)
    # the network, its shape and working scale came from the start, not the defaults (width 16, 13.5 px)
    record = load_checkpoint(tmp_path / "tuned" / "best.pt")
    assert record["model"] == "cryoem_unet" and record["model_kwargs"] == {"width": 4, "depth": 2}
    assert record["meta"]["working_diameter"] == 8.0 and record["meta"]["init"] == str(start)
    assert set(record["meta"]["init_micrographs"]) == {"m0", "m1", "m2"}

    from deepscope.cryoem.predictor import Picker

    assert Picker.from_checkpoint(tmp_path / "tuned").seen_micrographs >= {"m0", "m1", "m2"}
    # and from scratch they are not
    assert train(root, tmp_path / "fresh", "--width", "4", "--depth", "2", "--working-diameter", "8",
                 "--lr", "0") == 0
    fresh = parameters(tmp_path / "fresh")
    assert any(not torch.equal(fresh[k], initial[k]) for k in initial)


def test_shipped_joint_picker_fine_tunes_without_region_labels(tiny_run, tmp_path):
    root, _ = tiny_run
    assert train(root, tmp_path / "tuned", "--init", "cryoem_empiar10017", "--patches", "4", "--batch-size",
                 "4") == 0
    record = load_checkpoint(tmp_path / "tuned" / "best.pt")
    assert record["model"] == "cryoem_unet_joint" and record["meta"]["working_diameter"] == 13.5
    assert "Falcon_2012_06_12-14_57_34_0" in record["meta"]["init_micrographs"]


@pytest.mark.parametrize("extra, match", [
    (["--width", "8"], "its network is cryoem_unet (width 4, depth 2) at working diameter 8, "
                       "this run's cryoem_unet (width 8, depth 2) at 8"),
    (["--target", "joint", "--labels", "."], "its network is cryoem_unet (width 4, depth 2)"),
    (["--working-diameter", "12"], "at working diameter 8, this run's cryoem_unet (width 4, depth 2) at 12"),
])
def test_a_mismatched_network_is_refused_in_one_line(tiny_run, tmp_path, capsys, extra, match):
    root, _ = tiny_run
    assert train(root, tmp_path / "run", "--init", str(root / "run"), *extra) == 1
    line = one_error_line(capsys)
    assert f"--init {root / 'run'}: " in line and match in line
    assert not (tmp_path / "run").exists()


def test_init_naming_no_picker_is_one_line(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    assert train(root, tmp_path / "run", "--init", "spectra_mk") == 1
    assert "spectra" in one_error_line(capsys)
    assert train(root, tmp_path / "run", "--init", str(tmp_path / "nowhere")) == 1
    assert "nowhere" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()
