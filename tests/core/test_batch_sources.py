"""Input streams (files, catalogues, tar shards) cut into partitions, and outputs that are inputs refused."""

import os
import shutil
import tarfile

import pandas as pd
import pytest
from astropy.table import Table
from batch_helpers import MICROGRAPH, SOURCES, Upper, batch, error_lines, predict_argv, run, texts

from deepscope.core.batch.sources import InputStream
from deepscope.core.batch.store import PartStore
from deepscope.core.lock import LOCK_NAME
from deepscope.errors import InputError, OutputError


@pytest.fixture
def folder(tmp_path):
    return texts(tmp_path / "in", 7, bad=(3,))


def test_files_directories_and_partitions(folder):
    stream = InputStream([folder], [".txt"])
    names = [ref.name for ref in stream]
    assert names == [str(folder / f"t{i:02d}.txt") for i in range(7)] and stream.total == 7
    partitions = list(stream.partitions(3))
    assert [p.count for p in partitions] == [3, 3, 1] and [p.index for p in partitions] == [0, 1, 2]
    assert [ref.name for p in partitions for ref in p.refs] == names and partitions[0].carried is None


def test_tar_members_are_read_by_offset(folder, tmp_path):
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as archive:
        for i in (0, 1, 2):
            archive.add(folder / f"t{i:02d}.txt", arcname=f"sub/t{i:02d}.txt")
        archive.add(folder / "t04.txt", arcname="notes.md")  # not an input suffix: skipped
    (part,) = InputStream([shard], [".txt"]).partitions(8)
    assert [ref.name for ref in part.refs] == [f"{shard}/sub/t{i:02d}.txt" for i in (0, 1, 2)]
    assert part.refs[1].read_member() == b"item1"
    loaded = part.load(Upper(), read_threads=2)
    assert [text for _, text in loaded.items] == ["item0", "item1", "item2"] and not loaded.failures
    assert loaded.names == [ref.name for ref in part.refs]


def test_unreadable_shard_is_a_failure_not_a_crash(folder, tmp_path):
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"this is not a tar archive" * 40)
    stream = InputStream([folder / "t00.txt", broken], [".txt"])
    assert [ref.name for ref in stream] == [str(folder / "t00.txt")]
    assert stream.failures[0][0] == str(broken) and "tar" in stream.failures[0][1]


def _catalog(path, columns):
    if path.suffix == ".fits":
        Table(columns).write(path)
    else:
        getattr(pd.DataFrame(columns), "to_csv" if path.suffix == ".csv" else "to_parquet")(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_catalogue_paths_are_relative_to_the_catalogue(folder, suffix):
    catalog = _catalog(folder.parent / f"cat{suffix}", {"cutout": ["in/t05.txt", "in/t00.txt"], "ra": [1.0, 2.0]})
    stream = InputStream(catalog=catalog, path_column="cutout")
    assert [ref.name for ref in stream] == [str(folder / "t05.txt"), str(folder / "t00.txt")]
    with pytest.raises(InputError, match=r"cat\..*no column 'file'.*cutout.*--path-column"):
        InputStream(catalog=catalog)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_kept_catalogue_columns_travel_with_their_rows(folder, tmp_path, suffix):
    # A path listed twice, one named "NA", a bad input and a column named like the prediction.
    (folder.parent / "NA").write_text("item NA")
    catalog = _catalog(folder.parent / f"cat{suffix}", {"file": ["in/t05.txt", "NA", "in/t03.txt", "in/t05.txt"],
                                                       "objid": [587722981747982465 + i for i in range(4)],
                                                       "upper": ["a", "b", "c", "d"]})
    out = tmp_path / "out.csv"
    store = PartStore.for_table(out, {"job": 1})
    failures = batch([], store, Upper(), catalog=catalog, keep_columns=True)
    store.finish()
    table = pd.read_csv(out, keep_default_na=False)
    assert table.columns.tolist() == ["file", "upper", "catalog_file", "objid", "catalog_upper"]
    assert table["upper"].tolist() == ["ITEM5", "ITEM NA", "ITEM5"]
    assert table["catalog_file"].tolist() == ["in/t05.txt", "NA", "in/t05.txt"]
    assert table["objid"].tolist() == [587722981747982465, 587722981747982466, 587722981747982468]
    assert table["catalog_upper"].tolist() == ["a", "b", "d"]
    assert [name for name, _ in failures] == [str(folder / "t03.txt")]
    # Inputs the catalogue does not list get its columns empty.
    stream = InputStream([folder / "t00.txt"], [".txt"], catalog, keep_columns=True)
    (part,) = stream.partitions(8)
    assert stream.columns == ["file", "objid", "upper"] and len(part.carried) == 5
    assert part.carried[0] == {"file": None, "objid": None, "upper": None}


def test_stream_errors(folder):
    with pytest.raises(InputError, match="no inputs"):
        InputStream([], [".txt"])
    with pytest.raises(InputError, match="missing.tar: no such tar shard"):
        InputStream([folder / "missing.tar"], [".txt"])
    with pytest.raises(InputError, match="unsupported catalogue format"):
        InputStream(catalog=folder / "t00.txt")


# Outputs that are inputs ---------------------------------------------------------------------


def test_catalogue_as_output_is_refused_before_any_work(tmp_path, capsys):
    catalog = tmp_path / "lab.csv"
    pd.DataFrame({"file": [str(p) for p in SOURCES[:3]], "label": [1, 0, 1], "split": "test"}).to_csv(
        catalog, index=False)
    before = catalog.read_bytes()
    rc, err = run(predict_argv([], catalog, "--catalog", catalog), capsys)
    assert rc == 1
    [line] = error_lines(err)
    assert "lab.csv: the output is also an input of this run" in line
    assert catalog.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["lab.csv"]


def test_pick_overlays_inside_the_input_directory_are_never_read_back(tmp_path, capsys):
    mics = tmp_path / "mics"
    mics.mkdir()
    shutil.copy(MICROGRAPH, mics / "a.jpg")
    out = mics / "picks"
    argv = ["-q", "cryoem", "pick", mics, "--diameter", "27", "--out", out, "--overlays", "--threads", "1"]
    # A rerun would take a_overlay.png for a micrograph: refused before the first run writes anything.
    rc, err = run(argv, capsys)
    assert rc == 1
    [line] = error_lines(err)
    assert "picks: the output lies inside input directory" in line and "read it back as input" in line
    assert not out.exists()
    # STAR files alone are never collected as micrographs, so picks beside them are fine.
    rc, err = run(argv[:-3] + ["--threads", "1"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a.star",
        "coordinate_files.star",
    ]


def test_declared_output_suffixes_inside_an_input_directory_are_refused_first(tmp_path):
    folder = texts(tmp_path / "in", 3)
    store = PartStore(folder / "out" / ".books", {"job": 1})
    with pytest.raises(OutputError, match=r"out: the output lies inside input directory .*in and a rerun would"):
        batch([folder], store, Upper(folder / "out"))
    assert not list((folder / "out").glob("*.up")) and not (folder / "out" / ".books" / LOCK_NAME).exists()
