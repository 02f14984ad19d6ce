"""deepscope doctor: every section, damaged shipped models, reachable and unreachable Dask schedulers."""

import json
import shutil

import pytest

from deepscope.cli.main import main
from deepscope.core import doctor
from deepscope.core.cluster import LOOPBACK_ANY_PORT
from deepscope.registry import weights_dir

SECTIONS = ["versions:", "threads:", "accelerators:", "torch.distributed:", "dask:", "shipped models:"]


def _run(capsys, *argv):
    code = main(["doctor", *argv])
    return code, capsys.readouterr()


@pytest.fixture()
def weights_copy(tmp_path, monkeypatch):
    """A copy of the shipped weights that the doctor checks instead of the package's."""
    folder = tmp_path / "weights"
    shutil.copytree(weights_dir(), folder)
    monkeypatch.setattr(doctor, "weights_dir", lambda: folder)
    return folder


def test_table_has_every_section_and_passes(capsys):
    code, out = _run(capsys)
    assert code == 0, out.err
    lines = out.out.splitlines()
    assert [line for line in lines if line in SECTIONS] == SECTIONS
    for item in ("torch ", "pyarrow", "torch intra-op threads", "CPU affinity", "CUDA available",
                 "MPS available", "gloo (CPU)", "nccl (CUDA)", "importable"):
        assert any(line.strip().startswith(item) for line in lines), item
    models = doctor.shipped_models()
    assert models and all(info["status"] == "ok" for info in models.values())
    assert any("galaxy_bars.pt" in line and " ok " in line and "galaxy_bars (barnet)" in line for line in lines)
    assert any("galaxy_bars.int8.onnx" in line and " ok " in line and "galaxy_bars (ONNX export, int8)" in line
               for line in lines)
    assert lines[-1] == "all checks passed"
    assert out.err == ""


def test_json_has_the_same_content(capsys):
    code, out = _run(capsys, "--json")
    assert code == 0
    report = json.loads(out.out)
    assert list(report["sections"]) == [s.rstrip(":") for s in SECTIONS]
    assert report["problems"] == []
    assert report["sections"]["versions"]["torch"].startswith("2.")


def test_tampered_model_is_a_mismatch(weights_copy, capsys):
    path = weights_copy / "galaxy_bars.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    (weights_copy / "spectra_mk.pt").unlink()
    (weights_copy / "galaxy_morphology.int8.onnx").unlink()  # an export the shipped table lists
    (weights_copy / "stray.pt").write_bytes(b"x")
    code, out = _run(capsys)
    assert code == 1
    assert any("galaxy_bars.pt" in line and "MISMATCH" in line for line in out.out.splitlines())
    assert any("spectra_mk.pt" in line and "missing" in line for line in out.out.splitlines())
    assert any("stray.pt" in line and "unlisted" in line and "unregistered" in line for line in out.out.splitlines())
    errors = out.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("deepscope: error: shipped model galaxy_bars.pt: MISMATCH")
    assert "galaxy_morphology.int8.onnx: missing" in errors[0] and "spectra_mk.pt: missing" in errors[0]


def test_unreachable_scheduler_fails_in_one_line(capsys):
    code, out = _run(capsys, "--scheduler", "tcp://127.0.0.1:1", "--timeout", "1")
    assert code == 1
    assert "unreachable: " in out.out
    errors = out.err.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("deepscope: error: Dask scheduler tcp://127.0.0.1:1 unreachable: ")


def test_bad_timeout_is_refused(capsys):
    code, out = _run(capsys, "--timeout", "0")
    assert code == 1 and "--timeout must be positive" in out.err


@pytest.mark.distributed
def test_reachable_scheduler_reports_its_workers(capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=LOOPBACK_ANY_PORT) as cluster:
        code, out = _run(capsys, "--json", "--scheduler", cluster.scheduler_address, "--timeout", "5")
    assert code == 0, out.err
    dask = json.loads(out.out)["sections"]["dask"]
    assert dask[f"scheduler {cluster.scheduler_address}"] == "reachable"
    assert dask["workers"] == 1 and dask["threads"] == 1


@pytest.mark.distributed
def test_local_cluster_check(capsys):
    code, out = _run(capsys, "--json", "--check-dask-local")
    assert code == 0, out.err
    assert json.loads(out.out)["sections"]["dask"]["LocalCluster"] == "ok (1 worker)"
