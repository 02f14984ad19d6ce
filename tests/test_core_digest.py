"""File digests: each file is read once per process, and read again once it changes."""

import collections
import hashlib
import os

import pytest

from deepscope.core import digest
from deepscope.samples import sample_dir


@pytest.fixture()
def reads(monkeypatch):
    """Counts of the files whose bytes were hashed, from an empty memory of digests."""
    counts = collections.Counter()
    read = digest._read_digest

    def counting(path):
        counts[os.fspath(path)] += 1
        return read(path)

    monkeypatch.setattr(digest, "_DIGESTS", {})
    monkeypatch.setattr(digest, "_read_digest", counting)
    return counts


def test_an_unchanged_file_is_read_once(tmp_path, reads):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    assert digest.sha256(path) == digest.sha256(str(path)) == hashlib.sha256(b"abc").hexdigest()
    assert reads[str(path)] == 1


def test_a_changed_or_replaced_file_is_read_again(tmp_path, reads):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    digest.sha256(path)
    path.write_bytes(b"abcd")
    assert digest.sha256(path) == hashlib.sha256(b"abcd").hexdigest()
    # Same size, replaced by a rename within the clock's resolution: a new inode.
    other = tmp_path / "b.bin"
    other.write_bytes(b"wxyz")
    stamp = path.stat().st_mtime_ns
    os.utime(other, ns=(stamp, stamp))
    os.replace(other, path)
    assert digest.sha256(path) == hashlib.sha256(b"wxyz").hexdigest()
    assert reads[str(path)] == 3


def test_one_galaxy_predict_run_reads_each_file_once(tmp_path, reads):
    from deepscope.cli.main import main
    from deepscope.registry import shipped_entry

    assert main(["-q", "galaxy", "predict", str(sample_dir("galaxy", "bars", "images")),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    entry = shipped_entry("galaxy_bars", "galaxy")
    # The weights are checked when the model is resolved, the export when the engine opens it, and
    # the weights' digest goes into the job's identity: every one of them from a single read.
    assert {str(entry.path), str(entry.export_path("onnx-int8"))} <= set(reads)
    assert set(reads.values()) == {1}, reads
