"""A killed batch restarted with the same arguments skips what is done and loses nothing."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from deepscope.cli.main import main
from deepscope.samples import sample_dir
from deepscope.core.options import BatchOptions


def test_killed_galaxy_predict_resumes_without_redoing_parts(tmp_path):
    sources = sorted(sample_dir("galaxy", "bars", "images").glob("*.jpeg"))
    inputs = tmp_path / "cutouts"
    inputs.mkdir()
    n = 3000
    for i in range(n):
        os.symlink(sources[i % len(sources)], inputs / f"g{i:05d}.jpeg")
    out = tmp_path / "preds"
    argv = ["-q", "galaxy", "predict", str(inputs), "--out", str(out), "--partition-size", "100",
            "--threads", "1", "--read-threads", "1"]
    process = subprocess.Popen([sys.executable, "-m", "deepscope", *argv], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 3 <= len(before) < n // 100
    assert main(argv) == 0
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert len(after) == n // 100 and not list(out.glob(".*.tmp"))
    # Parts finished before the kill were not computed again.
    assert all(after[name] == mtime for name, mtime in before.items())

    table = pd.concat(pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet")))
    assert table["file"].tolist() == [str(inputs / f"g{i:05d}.jpeg") for i in range(n)]
    # Every link gets the prediction of the image it points to.
    reference = tmp_path / "reference.csv"
    assert main(["-q", "galaxy", "predict", *map(str, sources), "--out", str(reference), "--threads", "1"]) == 0
    expected = pd.read_csv(reference).set_index("file")
    targets = [str(sources[i % len(sources)]) for i in range(n)]
    assert table["barred"].tolist() == expected.loc[targets, "barred"].tolist()
    assert np.abs(table["p_bar"].to_numpy() - expected.loc[targets, "p_bar"].to_numpy()).max() < 1e-5


def test_interrupted_pick_resumes_with_the_remaining_micrographs(tmp_path, monkeypatch):
    from deepscope.cryoem import predictor
    from deepscope.cryoem.predictor import Picker

    micrographs = tmp_path / "mics"
    micrographs.mkdir()
    first, second = sorted(sample_dir("cryoem").glob("*.jpg"))
    shutil.copy(first, micrographs / "a.jpg")
    shutil.copy(second, micrographs / "b.jpg")
    shutil.copy(first, micrographs / "c.jpg")
    out = tmp_path / "picks"
    picker = Picker.from_checkpoint()
    real_rows = predictor.PickWriter.rows
    calls = []

    def crash_on_second_micrograph(self, items):
        calls.append(items[0][0].name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_rows(self, items)

    monkeypatch.setattr(predictor.PickWriter, "rows", crash_on_second_micrograph)
    with pytest.raises(KeyboardInterrupt):
        predictor.pick_files([micrographs], picker, 27.0, out, options=BatchOptions(progress=False))
    assert sorted(p.name for p in out.glob("*.star")) == ["a.star"]
    done = (out / "a.star").stat().st_mtime_ns

    monkeypatch.setattr(predictor.PickWriter, "rows", real_rows)
    rows, failures = predictor.pick_files([micrographs], picker, 27.0, out, options=BatchOptions(progress=False))
    assert not failures and [row["file"] for row in rows] == [str(micrographs / f"{s}.jpg") for s in "abc"]
    assert (out / "a.star").stat().st_mtime_ns == done
    assert sorted(p.name for p in out.iterdir()) == ["a.star", "b.star", "c.star"]
    # A different threshold is a different job: everything is picked again.
    predictor.pick_files([micrographs], picker, 27.0, out, threshold=0.9, options=BatchOptions(progress=False))
    assert (out / "a.star").stat().st_mtime_ns != done
