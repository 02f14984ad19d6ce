"""Dask inference writes the same results as a local run, for every batch command.

The cluster is two worker processes on loopback, one thread each; the local
runs use one torch thread too, so both compute with the same kernels.
"""

import shutil

import pandas as pd
import pytest

from deepscope.cli.main import main
from deepscope.core.cluster import LOOPBACK_ANY_PORT
from deepscope.cryoem.io import read_coordinates
from deepscope.samples import sample_dir

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=LOOPBACK_ANY_PORT) as cluster:
        yield cluster.scheduler_address


def _run(*argv):
    assert main(["-q", *map(str, argv)]) == 0


def test_galaxy_predict_local_equals_two_worker_cluster(tmp_path):
    images = sample_dir("galaxy", "bars", "images")
    _run("galaxy", "predict", images, "--out", tmp_path / "local.csv", "--threads", "1", "--partition-size", "5")
    _run("galaxy", "predict", images, "--out", tmp_path / "dask.csv", "--workers", "2", "--partition-size", "5")
    local = (tmp_path / "local.csv").read_text()
    assert local == (tmp_path / "dask.csv").read_text()
    assert len(local.splitlines()) == 1 + len(list(images.iterdir()))


def test_spectra_predict_on_an_existing_scheduler(scheduler, tmp_path):
    spectra = sample_dir("spectra")
    _run("spectra", "predict", spectra, "--out", tmp_path / "local.csv", "--threads", "1", "--partition-size", "4")
    _run("spectra", "predict", spectra, "--out", tmp_path / "dask.csv", "--scheduler", scheduler,
         "--partition-size", "4")
    assert (tmp_path / "local.csv").read_text() == (tmp_path / "dask.csv").read_text()


def test_cryoem_pick_on_an_existing_scheduler(scheduler, tmp_path):
    micrographs = tmp_path / "mics"
    micrographs.mkdir()
    for path in sample_dir("cryoem").glob("*.jpg"):
        shutil.copy(path, micrographs)
    # The samples are the real micrographs reduced 4x: particles are 27 px across.
    _run("cryoem", "pick", micrographs, "--diameter", "27", "--out", tmp_path / "local", "--threads", "1")
    _run("cryoem", "pick", micrographs, "--diameter", "27", "--out", tmp_path / "dask", "--scheduler", scheduler)
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert local == sorted(p.name for p in (tmp_path / "dask").iterdir()) and len(local) == 2
    for name in local:
        # Compared as tables: starfile stamps each file with the time it was written.
        expected = read_coordinates(tmp_path / "local" / name)
        pd.testing.assert_frame_equal(read_coordinates(tmp_path / "dask" / name), expected)
        assert len(expected) > 0


def test_unreachable_scheduler_and_conflicting_options(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("deepscope.core.cluster.SCHEDULER_TIMEOUT_S", 1)
    images = sample_dir("galaxy", "bars", "images")
    assert main(["galaxy", "predict", str(images), "--out", str(tmp_path / "p.csv"), "--workers", "2",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert "give one of them" in capsys.readouterr().err
    code = main(["-q", "spectra", "predict", str(sample_dir("spectra")), "--out", str(tmp_path / "p.csv"),
                 "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err and "Traceback" not in err
