"""Input discovery, output checks, atomic writes and tables."""

import os
import shutil

import pandas as pd
import pytest
from unprivileged import private_tmp, run_unprivileged

from deepscope.core.files import atomic_path, check_writable, collect_inputs, read_table, write_table
from deepscope.errors import InputError, OutputError


def test_collect_inputs_searches_directories_by_suffix(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jpeg", "sub/b.PNG", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = collect_inputs([tmp_path], (".jpeg", ".png"))
    assert [p.name for p in found] == ["a.jpeg", "b.PNG"]


def test_collect_inputs_rejects_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        collect_inputs([tmp_path / "nope.jpeg"], (".jpeg",))


def test_collect_inputs_rejects_empty_directory(tmp_path):
    with pytest.raises(InputError, match="no input files"):
        collect_inputs([tmp_path], (".jpeg",))


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_round_trip(tmp_path, suffix):
    table = pd.DataFrame({"file": ["a", "b"], "p_bar": [0.25, 0.75]})
    path = tmp_path / f"t{suffix}"
    write_table(table, path)
    pd.testing.assert_frame_equal(read_table(path, required=["file"]), table)


def test_read_table_names_missing_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("file,x\na,1\n")
    with pytest.raises(InputError, match=r"t\.csv: missing column\(s\) barred"):
        read_table(path, required=["file", "barred"])


def test_write_table_rejects_unknown_suffix(tmp_path):
    with pytest.raises(OutputError, match="unsupported table format"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")


def test_check_writable_rejects_directory_as_file(tmp_path):
    with pytest.raises(OutputError, match="it is a directory"):
        check_writable(tmp_path)


def test_check_writable_rejects_read_only_dir():
    folder = private_tmp()
    locked = folder / "locked"
    locked.mkdir(mode=0o555)
    try:
        # Run as nobody under root, who could write there anyway.
        _, error = run_unprivileged(check_writable, locked / "out.csv")
        assert error.startswith("OutputError") and error.endswith("out.csv: cannot write output: permission denied")
    finally:
        shutil.rmtree(folder)


def test_check_writable_rejects_path_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write output"):
        check_writable(blocker / "out.csv")
