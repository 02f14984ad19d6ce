"""Resumable part stores: finished partitions kept and verified, other jobs' parts discarded, outputs merged."""

import errno
import json
import os
import shutil
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from batch_helpers import MICROGRAPH, SOURCES, Upper, batch, error_lines, parts, predict_argv, run, texts

from deepscope.core.batch.options import BatchOptions
from deepscope.core.batch.store import JOB_FILE, PartStore
from deepscope.core.lock import LOCK_NAME
from deepscope.errors import OutputError


@pytest.fixture
def folder(tmp_path):
    return texts(tmp_path / "in", 7, bad=(3,))


def test_run_keeps_good_rows_lists_bad_files_and_merges(folder, tmp_path):
    out = tmp_path / "pred.csv"
    store = PartStore.for_table(out, {"job": 1})
    [(name, reason)] = batch([folder], store, Upper(), partition_size=3)
    assert name == str(folder / "t03.txt") and reason.endswith("bad content")
    assert store.finish() == 6
    table = pd.read_csv(out)
    assert table["upper"].tolist() == [f"ITEM{i}" for i in (0, 1, 2, 4, 5, 6)]
    assert table.columns.tolist() == ["file", "upper"] and not store.dir.exists()


def test_done_partitions_are_not_computed_again(folder, tmp_path):
    store = PartStore.for_table(tmp_path / "parts", {"job": 1})
    batch([folder], store, Upper(), batch_size=8)
    first = {p.name: p.stat().st_mtime_ns for p in store.dir.glob("part-*.parquet")}
    store.close()
    # Lose the last partition, as a killed run would, and leave a stale temporary file.
    (store.dir / "part-00000003.parquet").unlink()
    (store.dir / ".part-00000003.parquet.x.tmp").write_text("half")
    again = PartStore.for_table(tmp_path / "parts", {"job": 1})
    predictor = Upper()
    batch([folder], again, predictor, batch_size=8)
    assert predictor.calls == 1 and not list(again.dir.glob(".*.tmp"))
    for name, mtime in first.items():
        assert (again.dir / name).stat().st_mtime_ns == mtime or name == "part-00000003.parquet"
    assert again.finish() == 6 and (again.dir / JOB_FILE).exists()  # a directory result is kept


def test_parts_of_another_job_are_discarded(folder, tmp_path):
    store = PartStore.for_table(tmp_path / "parts", {"model": "a"})
    batch([folder], store, Upper())
    store.close()
    other = PartStore.for_table(tmp_path / "parts", {"model": "b"})
    assert other.done_indices() == set()
    assert json.loads((other.dir / JOB_FILE).read_text()) == {"model": "b"}


def test_parquet_merge_and_no_table_without_good_rows(folder, tmp_path):
    store = PartStore.for_table(tmp_path / "pred.parquet", {})
    batch([folder], store, Upper(), partition_size=4)
    assert store.finish() == 6 and len(pd.read_parquet(tmp_path / "pred.parquet")) == 6
    empty = PartStore.for_table(tmp_path / "none.csv", {})
    batch([folder / "t03.txt"], empty, Upper())
    assert empty.finish() == 0 and not (tmp_path / "none.csv").exists()


def test_parquet_merge_takes_parts_whose_columns_are_empty_in_some(tmp_path):
    store = PartStore.for_table(tmp_path / "pred.parquet", {})
    store.write(0, [{"file": "a", "objid": None, "note": None}], [])
    store.write(1, [{"file": "b", "objid": 7, "note": "x"}, {"file": "c", "objid": 8.5, "note": None}], [])
    assert store.finish() == 3
    table = pd.read_parquet(tmp_path / "pred.parquet")
    assert table["objid"].tolist()[1:] == [7, 8.5] and table["note"].tolist()[1] == "x"
    assert table["objid"].isna().tolist() == [True, False, False]


def test_unsupported_output_suffix(tmp_path):
    with pytest.raises(OutputError, match=r"pred.txt: unsupported output '.txt'"):
        PartStore.for_table(tmp_path / "pred.txt", {})


def test_filtered_rows_are_counted_so_the_part_is_kept(folder, tmp_path, caplog):
    out = tmp_path / "parts"
    with closing(PartStore(out, {"job": 1})) as store:
        batch([folder], store, Upper(), keep=lambda row: row["upper"] != "ITEM1")
    predictor = Upper()
    with closing(PartStore(out, {"job": 1})) as store:
        batch([folder], store, predictor, keep=lambda row: row["upper"] != "ITEM1")
        assert store.finish() == 5
    assert predictor.seen == [] and "computing partition" not in caplog.text
    assert parts(out)["upper"].tolist() == [f"ITEM{i}" for i in (0, 2, 4, 5, 6)]


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
    folder = texts(tmp_path / "in", 6, bad=(5,))
    out = tmp_path / "out"
    with closing(PartStore(out, {"job": 1})) as store:
        batch([folder], store, Upper())
    damage(out / "part-00000001.parquet")
    predictor = Upper()
    with closing(PartStore(out, {"job": 1})) as store:
        failures = batch([folder], store, predictor)
        assert store.finish() == 5
    assert predictor.seen == ["t02.txt", "t03.txt"]
    if damage is not Path.unlink:
        assert "part-00000001.parquet: computing partition 1 again: it is unreadable" in caplog.text
    assert parts(out)["upper"].tolist() == [f"ITEM{i}" for i in range(5)]
    assert [name for name, _ in failures] == [str(folder / "t05.txt")]


def test_changed_bad_input_list_and_lost_output_files_are_recomputed(tmp_path, caplog):
    folder = texts(tmp_path / "in", 6, bad=(1,))
    out = tmp_path / "out"
    with closing(PartStore(out / ".books", {"job": 1})) as store:
        batch([folder], store, Upper(out))
    (out / "t03.up").write_text("TRUNCAT")  # an output altered after the run
    (out / "t05.up").unlink()  # and one lost
    (out / ".books" / "part-00000000.failed.csv").write_text("file,error\n")
    stale = out / ".t05.up.k3j4.tmp"  # left by a write that was killed
    stale.write_text("ITE")
    predictor = Upper(out)
    with closing(PartStore(out / ".books", {"job": 1})) as store:
        batch([folder], store, predictor)
        rows = [row for table in store.iter_tables() for row in table.to_dict("records")]
        failures = store.failures()
    assert predictor.seen == ["t00.txt", "t02.txt", "t03.txt", "t04.txt", "t05.txt"]
    assert "bad inputs part-00000000.failed.csv is missing or changed" in caplog.text
    assert f"its output {out / 't03.up'} is missing or changed" in caplog.text
    assert [(out / f"t{i:02d}.up").read_text() for i in (0, 2, 3, 4, 5)] == [f"ITEM{i}" for i in (0, 2, 3, 4, 5)]
    assert [row["upper"] for row in rows] == [f"ITEM{i}" for i in (0, 2, 3, 4, 5)]
    assert [name for name, _ in failures] == [str(folder / "t01.txt")] and not stale.exists()


def test_sound_parts_are_kept_and_stale_temporary_files_removed(tmp_path):
    folder = texts(tmp_path / "in", 4)
    out = tmp_path / "pred.csv"
    store = PartStore.for_table(out, {"job": 1})
    batch([folder], store, Upper())
    store.close()  # killed before the merge, which left its temporary file
    stale = tmp_path / ".pred.csv.x1y2.tmp"
    stale.write_text("half a merge")
    predictor = Upper()
    store = PartStore.for_table(out, {"job": 1})
    batch([folder], store, predictor)
    assert store.finish() == 4
    assert predictor.seen == [] and not stale.exists()
    assert pd.read_csv(out)["upper"].tolist() == [f"ITEM{i}" for i in range(4)]
    assert sorted(os.listdir(tmp_path)) == ["in", "pred.csv"]


def test_full_disk_while_writing_the_job_record_is_one_line(tmp_path, capsys, monkeypatch):
    from deepscope.core.batch import store

    def no_space(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.dir / store.JOB_FILE))

    monkeypatch.setattr(store.PartStore, "_check_job", no_space)
    rc, err = run(predict_argv(SOURCES[:1], tmp_path / "preds"), capsys)
    assert rc == 1
    [line] = error_lines(err)
    assert line.endswith("preds/_job.json: cannot write: No space left on device")
    assert not (tmp_path / "preds" / LOCK_NAME).exists()


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
