"""The ONNX Runtime engine: which checkpoints get it, and what it refuses."""

import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from deepscope.core import onnx_engine  # noqa: E402
from deepscope.core.checkpoint import SUMS_NAME  # noqa: E402
from deepscope.core.onnx_engine import ENGINE_VARIABLE, OnnxNetwork, onnx_network, shipped_export  # noqa: E402
from deepscope.errors import ModelError  # noqa: E402
from deepscope.registry import list_weights, resolve_model, weights_dir  # noqa: E402

SHIPPED = [w.name for w in list_weights()]


@pytest.fixture(autouse=True)
def auto_engine(monkeypatch):
    """Every test starts from the default choice, whatever the shell running pytest set."""
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)


@pytest.fixture()
def weights_copy(tmp_path, monkeypatch):
    """A copy of the package's weights folder, which the registry and the engine read instead."""
    folder = tmp_path / "weights"
    shutil.copytree(weights_dir(), folder)
    monkeypatch.setattr("deepscope.registry.weights_dir", lambda: folder)
    return folder


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_has_a_verified_export_of_its_own_weights(name, monkeypatch):
    from deepscope.core.checkpoint import sha256

    entry = next(w for w in list_weights() if w.name == name)
    checkpoint = resolve_model(name, entry.domain)
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    network = onnx_network(checkpoint)
    assert isinstance(network, OnnxNetwork)
    assert network.path == checkpoint.with_suffix(".onnx")
    assert network.metadata[onnx_engine.SOURCE_SHA256_KEY] == sha256(checkpoint)
    if entry.cpu_engine == "onnx-int8":
        monkeypatch.setenv(ENGINE_VARIABLE, "onnx-int8")
        assert onnx_network(checkpoint).metadata[onnx_engine.SOURCE_SHA256_KEY] == sha256(checkpoint)


def test_auto_runs_the_export_the_registry_names_and_onnx_the_fp32_one(monkeypatch):
    bars, spectra = resolve_model("galaxy_bars", "galaxy"), resolve_model("spectra_mk", "spectra")
    assert onnx_network(bars).path.name == "galaxy_bars.int8.onnx"
    assert onnx_network(spectra).path.name == "spectra_mk.onnx"
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    assert onnx_network(bars).path.name == "galaxy_bars.onnx"
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx-int8")
    assert onnx_network(bars).path.name == "galaxy_bars.int8.onnx"
    assert onnx_network(spectra).path.name == "spectra_mk.onnx"


def test_a_byte_identical_copy_of_shipped_weights_gets_the_export(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copyfile(resolve_model("galaxy_bars", "galaxy"), copy)
    assert shipped_export(copy) == weights_dir() / "galaxy_bars.onnx"


def test_user_checkpoints_run_directories_and_gpus_stay_on_torch(tmp_path):
    changed = tmp_path / "best.pt"
    changed.write_bytes(resolve_model("galaxy_bars", "galaxy").read_bytes() + b"\0")
    assert onnx_network(changed) is None
    assert onnx_network(tmp_path) is None  # a run directory
    assert onnx_network(None) is None  # a network built in memory
    assert onnx_network(resolve_model("galaxy_bars", "galaxy"), device="cuda:0") is None


def test_engine_torch_turns_it_off_and_onnx_says_why_it_cannot(tmp_path, monkeypatch):
    shipped = resolve_model("galaxy_bars", "galaxy")
    monkeypatch.setenv(ENGINE_VARIABLE, "torch")
    assert onnx_network(shipped) is None
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    assert isinstance(onnx_network(shipped), OnnxNetwork)
    user = tmp_path / "best.pt"
    user.write_bytes(b"not shipped")
    with pytest.raises(ModelError, match=r"^DEEPSCOPE_ENGINE=onnx: .*best\.pt: not a shipped checkpoint"):
        onnx_network(user)
    with pytest.raises(ModelError, match="ONNX Runtime runs the CPU only"):
        onnx_network(shipped, device="cuda")
    monkeypatch.setenv(ENGINE_VARIABLE, "tensorrt")
    with pytest.raises(ModelError, match="DEEPSCOPE_ENGINE=tensorrt: not an engine; choose from auto, torch, onnx"):
        onnx_network(shipped)


def test_a_damaged_export_falls_back_to_the_next_engine(weights_copy, monkeypatch):
    checkpoint = weights_copy / "galaxy_bars.pt"
    int8, fp32 = weights_copy / "galaxy_bars.int8.onnx", weights_copy / "galaxy_bars.onnx"
    int8.write_bytes(int8.read_bytes()[:-10])
    assert onnx_network(checkpoint).path == fp32
    fp32.write_bytes(fp32.read_bytes()[:-10])
    assert onnx_network(checkpoint) is None
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    with pytest.raises(ModelError, match="galaxy_bars.onnx: fails its SHA-256 check"):
        onnx_network(checkpoint)


def test_an_export_of_other_weights_is_refused(weights_copy, monkeypatch):
    # The morphology export, listed (with its own sum) as the bar model's: a stale export after re-shipping.
    shutil.copyfile(weights_copy / "galaxy_morphology.onnx", weights_copy / "galaxy_bars.onnx")
    sums = json.loads((weights_copy / SUMS_NAME).read_text())
    sums["galaxy_bars.onnx"] = sums["galaxy_morphology.onnx"]
    (weights_copy / SUMS_NAME).write_text(json.dumps(sums))
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    with pytest.raises(ModelError, match="galaxy_bars.onnx: exported from other weights than galaxy_bars.pt"):
        onnx_network(weights_copy / "galaxy_bars.pt")


def test_an_export_onnxruntime_cannot_load_falls_back_to_torch(weights_copy, monkeypatch):
    # Passing its (rewritten) SHA-256 check, as an opset too new for an old onnxruntime would.
    export = weights_copy / "galaxy_bars.onnx"
    export.write_bytes(b"not a protobuf")
    sums = json.loads((weights_copy / SUMS_NAME).read_text())
    sums["galaxy_bars.onnx"] = hashlib.sha256(b"not a protobuf").hexdigest()
    (weights_copy / SUMS_NAME).write_text(json.dumps(sums))
    (weights_copy / "galaxy_bars.int8.onnx").unlink()  # else auto runs the int8 export
    assert onnx_network(weights_copy / "galaxy_bars.pt") is None
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    with pytest.raises(ModelError, match=r"galaxy_bars.onnx: onnxruntime [0-9.]+ cannot load it: "):
        onnx_network(weights_copy / "galaxy_bars.pt")


def test_a_missing_export_falls_back_to_torch(weights_copy, monkeypatch):
    (weights_copy / "spectra_mk.onnx").unlink()
    assert onnx_network(weights_copy / "spectra_mk.pt") is None
    monkeypatch.setenv(ENGINE_VARIABLE, "onnx")
    with pytest.raises(ModelError, match="shipped model spectra_mk has no ONNX export"):
        onnx_network(weights_copy / "spectra_mk.pt")


def test_threads_follow_torch_and_survive_pickling():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        network = onnx_network(resolve_model("galaxy_bars", "galaxy"))
    finally:
        torch.set_num_threads(before)
    assert network.threads == 1
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    # Dask scatters predictors: the copy opens its own session on the same file, with the
    # threads torch has when it first runs (what a worker set), not the client's.
    copy = pickle.loads(pickle.dumps(network))
    torch.set_num_threads(2)
    try:
        np.testing.assert_array_equal(copy.run(x), network.run(x))
    finally:
        torch.set_num_threads(before)
    assert copy.threads == 2 and copy.path == network.path
    assert tuple(network(torch.from_numpy(x)).shape) == (3, 2)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.export's own deprecations, raised from copyreg
def test_export_script_writes_the_shipped_bytes_again(tmp_path, shared_data):
    """The .onnx files are reproducible from the .pt files (needs the export extra; ~20 s)."""
    pytest.importorskip("onnxscript")
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "export_onnx.py"
    spec = importlib.util.spec_from_file_location("export_onnx", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for fresh in module.export_all("galaxy_bars", tmp_path):  # the int8 one calibrates on ../shared/data
        assert fresh.read_bytes() == (weights_dir() / fresh.name).read_bytes(), fresh.name
