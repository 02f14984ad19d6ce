"""The batch runner: resumable after a kill, never mixing answers of two jobs, the same rows on Dask.

Kills, interrupts and clusters are real (subprocesses, SIGKILL, local Dask
clusters); each is bounded by a timeout.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
import pytest
import starfile
from batch_helpers import (SOURCES, TIMEOUT, Upper, cutouts, env, error_lines, expected, parts, predict_argv,
                           reference, run, texts)  # noqa: F401 (reference is a fixture)

from deepscope.cli.main import main
from deepscope.core.batch import runner
from deepscope.core.batch.options import BatchOptions
from deepscope.core.batch.sources import InputStream
from deepscope.core.cluster import LOOPBACK_ANY_PORT
from deepscope.core.lock import LOCK_NAME
from deepscope.cryoem.io import read_coordinates
from deepscope.samples import sample_dir


def _wait_for_parts(out, count, process):
    deadline = time.monotonic() + TIMEOUT
    while len(list(out.glob("part-*.parquet"))) < count and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be stopped"


# Resuming ------------------------------------------------------------------------------------


def test_killed_galaxy_predict_resumes_without_redoing_parts(tmp_path):
    n = 3000
    inputs = cutouts(tmp_path / "cutouts", n, link=True)
    out = tmp_path / "preds"
    argv = predict_argv([inputs], out, "--partition-size", "100")
    process = subprocess.Popen([sys.executable, "-m", "deepscope", *argv], stderr=subprocess.DEVNULL, env=env())
    _wait_for_parts(out, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()

    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 3 <= len(before) < n // 100
    assert main(argv) == 0
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert len(after) == n // 100 and not list(out.glob(".*.tmp"))
    # Parts finished before the kill were not computed again.
    assert all(after[name] == mtime for name, mtime in before.items())

    table = parts(out)
    assert table["file"].tolist() == [str(inputs / f"g{i:04d}.jpeg") for i in range(n)]
    # Every link gets the prediction of the image it points to.
    clean = tmp_path / "clean.csv"
    assert main(predict_argv(SOURCES, clean)) == 0
    answers = pd.read_csv(clean).set_index("file")
    targets = [str(SOURCES[i % len(SOURCES)]) for i in range(n)]
    assert table["barred"].tolist() == answers.loc[targets, "barred"].tolist()
    assert np.abs(table["p_bar"].to_numpy() - answers.loc[targets, "p_bar"].to_numpy()).max() < 1e-5


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
    # The pick index (coordinate_files.star) is written once every micrograph is picked.
    assert sorted(p.name for p in out.iterdir()) == ["a.star", "b.star", "c.star", "coordinate_files.star"]
    # A different threshold is a different job: everything is picked again.
    predictor.pick_files([micrographs], picker, 27.0, out, threshold=0.9, options=BatchOptions(progress=False))
    assert (out / "a.star").stat().st_mtime_ns != done


def test_sigterm_stops_with_one_line_and_keeps_parts(tmp_path):
    inputs = cutouts(tmp_path / "in", 600, link=True)
    out = tmp_path / "preds"
    argv = [sys.executable, "-m", "deepscope", *predict_argv([inputs], out, "--partition-size", "20")]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env())
    _wait_for_parts(out, 2, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err and err.strip().splitlines() == [
        "deepscope: terminated; finished parts are kept; rerun the same command to resume"]
    kept = len(list(out.glob("part-*.parquet")))
    assert kept >= 2 and not (out / LOCK_NAME).exists()
    done = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    table = parts(out)
    assert len(table) == 600 and table["file"].is_unique


@pytest.mark.distributed
def test_sigkill_leaves_no_reader_behind_and_the_rerun_resumes(tmp_path):
    """The main process killed as the OOM killer does: its reader processes die with it, its lock with them."""
    inputs = cutouts(tmp_path / "in", 2400, link=True)
    out = tmp_path / "preds"
    argv = [sys.executable, "-m", "deepscope", "-q", "galaxy", "predict", str(inputs), "--out", str(out),
            "--partition-size", "300", "--read-threads", "2", "--threads", "1"]
    process = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=env())
    _wait_for_parts(out, 1, process)
    readers = psutil.Process(process.pid).children(recursive=True)
    assert len(readers) >= 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(readers, timeout=5)
    for orphan in alive:
        orphan.kill()
    assert not alive, f"{len(alive)} process(es) outlived the run"
    done = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=TIMEOUT)
    assert done.returncode == 0 and "another run" not in done.stderr, done.stderr
    table = parts(out)
    assert len(table) == 2400 and table["file"].is_unique


def test_any_os_error_of_a_command_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    from deepscope.cli import galaxy_predict

    def fail(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.csv"))

    monkeypatch.setattr(galaxy_predict, "main", fail)
    rc, err = run(predict_argv(SOURCES[:1], tmp_path / "x.csv"), capsys)
    assert rc == 1
    assert error_lines(err) == [f"deepscope: error: {tmp_path / 'x.csv'}: No space left on device"]


# The job identity: what a rerun may keep -----------------------------------------------------


def test_reordered_catalogue_never_duplicates_or_drops_rows(tmp_path, capsys, caplog, reference):
    inputs = cutouts(tmp_path / "in", 12)
    catalog = tmp_path / "cat.csv"
    files = sorted(str(p) for p in inputs.iterdir())
    pd.DataFrame({"file": files}).to_csv(catalog, index=False)
    out = tmp_path / "preds"
    argv = predict_argv([], out, "--catalog", catalog, "--partition-size", "4")
    assert run(argv, capsys)[0] == 0
    (out / "part-00000002.parquet").unlink()  # as if killed before the last partition
    reordered = files[6:] + files[:6]
    pd.DataFrame({"file": reordered}).to_csv(catalog, index=False)
    rc, err = run(argv, capsys)
    assert rc == 0, err
    assert "holds parts of a different job" in caplog.text
    table = parts(out)
    assert table["file"].tolist() == reordered
    assert table["p_bar"].tolist() == expected(reordered, reference)


def test_replaced_input_recomputes_only_its_partition(tmp_path, capsys, caplog, reference):
    inputs = cutouts(tmp_path / "in", 6)
    out = tmp_path / "preds"
    argv = predict_argv([inputs], out, "--partition-size", "2")
    assert run(argv, capsys)[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    # g0003 becomes a copy of another sample, with another prediction.
    replaced = inputs / "g0003.jpeg"
    shutil.copy(SOURCES[0], replaced)
    os.utime(replaced, ns=(time.time_ns(), time.time_ns() + 10**9))
    rc, err = run(argv, capsys)
    assert rc == 0, err
    assert "part-00000001.parquet: computing partition 1 again: its inputs changed" in caplog.text
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert [name for name in before if after[name] != before[name]] == ["part-00000001.parquet"]
    table = parts(out)
    answers = expected(table["file"], reference)
    answers[3] = reference[SOURCES[0].name]
    assert table["p_bar"].tolist() == answers and answers[3] != expected([replaced], reference)[0]


def test_a_rerun_on_another_engine_recomputes_and_never_mixes(tmp_path, capsys, monkeypatch):
    """Killed on the default int8 export, resumed on the fp32 one: the table is the fp32 run's, whole."""
    inputs = cutouts(tmp_path / "in", 12)
    out, fp32, int8 = tmp_path / "preds", tmp_path / "fp32", tmp_path / "int8"
    argv = predict_argv([inputs], out, "--partition-size", "4")
    real = runner.partition_rows
    calls = []

    def interrupt_the_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(runner, "partition_rows", interrupt_the_third)
    assert run(argv, capsys)[0] == 130
    assert len(list(out.glob("part-*.parquet"))) == 2
    monkeypatch.setattr(runner, "partition_rows", real)
    assert run([*argv, "--engine", "onnx"], capsys)[0] == 0
    assert run(predict_argv([inputs], fp32, "--partition-size", "4", "--engine", "onnx"), capsys)[0] == 0
    assert run(predict_argv([inputs], int8, "--partition-size", "4"), capsys)[0] == 0
    pd.testing.assert_frame_equal(parts(out), parts(fp32))
    # The engines disagree on these cutouts, so a mixed table could not pass.
    assert (parts(int8)["p_bar"].to_numpy()[:8] != parts(fp32)["p_bar"].to_numpy()[:8]).any()


@pytest.mark.parametrize("change", ["engine", "device", "columns"])
def test_the_job_names_engine_device_and_output_columns(change, tmp_path, monkeypatch, caplog):
    folder = texts(tmp_path / "in", 4)
    options = BatchOptions(partition_size=2, progress=False)

    def predict():
        predictor = Upper()
        source = InputStream([folder], [".txt"])
        job = runner.describe_job("toy", source, predictor, None, options)
        runner.predict_to_table(source, predictor, tmp_path / "out", job, options)
        return predictor.seen

    predict()
    assert predict() == []  # the same job: resumed, nothing computed again
    value = {"engine": "onnx", "device": lambda device: "cpu another kind", "columns": ("upper", "lower")}[change]
    monkeypatch.setattr(*(("deepscope.core.batch.runner.device_kind", value) if change == "device" else
                          (Upper, "output_columns" if change == "columns" else "engine", value)))
    assert predict() == [f"t{i:02d}.txt" for i in range(4)]
    assert "holds parts of a different job" in caplog.text


def test_device_kind_names_the_processor():
    kind = runner.device_kind("cpu")
    assert kind.startswith("cpu ") and len(kind) > len("cpu ") and kind == runner.device_kind()


# On a Dask cluster ---------------------------------------------------------------------------
# Two worker processes on loopback, one thread each; the local runs use one
# torch thread too, so both compute with the same kernels.


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=LOOPBACK_ANY_PORT) as cluster:
        yield cluster.scheduler_address


def _main(*argv):
    assert main(["-q", *map(str, argv)]) == 0


@pytest.mark.distributed
def test_galaxy_predict_local_equals_two_worker_cluster(tmp_path):
    images = sample_dir("galaxy", "bars", "images")
    _main("galaxy", "predict", images, "--out", tmp_path / "local.csv", "--threads", "1", "--partition-size", "5")
    _main("galaxy", "predict", images, "--out", tmp_path / "dask.csv", "--workers", "2", "--partition-size", "5")
    local = (tmp_path / "local.csv").read_text()
    assert local == (tmp_path / "dask.csv").read_text()
    assert len(local.splitlines()) == 1 + len(list(images.iterdir()))


@pytest.mark.distributed
def test_spectra_predict_on_an_existing_scheduler(scheduler, tmp_path):
    spectra = sample_dir("spectra")
    _main("spectra", "predict", spectra, "--out", tmp_path / "local.csv", "--threads", "1", "--partition-size", "4")
    _main("spectra", "predict", spectra, "--out", tmp_path / "dask.csv", "--scheduler", scheduler,
          "--partition-size", "4")
    assert (tmp_path / "local.csv").read_text() == (tmp_path / "dask.csv").read_text()


@pytest.mark.distributed
def test_cryoem_pick_on_an_existing_scheduler(scheduler, tmp_path):
    micrographs = tmp_path / "mics"
    micrographs.mkdir()
    for path in sample_dir("cryoem").glob("*.jpg"):
        shutil.copy(path, micrographs)
    # The samples are the real micrographs reduced 4x: particles are 27 px across.
    _main("cryoem", "pick", micrographs, "--diameter", "27", "--out", tmp_path / "local", "--threads", "1")
    _main("cryoem", "pick", micrographs, "--diameter", "27", "--out", tmp_path / "dask", "--scheduler", scheduler)
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert local == sorted(p.name for p in (tmp_path / "dask").iterdir()) and len(local) == 3
    index = "coordinate_files.star"
    pd.testing.assert_frame_equal(starfile.read(tmp_path / "dask" / index), starfile.read(tmp_path / "local" / index))
    for name in sorted(set(local) - {index}):
        # Compared as tables: starfile stamps each file with the time it was written.
        expected_picks = read_coordinates(tmp_path / "local" / name)
        pd.testing.assert_frame_equal(read_coordinates(tmp_path / "dask" / name), expected_picks)
        assert len(expected_picks) > 0
