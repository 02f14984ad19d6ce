"""Input streams (files, catalogues, tar shards) and resumable part stores."""

import json
import tarfile

import pandas as pd
import pytest

from deepscope.core.inference import load_partition, run_partitioned
from deepscope.core.parts import JOB_FILE, PartStore
from deepscope.core.sources import InputStream, partitions
from deepscope.errors import InputError, OutputError


class Upper:
    """A toy predictor: an input's text, upper-cased; files starting with 'bad' fail."""

    def __init__(self):
        self.calls = 0

    def load_input(self, path):
        from deepscope.errors import FormatError

        text = path.read_text()
        if text.startswith("bad"):
            msg = f"{path}: bad content"
            raise FormatError(msg)
        return text

    def rows(self, items):
        self.calls += 1
        return [{"upper": item.upper()} for item in items]


@pytest.fixture
def texts(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        (folder / f"f{i}.txt").write_text("bad" if i == 3 else f"item{i}")
    return folder


def test_files_directories_and_partitions(texts):
    stream = InputStream([texts], [".txt"])
    names = [ref.name for ref in stream]
    assert names == [str(texts / f"f{i}.txt") for i in range(7)] and stream.total == 7
    assert [len(p) for p in partitions(stream, 3)] == [3, 3, 1]


def test_tar_members_are_read_by_offset(texts, tmp_path):
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as archive:
        for i in (0, 1, 2):
            archive.add(texts / f"f{i}.txt", arcname=f"sub/f{i}.txt")
        archive.add(texts / "f4.txt", arcname="notes.md")  # not an input suffix: skipped
    refs = list(InputStream([shard], [".txt"]))
    assert [ref.name for ref in refs] == [f"{shard}/sub/f{i}.txt" for i in (0, 1, 2)]
    assert refs[1].read_member() == b"item1"
    names, items, failures = load_partition(Upper(), refs)
    assert items == ["item0", "item1", "item2"] and names == [ref.name for ref in refs] and not failures


def test_unreadable_shard_is_a_failure_not_a_crash(texts, tmp_path):
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"this is not a tar archive" * 40)
    stream = InputStream([texts / "f0.txt", broken], [".txt"])
    assert [ref.name for ref in stream] == [str(texts / "f0.txt")]
    assert stream.failures[0][0] == str(broken) and "tar" in stream.failures[0][1]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_catalogue_paths_are_relative_to_the_catalogue(texts, suffix):
    from astropy.table import Table

    catalog = texts.parent / f"cat{suffix}"
    table = Table({"cutout": [f"in/f{i}.txt" for i in (5, 0)], "ra": [1.0, 2.0]})
    if suffix == ".fits":
        table.write(catalog)
    else:
        getattr(table.to_pandas(), "to_csv" if suffix == ".csv" else "to_parquet")(catalog, index=False)
    stream = InputStream(catalog=catalog, path_column="cutout")
    assert [ref.name for ref in stream] == [str(texts / "f5.txt"), str(texts / "f0.txt")]
    with pytest.raises(InputError, match=r"cat\..*no column 'file'.*cutout.*--path-column"):
        InputStream(catalog=catalog)


def test_stream_errors(texts):
    with pytest.raises(InputError, match="no inputs"):
        InputStream([], [".txt"])
    with pytest.raises(InputError, match="missing.tar: no such tar shard"):
        InputStream([texts / "missing.tar"], [".txt"])
    with pytest.raises(InputError, match="unsupported catalogue format"):
        InputStream(catalog=texts / "f0.txt")


def test_run_keeps_good_rows_lists_bad_files_and_merges(texts, tmp_path):
    out = tmp_path / "pred.csv"
    store = PartStore.for_table(out, {"job": 1})
    run_partitioned(InputStream([texts], [".txt"]), Upper(), store, partition_size=3, batch_size=2, progress=False)
    [(name, reason)] = store.failures()
    assert name == str(texts / "f3.txt") and reason.endswith("bad content")
    assert store.finish() == 6
    table = pd.read_csv(out)
    assert table["upper"].tolist() == [f"ITEM{i}" for i in (0, 1, 2, 4, 5, 6)]
    assert table.columns.tolist() == ["file", "upper"] and not store.dir.exists()


def test_done_partitions_are_not_computed_again(texts, tmp_path):
    store = PartStore.for_table(tmp_path / "parts", {"job": 1})
    predictor = Upper()
    assert run_partitioned(InputStream([texts], [".txt"]), predictor, store, 2, 8, progress=False) == 4
    first = {p.name: p.stat().st_mtime_ns for p in store.dir.glob("part-*.parquet")}
    store.close()
    # Lose the last partition, as a killed run would, and leave a stale temporary file.
    (store.dir / "part-00000003.parquet").unlink()
    (store.dir / ".part-00000003.parquet.x.tmp").write_text("half")
    again = PartStore.for_table(tmp_path / "parts", {"job": 1})
    predictor = Upper()
    assert run_partitioned(InputStream([texts], [".txt"]), predictor, again, 2, 8, progress=False) == 1
    assert predictor.calls == 1 and not list(again.dir.glob(".*.tmp"))
    for name, mtime in first.items():
        assert (again.dir / name).stat().st_mtime_ns == mtime or name == "part-00000003.parquet"
    assert again.finish() == 6 and (again.dir / JOB_FILE).exists()  # a directory result is kept


def test_parts_of_another_job_are_discarded(texts, tmp_path):
    store = PartStore.for_table(tmp_path / "parts", {"model": "a"})
    run_partitioned(InputStream([texts], [".txt"]), Upper(), store, 2, 8, progress=False)
    store.close()
    other = PartStore.for_table(tmp_path / "parts", {"model": "b"})
    assert other.done_indices() == set()
    assert json.loads((other.dir / JOB_FILE).read_text()) == {"model": "b"}


def test_parquet_merge_and_no_table_without_good_rows(texts, tmp_path):
    store = PartStore.for_table(tmp_path / "pred.parquet", {})
    run_partitioned(InputStream([texts], [".txt"]), Upper(), store, 4, 4, progress=False)
    assert store.finish() == 6 and len(pd.read_parquet(tmp_path / "pred.parquet")) == 6
    empty = PartStore.for_table(tmp_path / "none.csv", {})
    run_partitioned(InputStream([texts / "f3.txt"], [".txt"]), Upper(), empty, 4, 4, progress=False)
    assert empty.finish() == 0 and not (tmp_path / "none.csv").exists()


def test_unsupported_output_suffix(tmp_path):
    with pytest.raises(OutputError, match=r"pred.txt: unsupported output '.txt'"):
        PartStore.for_table(tmp_path / "pred.txt", {})
