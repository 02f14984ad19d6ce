"""One writer per output: a second run is refused naming the first, a dead run's lock is taken over."""

import contextlib
import subprocess
import sys
import textwrap

import pandas as pd
import psutil
import pytest
from batch_helpers import SOURCES, TIMEOUT, cutouts, env, error_lines, predict_argv, reference, run  # noqa: F401

from deepscope.core.lock import LOCK_NAME, lock_output, release_all
from deepscope.errors import OutputError


class _Holder:
    """A real process that holds a store's lock (as a running batch does) until killed."""

    def __init__(self, out):
        code = textwrap.dedent(f"""
            import sys, time
            from deepscope.core.batch.store import PartStore
            store = PartStore.for_table({str(out)!r}, {{"job": "holder"}})
            print("locked", flush=True)
            time.sleep({TIMEOUT})
        """)
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env(), text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        self.process.stdout.close()


@pytest.mark.parametrize("name", ["preds", "preds.csv"])
def test_second_run_on_a_busy_output_is_refused_naming_the_holder(name, tmp_path, capsys, caplog, reference):
    out = tmp_path / name
    holder = _Holder(out)
    try:
        rc, err = run(predict_argv(SOURCES[:2], out, "--model", "galaxy_morphology"), capsys)
        assert rc == 1
        [line] = error_lines(err)
        assert f"is being written by another run: PID {holder.process.pid}" in line and "-c" in line
    finally:
        holder.kill()
    # The holder died without releasing (kill -9): its lock is taken over, and
    # its parts of another job are discarded, not mixed in.
    rc, err = run(predict_argv(SOURCES, out), capsys)
    assert rc == 0, err
    assert f"taking over the lock of an earlier run, PID {holder.process.pid}" in caplog.text
    table = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(next(out.glob("part-*.parquet")))
    assert table.columns.tolist() == ["file", "p_bar", "barred", "threshold", "scale_flag", "bar_length_arcsec",
                                      "bar_pa_deg"]
    assert table["p_bar"].tolist() == [reference[p.name] for p in SOURCES]
    assert not list(tmp_path.rglob(LOCK_NAME))


def test_two_real_runs_at_once_never_mix(tmp_path):
    """Two CLI processes started together on one --out: one refused in one line, the other's result intact."""
    inputs = cutouts(tmp_path / "in", 64)
    out = tmp_path / "preds"
    runs = [subprocess.Popen([sys.executable, "-m", "deepscope", *predict_argv([inputs], out, "--partition-size", "8",
                                                                              *model)],
                             stderr=subprocess.PIPE, text=True, env=env())
            for model in ([], ["--model", "galaxy_morphology"])]
    errs = [process.communicate(timeout=TIMEOUT)[1] for process in runs]
    codes = [process.returncode for process in runs]
    assert all("Traceback" not in err for err in errs), errs
    parts = [pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet"))]
    columns = {tuple(part.columns) for part in parts}
    assert len(columns) == 1, columns  # never parts of both models
    if sorted(codes) == [0, 1]:
        refused = errs[codes.index(1)]
        assert len(error_lines(refused)) == 1 and "is being written by another run" in refused
    else:  # the second started after the first had finished: both ran, one after the other
        assert codes == [0, 0]
    assert sum(len(part) for part in parts) == 64


def test_training_run_directory_has_one_writer(tmp_path):
    from deepscope.config import TrainConfig, prepare_run_dir

    run_dir = tmp_path / "run"
    code = (f"import time; from deepscope.config import TrainConfig, prepare_run_dir; "
            f"prepare_run_dir({str(run_dir)!r}, TrainConfig()); print('locked', flush=True); time.sleep({TIMEOUT})")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env(), text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = rf"run directory .*run is being written by another run: PID {holder.pid}"
        with pytest.raises(OutputError, match=busy):
            prepare_run_dir(run_dir, TrainConfig())
    finally:
        holder.kill()
        holder.wait(timeout=TIMEOUT)
        holder.stdout.close()
    try:
        # Taken over once its holder is dead; the same process may prepare it again.
        assert prepare_run_dir(run_dir, TrainConfig()) == run_dir
        assert prepare_run_dir(run_dir, TrainConfig()) == run_dir
        assert (run_dir / LOCK_NAME).exists()
    finally:
        release_all()
    assert not (run_dir / LOCK_NAME).exists()


def test_a_forked_child_does_not_keep_its_parents_lock(tmp_path):
    """A child forked by a lock holder (a reader process) outlives it: the lock dies with the holder."""
    code = textwrap.dedent(f"""
        import os, time
        from deepscope.core.lock import lock_output
        lock = lock_output({str(tmp_path)!r}, "demo")
        if os.fork() == 0:
            time.sleep({TIMEOUT})
            os._exit(0)
        print("locked", flush=True)
        time.sleep({TIMEOUT})
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env(), text=True)
    children = []
    try:
        assert holder.stdout.readline().strip() == "locked"
        children = psutil.Process(holder.pid).children()
        with pytest.raises(OutputError, match="demo is being written by another run"):
            lock_output(tmp_path, "demo")
        holder.kill()
        holder.wait(timeout=TIMEOUT)
        assert [child.is_running() for child in children] == [True]
        lock_output(tmp_path, "demo").release()  # free, though the child still runs
    finally:
        holder.kill()
        holder.stdout.close()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_locks_are_released_after_bad_inputs_and_interrupts(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jpeg"
    bad.write_bytes(b"not an image")
    out = tmp_path / "preds.csv"
    rc, err = run(predict_argv([SOURCES[0], bad], out), capsys)
    assert rc == 1 and "1 input(s) failed" in err
    assert len(pd.read_csv(out)) == 1 and not list(tmp_path.rglob(LOCK_NAME))

    from deepscope.core.batch import runner

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "partition_rows", interrupt)
    rc, err = run(predict_argv(SOURCES[:2], tmp_path / "other"), capsys)
    assert rc == 130
    assert err.strip() == "deepscope: interrupted; finished parts are kept; rerun the same command to resume"
    assert not list(tmp_path.rglob(LOCK_NAME))
