"""Everyday mistakes around batch outputs: refused with one line, or a correct result; never mixed or lost.

Two runs on one output, an output that is also an input, inputs or a
catalogue changed between a killed run and its rerun, corrupt parts, lost
output files, SIGTERM and failing writes. Concurrency is tested with real
processes, each bounded by a timeout.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import deepscope
from deepscope.cli.main import main
from deepscope.core.inference import run_batch
from deepscope.core.lock import LOCK_NAME
from deepscope.core.options import BatchOptions
from deepscope.core.parts import PartStore
from deepscope.core.sources import InputStream
from deepscope.errors import FormatError, OutputError
from deepscope.samples import sample_dir

SOURCES = sorted(sample_dir("galaxy", "bars", "images").glob("*.jpeg"))
MICROGRAPH = sorted(sample_dir("cryoem").glob("*.jpg"))[0]
TIMEOUT = 120
SRC = str(Path(deepscope.__file__).resolve().parents[1])


def _env():
    # Subprocesses import this checkout's deepscope, whatever is installed.
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
                OMP_NUM_THREADS="1")


def _run(argv, capsys):
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _error_lines(err):
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("deepscope: error:")]


def _cutouts(folder, n):
    """``n`` cutouts (copies of the shipped samples, in turn) in ``folder``."""
    folder.mkdir()
    for i in range(n):
        shutil.copy(SOURCES[i % len(SOURCES)], folder / f"g{i:03d}.jpeg")
    return folder


def _predict(inputs, out, *extra):
    return ["-q", "galaxy", "predict", *map(str, inputs), "--out", str(out), "--threads", "1",
            "--read-threads", "1", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``p_bar`` of every shipped sample, by file content, from one clean run."""
    out = tmp_path_factory.mktemp("reference") / "ref.csv"
    assert main(_predict(SOURCES, out)) == 0
    table = pd.read_csv(out)
    return {Path(f).name: p for f, p in zip(table["file"], table["p_bar"])}


def _expected(files, reference):
    """Reference probabilities of cutout copies named g000 ..., by what they are copies of."""
    return [reference[SOURCES[int(Path(f).stem[1:]) % len(SOURCES)].name] for f in files]


class _Holder:
    """A real process that holds a store's lock (as a running batch does) until killed."""

    def __init__(self, out):
        code = textwrap.dedent(f"""
            import sys, time
            from deepscope.core.parts import PartStore
            store = PartStore.for_table({str(out)!r}, {{"job": "holder"}})
            print("locked", flush=True)
            time.sleep({TIMEOUT})
        """)
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=_env(), text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        self.process.stdout.close()


# One writer per output -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["preds", "preds.csv"])
def test_second_run_on_a_busy_output_is_refused_naming_the_holder(name, tmp_path, capsys, caplog, reference):
    out = tmp_path / name
    holder = _Holder(out)
    try:
        rc, err = _run(_predict(SOURCES[:2], out, "--model", "galaxy_morphology"), capsys)
        assert rc == 1
        [line] = _error_lines(err)
        assert f"is being written by another run: PID {holder.process.pid}" in line and "-c" in line
    finally:
        holder.kill()
    # The holder died without releasing (kill -9): its lock is taken over, and
    # its parts of another job are discarded, not mixed in.
    rc, err = _run(_predict(SOURCES, out), capsys)
    assert rc == 0, err
    assert f"taking over the lock of an earlier run, PID {holder.process.pid}" in caplog.text
    table = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(next(out.glob("part-*.parquet")))
    assert table.columns.tolist() == ["file", "p_bar", "barred", "threshold"]
    assert table["p_bar"].tolist() == [reference[p.name] for p in SOURCES]
    assert not list(tmp_path.rglob(LOCK_NAME))


def test_two_real_runs_at_once_never_mix(tmp_path):
    """Two CLI processes started together on one --out: one refused in one line, the other's result intact."""
    inputs = _cutouts(tmp_path / "in", 64)
    out = tmp_path / "preds"
    runs = [subprocess.Popen([sys.executable, "-m", "deepscope", *_predict([inputs], out, "--partition-size", "8",
                                                                          *model)],
                             stderr=subprocess.PIPE, text=True, env=_env())
            for model in ([], ["--model", "galaxy_morphology"])]
    errs = [run.communicate(timeout=TIMEOUT)[1] for run in runs]
    codes = [run.returncode for run in runs]
    assert all("Traceback" not in err for err in errs), errs
    parts = [pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet"))]
    columns = {tuple(part.columns) for part in parts}
    assert len(columns) == 1, columns  # never parts of both models
    if sorted(codes) == [0, 1]:
        refused = errs[codes.index(1)]
        assert len(_error_lines(refused)) == 1 and "is being written by another run" in refused
    else:  # the second started after the first had finished: both ran, one after the other
        assert codes == [0, 0]
    assert sum(len(part) for part in parts) == 64


def test_training_run_directory_has_one_writer(tmp_path):
    from deepscope.config import TrainConfig, prepare_run_dir
    from deepscope.core.lock import release_all

    run = tmp_path / "run"
    code = (f"import time; from deepscope.config import TrainConfig, prepare_run_dir; "
            f"prepare_run_dir({str(run)!r}, TrainConfig()); print('locked', flush=True); time.sleep({TIMEOUT})")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=_env(), text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=rf"run directory .*run is being written by another run: PID {holder.pid}"):
            prepare_run_dir(run, TrainConfig())
    finally:
        holder.kill()
        holder.wait(timeout=TIMEOUT)
        holder.stdout.close()
    try:
        # Taken over once its holder is dead; the same process may prepare it again.
        assert prepare_run_dir(run, TrainConfig()) == run
        assert prepare_run_dir(run, TrainConfig()) == run
        assert (run / LOCK_NAME).exists()
    finally:
        release_all()
    assert not (run / LOCK_NAME).exists()


# Outputs that are inputs ---------------------------------------------------------------------


def test_catalogue_as_output_is_refused_before_any_work(tmp_path, capsys):
    catalog = tmp_path / "lab.csv"
    pd.DataFrame({"file": [str(p) for p in SOURCES[:3]], "label": [1, 0, 1], "split": "test"}).to_csv(
        catalog, index=False)
    before = catalog.read_bytes()
    rc, err = _run(_predict([], catalog, "--catalog", catalog), capsys)
    assert rc == 1
    [line] = _error_lines(err)
    assert "lab.csv: the output is also an input of this run" in line
    assert catalog.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["lab.csv"]


def test_pick_overlays_inside_the_input_directory_are_never_read_back(tmp_path, capsys):
    mics = tmp_path / "mics"
    mics.mkdir()
    shutil.copy(MICROGRAPH, mics / "a.jpg")
    out = mics / "picks"
    argv = ["-q", "cryoem", "pick", mics, "--diameter", "27", "--out", out, "--overlays", "--threads", "1"]
    # A rerun would take a_overlay.png for a micrograph: refused before the first run writes anything.
    rc, err = _run(argv, capsys)
    assert rc == 1
    [line] = _error_lines(err)
    assert "picks: the output lies inside input directory" in line and "read it back as input" in line
    assert not out.exists()
    # STAR files alone are never collected as micrographs, so picks beside them are fine.
    rc, err = _run(argv[:-3] + ["--threads", "1"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.star"]


class Upper:
    """A toy predictor: a text file's content, upper-cased, also written to ``<out>/<stem>.up``."""

    output_suffixes = (".up",)

    def __init__(self, out=None):
        self.out = out
        self.seen = []

    def load_input(self, path):
        text = path.read_text()
        if text.startswith("bad"):
            msg = f"{path}: bad content"
            raise FormatError(msg)
        return path, text

    def rows(self, items):
        rows = []
        for path, text in items:
            self.seen.append(path.name)
            row = {"upper": text.upper()}
            if self.out is not None:
                written = self.out / f"{path.stem}.up"
                written.write_text(text.upper())
                row["written"] = str(written)
            rows.append(row)
        return rows

    def output_files(self, rows):
        return [row["written"] for row in rows if "written" in row]


def _texts(folder, n, bad=()):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"t{i:02d}.txt").write_text("bad" if i in bad else f"item{i}")
    return folder


def _batch(inputs, store, predictor, partition_size=2, catalog=None):
    stream = InputStream(inputs, [".txt", ".up"], catalog)
    options = BatchOptions(partition_size=partition_size, batch_size=2, progress=False)
    return run_batch(stream, predictor, store, options)


def test_declared_output_suffixes_inside_an_input_directory_are_refused_first(tmp_path):
    texts = _texts(tmp_path / "in", 3)
    store = PartStore(texts / "out" / ".books", {"job": 1})
    with pytest.raises(OutputError, match=r"out: the output lies inside input directory .*in and a rerun would"):
        _batch([texts], store, Upper(texts / "out"))
    assert not list((texts / "out").glob("*.up")) and not (texts / "out" / ".books" / LOCK_NAME).exists()


# Job identity --------------------------------------------------------------------------------


def test_reordered_catalogue_never_duplicates_or_drops_rows(tmp_path, capsys, caplog, reference):
    inputs = _cutouts(tmp_path / "in", 12)
    catalog = tmp_path / "cat.csv"
    files = sorted(str(p) for p in inputs.iterdir())
    pd.DataFrame({"file": files}).to_csv(catalog, index=False)
    out = tmp_path / "preds"
    argv = _predict([], out, "--catalog", catalog, "--partition-size", "4")
    assert _run(argv, capsys)[0] == 0
    (out / "part-00000002.parquet").unlink()  # as if killed before the last partition
    reordered = files[6:] + files[:6]
    pd.DataFrame({"file": reordered}).to_csv(catalog, index=False)
    rc, err = _run(argv, capsys)
    assert rc == 0, err
    assert "holds parts of a different job" in caplog.text
    table = pd.concat(pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet")))
    assert table["file"].tolist() == reordered
    assert table["p_bar"].tolist() == _expected(reordered, reference)


def test_replaced_input_recomputes_only_its_partition(tmp_path, capsys, caplog, reference):
    inputs = _cutouts(tmp_path / "in", 6)
    out = tmp_path / "preds"
    argv = _predict([inputs], out, "--partition-size", "2")
    assert _run(argv, capsys)[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    # g003 becomes a copy of another sample, with another prediction.
    replaced = inputs / "g003.jpeg"
    shutil.copy(SOURCES[0], replaced)
    os.utime(replaced, ns=(time.time_ns(), time.time_ns() + 10**9))
    rc, err = _run(argv, capsys)
    assert rc == 0, err
    assert "part-00000001.parquet: computing partition 1 again: its inputs changed" in caplog.text
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert [name for name in before if after[name] != before[name]] == ["part-00000001.parquet"]
    table = pd.concat(pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet")))
    expected = _expected(table["file"], reference)
    expected[3] = reference[SOURCES[0].name]
    assert table["p_bar"].tolist() == expected and expected[3] != _expected([replaced], reference)[0]


# Parts verified on resume --------------------------------------------------------------------


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_data_byte(path):
    """Corrupt a byte of the first data page, leaving the footer (and row counts) intact."""
    data = bytearray(path.read_bytes())
    data[len(b"PAR1") + 40] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_data_byte, Path.unlink], ids=["truncated", "flipped", "deleted"])
def test_damaged_part_is_recomputed_with_a_message_naming_it(damage, tmp_path, caplog):
    texts = _texts(tmp_path / "in", 6, bad=(5,))
    out = tmp_path / "out"
    with PartStore(out, {"job": 1}) as store:
        _batch([texts], store, Upper())
    damage(out / "part-00000001.parquet")
    predictor = Upper()
    with PartStore(out, {"job": 1}) as store:
        failures = _batch([texts], store, predictor)
        assert store.finish() == 5
    assert predictor.seen == ["t02.txt", "t03.txt"]
    if damage is not Path.unlink:
        assert "part-00000001.parquet: computing partition 1 again: it is unreadable" in caplog.text
    table = pd.concat(pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet")))
    assert table["upper"].tolist() == [f"ITEM{i}" for i in range(5)]
    assert [name for name, _ in failures] == [str(texts / "t05.txt")]


def test_changed_bad_input_list_and_lost_output_files_are_recomputed(tmp_path, caplog):
    texts = _texts(tmp_path / "in", 6, bad=(1,))
    out = tmp_path / "out"
    with PartStore(out / ".books", {"job": 1}) as store:
        _batch([texts], store, Upper(out))
    (out / "t03.up").write_text("TRUNCAT")  # an output altered after the run
    (out / "t05.up").unlink()  # and one lost
    (out / ".books" / "part-00000000.failed.csv").write_text("file,error\n")
    stale = out / ".t05.up.k3j4.tmp"  # left by a write that was killed
    stale.write_text("ITE")
    predictor = Upper(out)
    with PartStore(out / ".books", {"job": 1}) as store:
        _batch([texts], store, predictor)
        rows = [row for table in store.iter_tables() for row in table.to_dict("records")]
        failures = store.failures()
    assert predictor.seen == ["t00.txt", "t02.txt", "t03.txt", "t04.txt", "t05.txt"]
    assert "bad inputs part-00000000.failed.csv is missing or changed" in caplog.text
    assert f"its output {out / 't03.up'} is missing or changed" in caplog.text
    assert [(out / f"t{i:02d}.up").read_text() for i in (0, 2, 3, 4, 5)] == [f"ITEM{i}" for i in (0, 2, 3, 4, 5)]
    assert [row["upper"] for row in rows] == [f"ITEM{i}" for i in (0, 2, 3, 4, 5)]
    assert [name for name, _ in failures] == [str(texts / "t01.txt")] and not stale.exists()


def test_sound_parts_are_kept_and_stale_temporary_files_removed(tmp_path):
    texts = _texts(tmp_path / "in", 4)
    out = tmp_path / "pred.csv"
    store = PartStore.for_table(out, {"job": 1})
    _batch([texts], store, Upper())
    store.close()  # killed before the merge, which left its temporary file
    stale = tmp_path / ".pred.csv.x1y2.tmp"
    stale.write_text("half a merge")
    predictor = Upper()
    store = PartStore.for_table(out, {"job": 1})
    _batch([texts], store, predictor)
    assert store.finish() == 4
    assert predictor.seen == [] and not stale.exists()
    assert pd.read_csv(out)["upper"].tolist() == [f"ITEM{i}" for i in range(4)]
    assert sorted(os.listdir(tmp_path)) == ["in", "pred.csv"]


# Signals and failing writes ------------------------------------------------------------------


def test_sigterm_stops_with_one_line_and_keeps_parts(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(600):
        os.symlink(SOURCES[i % len(SOURCES)], inputs / f"g{i:04d}.jpeg")
    out = tmp_path / "preds"
    argv = [sys.executable, "-m", "deepscope", *_predict([inputs], out, "--partition-size", "20")]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + TIMEOUT
    while len(list(out.glob("part-*.parquet"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err and err.strip().splitlines() == [
        "deepscope: terminated; finished parts are kept, rerun to resume"]
    kept = len(list(out.glob("part-*.parquet")))
    assert kept >= 2 and not (out / LOCK_NAME).exists()
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    table = pd.concat(pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet")))
    assert len(table) == 600 and table["file"].is_unique


def test_full_disk_while_writing_the_job_record_is_one_line(tmp_path, capsys, monkeypatch):
    from deepscope.core import parts

    def no_space(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.dir / parts.JOB_FILE))

    monkeypatch.setattr(parts.PartStore, "_check_job", no_space)
    rc, err = _run(_predict(SOURCES[:1], tmp_path / "preds"), capsys)
    assert rc == 1
    [line] = _error_lines(err)
    assert line.endswith("preds/_job.json: cannot write: No space left on device")
    assert not (tmp_path / "preds" / LOCK_NAME).exists()


def test_any_os_error_of_a_command_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    from deepscope.cli import galaxy_predict

    def fail(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.csv"))

    monkeypatch.setattr(galaxy_predict, "main", fail)
    rc, err = _run(_predict(SOURCES[:1], tmp_path / "x.csv"), capsys)
    assert rc == 1
    assert _error_lines(err) == [f"deepscope: error: {tmp_path / 'x.csv'}: No space left on device"]


def test_locks_are_released_after_bad_inputs_and_interrupts(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jpeg"
    bad.write_bytes(b"not an image")
    out = tmp_path / "preds.csv"
    rc, err = _run(_predict([SOURCES[0], bad], out), capsys)
    assert rc == 1 and "1 input(s) failed" in err
    assert len(pd.read_csv(out)) == 1 and not list(tmp_path.rglob(LOCK_NAME))

    from deepscope.core import inference

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference, "predict_partition", interrupt)
    rc, err = _run(_predict(SOURCES[:2], tmp_path / "other"), capsys)
    assert rc == 130 and err.strip() == "deepscope: interrupted"
    assert not list(tmp_path.rglob(LOCK_NAME))


def _break_star(path):
    path.write_text(path.read_text()[:40])


@pytest.mark.parametrize("damage", [_break_star, Path.unlink], ids=["truncated", "deleted"])
def test_lost_or_truncated_star_file_after_a_kill_is_picked_again(damage, tmp_path, monkeypatch, caplog):
    """Cryo-EM STAR outputs: the picker declares the files it wrote, the part records their checksums."""
    from deepscope.cryoem import predictor
    from deepscope.cryoem.predictor import Picker

    mics = tmp_path / "mics"
    mics.mkdir()
    shutil.copy(MICROGRAPH, mics / "a.jpg")
    shutil.copy(MICROGRAPH, mics / "b.jpg")
    out = tmp_path / "picks"
    picker = Picker.from_checkpoint()
    real_rows = predictor.PickWriter.rows

    def killed_at_b(self, items):
        if items[0][0].name == "b.jpg":
            raise KeyboardInterrupt
        return real_rows(self, items)

    monkeypatch.setattr(predictor.PickWriter, "rows", killed_at_b)
    with pytest.raises(KeyboardInterrupt):
        predictor.pick_files([mics], picker, 27.0, out, options=BatchOptions(progress=False))
    clean = (out / "a.star").read_text().splitlines()[1:]  # line 1 holds the time of writing
    damage(out / "a.star")
    monkeypatch.setattr(predictor.PickWriter, "rows", real_rows)
    rows, failures = predictor.pick_files([mics], picker, 27.0, out, options=BatchOptions(progress=False))
    assert f"its output {out / 'a.star'} is missing or changed" in caplog.text
    assert not failures and [row["star"] for row in rows] == [str(out / "a.star"), str(out / "b.star")]
    assert (out / "a.star").read_text().splitlines()[1:] == clean
