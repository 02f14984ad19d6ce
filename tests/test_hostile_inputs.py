"""Hostile inputs through the command line: one clear error line, no traceback, nothing half-written.

Every file of ``tests/hostile/`` (written by ``make_corpus.py``) is fed to
the command named in ``expected.csv``; the command must exit 1 with an error
line that names the file and says what is wrong, and leave no output file
behind. Unwritable outputs must be refused before any input is read.
"""

import csv
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from unprivileged import private_tmp, run_unprivileged

from deepscope.cli.main import main

HOSTILE = Path(__file__).resolve().parent / "hostile"
SAMPLES = Path(__file__).resolve().parents[1] / "src" / "deepscope" / "samples"
GALAXY_JPEG = SAMPLES / "galaxy" / "bars" / "images" / "J082301.10+255721.1.jpeg"
SPECTRUM = SAMPLES / "spectra" / "pickles_g2v.fits"
MICROGRAPH = SAMPLES / "cryoem" / "Falcon_2012_06_12-14_33_35_0.jpg"
COORDINATES = SAMPLES / "cryoem" / "Falcon_2012_06_12-14_33_35_0.csv"

with open(HOSTILE / "expected.csv", newline="") as _fh:
    CASES = list(csv.DictReader(_fh))


def _run(argv, capsys):
    """Run deepscope in-process; exit status and stderr."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _files_under(folder):
    return sorted(p for p in Path(folder).rglob("*") if not p.is_dir()) if Path(folder).exists() else []


def test_corpus_is_complete_and_small():
    """Every corpus file has exactly one row, and the corpus stays small."""
    corpus = {p.name for p in HOSTILE.iterdir() if p.is_file()} - {"make_corpus.py", "expected.csv"}
    listed = [case["file"] for case in CASES]
    assert len(listed) == len(set(listed))
    assert corpus == set(listed)
    assert len(corpus) >= 32
    assert all((HOSTILE / name).stat().st_size <= 16_384 for name in corpus)


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_hostile_file_gives_one_clear_error(case, tmp_path, capsys):
    path = HOSTILE / case["file"]
    # Directory-taking commands (cryoem evaluate) get a folder holding only this file.
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    fields = {"file": path, "filedir": folder, "tmp": out, "galaxy_jpeg": GALAXY_JPEG}
    argv = [word.format(**fields) for word in shlex.split(case["command"])]
    before = sorted(HOSTILE.iterdir())

    rc, err = _run(argv, capsys)

    assert rc == 1, err
    assert "Traceback" not in err
    names = case["names"].format(file=path.name)
    lines = [line for line in err.splitlines() if names in line]
    assert lines, f"no error line names {names}:\n{err}"
    assert any(re.search(case["error"], line) for line in lines), err
    # Nothing written, not even a temporary file; empty output folders made
    # while checking that the output is writable are harmless.
    assert _files_under(out) == []
    assert sorted(HOSTILE.iterdir()) == before


def _pickled_code_checkpoint(path):
    """A zip checkpoint whose pickle references a function (code), as an attacker would write it."""
    import torch

    torch.save({"model": "galaxy_bar_cnn", "state_dict": {}, "hook": os.getcwd}, path)


def test_checkpoint_with_pickled_code_is_refused(tmp_path, capsys):
    model = tmp_path / "evil.pt"
    _pickled_code_checkpoint(model)
    out = tmp_path / "out"
    rc, err = _run(["galaxy", "predict", GALAXY_JPEG, "--model", model, "--out", out / "p.csv"], capsys)
    assert rc == 1
    assert "Traceback" not in err
    assert re.search(r"evil\.pt: refused to load checkpoint: it carries pickled code", err), err
    assert _files_under(out) == []


# Commands with an output path that cannot be written; the output is checked
# before the input is even read (galaxy select gets a coordinate CSV here).
UNWRITABLE = [
    pytest.param(["galaxy", "predict", GALAXY_JPEG, "--out", "{out}/p.csv"], id="galaxy-predict"),
    pytest.param(["spectra", "predict", SPECTRUM, "--out", "{out}/p.csv"], id="spectra-predict"),
    pytest.param(["cryoem", "pick", MICROGRAPH, "--diameter", "27", "--out", "{out}/picks"], id="cryoem-pick"),
    pytest.param(["cryoem", "convert", COORDINATES, "--to", "star", "--out", "{out}/conv"], id="cryoem-convert"),
    pytest.param(["galaxy", "select", COORDINATES, "--out", "{out}/s.csv"], id="galaxy-select"),
]


def _unwritable_run(argv, out, capsys):
    argv = [str(a).format(out=out) for a in argv]
    rc, err = _run(argv, capsys)
    assert rc == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("deepscope: error:")]
    assert len(errors) == 1, err
    assert re.search(r"cannot write output", errors[0]), err
    # Refused before any work: no progress bar was started, no input read.
    assert "%|" not in err, err


@pytest.mark.parametrize("argv", UNWRITABLE)
def test_output_under_a_file_is_refused_first(argv, tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be\n")
    _unwritable_run(argv, blocker, capsys)
    assert blocker.read_text() == "a file where a directory should be\n"


def _main_status(argv):
    return main(argv)


@pytest.mark.parametrize("argv", UNWRITABLE)
def test_output_in_read_only_directory_is_refused_first(argv, capsys):
    folder = private_tmp()
    locked = folder / "locked"
    locked.mkdir(mode=0o555)
    try:
        # Once as root into a writable folder: the unprivileged child below
        # then has every module it needs already imported.
        main([str(a).format(out=folder / "warm") for a in argv])
        rc, err = run_unprivileged(_main_status, ["-q", *(str(a).format(out=locked) for a in argv)])
        assert rc == 1, err
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if line.startswith("deepscope: error:")]
        assert len(errors) == 1 and re.search(r"locked.*cannot write output", errors[0]), err
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(folder)


def test_spectrum_gzip_bomb_is_refused(tmp_path, monkeypatch):
    """A gzip file that inflates past the size cap stops there (cap lowered to keep the test small)."""
    import gzip

    from deepscope.errors import FormatError
    from deepscope.spectra.io import files as spectra_io

    monkeypatch.setattr(spectra_io, "MAX_SPECTRUM_BYTES", 4096)
    path = tmp_path / "bomb.txt.gz"
    path.write_bytes(gzip.compress(b"4000 1.0\n" * 10_000))
    with pytest.raises(FormatError, match=r"bomb\.txt\.gz: gzip file decompresses to more than"):
        spectra_io.read_spectrum(path)


def test_spectrum_gzip_reads_as_the_gzip_module_does(tmp_path):
    """Several members and zero padding read whole; a truncated or altered file is one clear error."""
    import gzip

    from deepscope.errors import FormatError
    from deepscope.spectra.io.files import read_spectrum

    first, second = b"4000 1.0\n4001 0.9\n", b"4002 1.1\n4003 1.0\n"
    joined = gzip.compress(first, mtime=0) + b"\0" * 8 + gzip.compress(second, mtime=0)
    assert gzip.decompress(joined) == first + second  # what gzip itself reads
    (tmp_path / "two.txt.gz").write_bytes(joined)
    assert read_spectrum(tmp_path / "two.txt.gz").wave.tolist() == [4000.0, 4001.0, 4002.0, 4003.0]
    whole = gzip.compress(first * 50, mtime=0)
    for name, data, reason in [("cut.txt.gz", whole[:-12], "ends before its end-of-stream marker"),
                               ("crc.txt.gz", whole[:-8] + b"\0\0\0\0" + whole[-4:], "incorrect data check")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FormatError, match=rf"{name}: corrupt gzip file \(.*{reason}"):
            read_spectrum(tmp_path / name)
