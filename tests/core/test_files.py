"""Input discovery, output checks, atomic writes and tables."""

import os
import shutil

import pandas as pd
import pytest
from unprivileged import private_tmp, run_unprivileged

from deepscope.core.files import (atomic_path, check_table_output, check_writable, collect_inputs, opening, read_head,
                                  read_table, write_table)
from deepscope.errors import FormatError, InputError, OutputError


def test_collect_inputs_searches_directories_by_suffix(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jpeg", "sub/b.PNG", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = collect_inputs([tmp_path], (".jpeg", ".png"))
    assert [p.name for p in found] == ["a.jpeg", "b.PNG"]


def test_collect_inputs_finds_what_rglob_finds_in_path_order(tmp_path):
    # Names whose string order differs from Path's part-by-part order ("a-b", "a.b" sort before "a/"
    # as strings), a hidden file, a folder named like an input, links to a file, a folder and nowhere.
    for name in ("a/x.jpeg", "a.b/x.jpeg", "a-b/y.JPEG", "a/b/c/z.jpeg", "z.jpeg", "a/.h.jpeg", "a/n.txt",
                 "dir.jpeg/q.jpeg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / "linked_dir")
    os.symlink(tmp_path / "a", tmp_path / "linked_dir.jpeg")
    os.symlink(tmp_path / "z.jpeg", tmp_path / "linked.jpeg")
    os.symlink(tmp_path / "missing", tmp_path / "broken.jpeg")
    reference = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.name.lower().endswith(".jpeg"))
    found = collect_inputs([tmp_path], (".jpeg",))
    assert found == reference
    assert [p.relative_to(tmp_path).as_posix() for p in found][:3] == ["a/.h.jpeg", "a/b/c/z.jpeg", "a/x.jpeg"]


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


def test_check_table_output_accepts_tables_and_creates_their_folder(tmp_path):
    out = tmp_path / "new" / "sample.PARQUET"
    assert check_table_output(str(out)) == out
    assert out.parent.is_dir()


def test_check_table_output_refuses_other_suffixes_before_creating_anything(tmp_path):
    with pytest.raises(OutputError, match=r"sample\.fits: unsupported table format"):
        check_table_output(tmp_path / "new" / "sample.fits")
    assert not (tmp_path / "new").exists()


def test_opening_turns_os_errors_into_one_format_error(tmp_path):
    with pytest.raises(FormatError, match=r"gone\.fits: cannot open \(No such file or directory\)$"):
        read_head(tmp_path / "gone.fits", 8)
    with pytest.raises(FormatError, match=r"cannot open \(Is a directory\)$"), opening(tmp_path):
        tmp_path.read_bytes()


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
