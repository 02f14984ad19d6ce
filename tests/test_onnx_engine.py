"""The engine choice: what --engine runs for shipped and other checkpoints, and what it refuses."""

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from deepscope.core import onnx_engine  # noqa: E402
from deepscope.core.onnx_engine import OnnxNetwork, onnx_network, part_network  # noqa: E402
from deepscope.errors import ModelError  # noqa: E402
from deepscope.registry import SUMS_NAME, list_weights, shipped_entry, weights_dir  # noqa: E402

SHIPPED = [w.name for w in list_weights()]


def _entry(name):
    return next(w for w in list_weights() if w.name == name)


@pytest.fixture()
def weights_copy(tmp_path, monkeypatch):
    """A copy of the package's weights folder, which the table and the engine read instead."""
    folder = tmp_path / "weights"
    shutil.copytree(weights_dir(), folder)
    monkeypatch.setattr("deepscope.registry.weights_dir", lambda: folder)
    return folder


@pytest.mark.parametrize("name", SHIPPED)
def test_every_export_of_every_shipped_model_is_verified_and_made_from_its_weights(name):
    entry = _entry(name)
    for engine in entry.exports:
        network = onnx_network(entry, engine=engine)
        assert isinstance(network, OnnxNetwork) and network.engine == engine
        assert network.path == entry.export_path(engine)
        assert network.metadata[onnx_engine.SOURCE_SHA256_KEY] == entry.sha256
    main = onnx_network(entry, engine="onnx")
    for part in entry.part_exports:
        network = part_network(entry, part, main)
        assert network.path == entry.part_export_path(part) and network.engine == "onnx"
        assert network.metadata[onnx_engine.SOURCE_SHA256_KEY] == entry.sha256


@pytest.mark.parametrize("engine", ["auto", "torch", "onnx", "onnx-int8"])
def test_the_bar_length_network_runs_where_the_classifier_runs(engine):
    import torch

    from deepscope.galaxy.predictor import GalaxyPredictor

    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars", engine=engine)
    network = predictor.bar_length.network
    if engine == "torch":
        assert isinstance(network, torch.nn.Module)
    else:  # one ONNX Runtime pool, not torch's beside it
        assert isinstance(network, OnnxNetwork) and network.path.name == "galaxy_bars.bar_length.onnx"
    assert part_network(None, "bar_length", predictor.fast_model) is None  # a checkpoint of one's own


def test_a_damaged_or_missing_part_export_runs_on_torch(weights_copy):
    entry = _entry("galaxy_bars")
    main = onnx_network(entry)
    export = weights_copy / "galaxy_bars.bar_length.onnx"
    assert isinstance(part_network(entry, "bar_length", main), OnnxNetwork)
    export.write_bytes(export.read_bytes()[:-10])
    assert part_network(entry, "bar_length", main) is None
    export.unlink()
    assert part_network(entry, "bar_length", main) is None


def test_a_part_export_of_other_weights_is_refused(weights_copy):
    # The rescaled model's length export listed as galaxy_bars': the network is the same shape, the source is not.
    shutil.copyfile(weights_copy / "galaxy_bars_rescaled.bar_length.onnx", weights_copy / "galaxy_bars.bar_length.onnx")
    sums = json.loads((weights_copy / SUMS_NAME).read_text())
    sums["galaxy_bars.bar_length.onnx"] = sums["galaxy_bars_rescaled.bar_length.onnx"]
    (weights_copy / SUMS_NAME).write_text(json.dumps(sums))
    entry = _entry("galaxy_bars")
    assert isinstance(part_network(_entry("galaxy_bars_rescaled"), "bar_length", onnx_network(entry)), OnnxNetwork)
    assert part_network(entry, "bar_length", onnx_network(entry)) is None


def test_auto_runs_the_export_the_table_names():
    assert onnx_network(_entry("galaxy_bars")).path.name == "galaxy_bars.int8.onnx"
    assert onnx_network(_entry("spectra_mk")).path.name == "spectra_mk.onnx"
    assert onnx_network(_entry("cryoem_empiar10017")).path.name == "cryoem_empiar10017.int8.onnx"
    assert onnx_network(_entry("cryoem_general")).path.name == "cryoem_general.int8.onnx"
    assert onnx_network(_entry("galaxy_bars"), engine="onnx").path.name == "galaxy_bars.onnx"
    assert onnx_network(_entry("galaxy_bars"), engine="torch") is None


def test_checkpoints_of_ones_own_and_gpus_run_torch_under_auto():
    assert onnx_network(None) is None
    assert onnx_network(_entry("galaxy_bars"), device="cuda:0") is None


def test_an_explicit_onnx_engine_says_why_it_cannot_run(tmp_path):
    with pytest.raises(ModelError, match=r"^--engine onnx: .*best\.pt is not a shipped model.*--engine auto or torch$"):
        onnx_network(None, engine="onnx", checkpoint=tmp_path / "best.pt")
    with pytest.raises(ModelError, match="^--engine onnx-int8: ONNX Runtime runs on the CPU only, not --device cuda"):
        onnx_network(_entry("galaxy_bars"), device="cuda", engine="onnx-int8")
    with pytest.raises(ModelError, match=r"^--engine onnx-int8: shipped model spectra_mk has no onnx-int8 export "
                                         r"\(it ships onnx\)$"):
        onnx_network(_entry("spectra_mk"), engine="onnx-int8")
    with pytest.raises(ModelError, match="^--engine tensorrt: not an engine; choose from auto, torch, onnx, onnx-int8"):
        onnx_network(_entry("galaxy_bars"), engine="tensorrt")


@pytest.mark.parametrize("engine", ["auto", "torch", "onnx", "onnx-int8"])
def test_predictors_name_the_engine_that_runs_them(engine):
    from deepscope.galaxy.predictor import GalaxyPredictor

    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars", engine=engine)
    assert predictor.engine == {"auto": "onnx-int8"}.get(engine, engine)
    assert isinstance(predictor.fast_model, OnnxNetwork) == (engine != "torch")


def test_the_shipped_file_by_its_path_runs_like_its_name_and_a_copy_runs_torch(tmp_path):
    from deepscope.galaxy.predictor import GalaxyPredictor
    from deepscope.registry import resolve_model

    shipped = resolve_model("galaxy_bars", "galaxy")
    assert GalaxyPredictor.from_checkpoint(shipped).engine == "onnx-int8"
    copy = tmp_path / "best.pt"
    shutil.copyfile(shipped, copy)
    assert GalaxyPredictor.from_checkpoint(copy).engine == "torch"
    with pytest.raises(ModelError, match=r"best\.pt is not a shipped model"):
        GalaxyPredictor.from_checkpoint(copy, engine="onnx")


def test_a_damaged_export_falls_back_to_the_next_engine(weights_copy):
    entry = _entry("galaxy_bars")
    int8, fp32 = weights_copy / "galaxy_bars.int8.onnx", weights_copy / "galaxy_bars.onnx"
    int8.write_bytes(int8.read_bytes()[:-10])
    assert onnx_network(entry).path == fp32
    fp32.write_bytes(fp32.read_bytes()[:-10])
    assert onnx_network(entry) is None
    with pytest.raises(ModelError, match="galaxy_bars.onnx: shipped model galaxy_bars fails its SHA-256 check"):
        onnx_network(entry, engine="onnx")


def test_an_export_of_other_weights_is_refused(weights_copy):
    # The morphology export, listed (with its own sum) as the bar model's: a stale export after re-shipping.
    shutil.copyfile(weights_copy / "galaxy_morphology.onnx", weights_copy / "galaxy_bars.onnx")
    sums = json.loads((weights_copy / SUMS_NAME).read_text())
    sums["galaxy_bars.onnx"] = sums["galaxy_morphology.onnx"]
    (weights_copy / SUMS_NAME).write_text(json.dumps(sums))
    with pytest.raises(ModelError, match="galaxy_bars.onnx: exported from other weights than galaxy_bars.pt"):
        onnx_network(_entry("galaxy_bars"), engine="onnx")


def test_an_export_onnxruntime_cannot_load_falls_back_to_torch(weights_copy):
    # Passing its (rewritten) SHA-256 check, as an opset too new for an old onnxruntime would.
    export = weights_copy / "galaxy_bars.onnx"
    export.write_bytes(b"not a protobuf")
    sums = json.loads((weights_copy / SUMS_NAME).read_text())
    sums["galaxy_bars.onnx"] = hashlib.sha256(b"not a protobuf").hexdigest()
    (weights_copy / SUMS_NAME).write_text(json.dumps(sums))
    (weights_copy / "galaxy_bars.int8.onnx").unlink()  # else auto runs the int8 export
    assert onnx_network(_entry("galaxy_bars")) is None
    with pytest.raises(ModelError, match=r"galaxy_bars.onnx: onnxruntime [0-9.]+ cannot load it: "):
        onnx_network(_entry("galaxy_bars"), engine="onnx")


def test_a_missing_export_falls_back_to_torch(weights_copy):
    (weights_copy / "spectra_mk.onnx").unlink()
    assert onnx_network(_entry("spectra_mk")) is None
    with pytest.raises(ModelError, match="spectra_mk.onnx: missing from the installed package"):
        onnx_network(_entry("spectra_mk"), engine="onnx")


def test_threads_follow_torch_and_survive_pickling():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        network = onnx_network(shipped_entry("galaxy_bars", "galaxy"))
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
    assert copy.threads == 2 and copy.path == network.path and copy.engine == "onnx-int8"
    assert tuple(network(torch.from_numpy(x)).shape) == (3, 2)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.export's own deprecations, raised from copyreg
def test_export_script_writes_the_shipped_bytes_again(tmp_path, shared_data, monkeypatch):
    """The .onnx files are reproducible from the .pt files (needs the export extra; ~20 s)."""
    pytest.importorskip("onnxscript")
    import importlib.util

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))  # export_onnx imports onnx_tools beside it
    spec = importlib.util.spec_from_file_location("export_onnx", scripts / "export_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for fresh in module.export_all("galaxy_bars", tmp_path):  # the int8 one calibrates on ../shared/data
        assert fresh.read_bytes() == (weights_dir() / fresh.name).read_bytes(), fresh.name


def test_engine_on_the_command_line(tmp_path, capsys, monkeypatch):
    import pandas as pd

    from deepscope.cli.main import main
    from deepscope.samples import sample_dir

    monkeypatch.delenv("DEEPSCOPE_ENGINE", raising=False)
    images = sample_dir("galaxy", "bars", "images")
    p_bar = {}
    for engine in ("auto", "torch", "onnx-int8"):
        out = tmp_path / f"{engine}.csv"
        assert main(["-q", "galaxy", "predict", str(images), "--engine", engine, "--out", str(out)]) == 0
        p_bar[engine] = pd.read_csv(tmp_path / f"{engine}.csv")["p_bar"]
    assert p_bar["auto"].equals(p_bar["onnx-int8"]) and not p_bar["auto"].equals(p_bar["torch"])
    # The deprecated variable still gives the default.
    monkeypatch.setenv("DEEPSCOPE_ENGINE", "torch")
    assert main(["-q", "galaxy", "predict", str(images), "--out", str(tmp_path / "env.csv")]) == 0
    assert pd.read_csv(tmp_path / "env.csv")["p_bar"].equals(p_bar["torch"])
    capsys.readouterr()
    for argv, message in [
        (["galaxy", "predict", str(images), "--engine", "tensorrt", "--out", str(tmp_path / "bad.csv")],
         "--engine tensorrt: not an engine; choose from auto, torch, onnx, onnx-int8"),
        (["spectra", "predict", str(sample_dir("spectra")), "--engine", "onnx-int8",
          "--out", str(tmp_path / "bad.csv")],
         "--engine onnx-int8: shipped model spectra_mk has no onnx-int8 export (it ships onnx)"),
    ]:
        assert main(["-q", *argv]) == 1
        assert capsys.readouterr().err.splitlines() == [f"deepscope: error: {message}"]
    assert not (tmp_path / "bad.csv").exists()
