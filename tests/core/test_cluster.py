"""The Dask cluster a batch command runs on: conflicting options and an unreachable scheduler are one line."""

from deepscope.cli.main import main
from deepscope.samples import sample_dir


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
