"""Shared by the batch-machinery tests: toy predictors over text files, galaxy predict runs on the shipped samples."""

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import deepscope
from deepscope.cli.main import main
from deepscope.core.batch.options import BatchOptions
from deepscope.core.batch.runner import run_batch
from deepscope.core.batch.sources import InputStream
from deepscope.errors import FormatError
from deepscope.samples import sample_dir

SOURCES = sorted(sample_dir("galaxy", "bars", "images").glob("*.jpeg"))
MICROGRAPH = sorted(sample_dir("cryoem").glob("*.jpg"))[0]
TIMEOUT = 120
SRC = str(Path(deepscope.__file__).resolve().parents[1])


class Upper:
    """A toy predictor: a text file's content, upper-cased, also written to ``<out>/<stem>.up`` when given."""

    engine = "torch"
    output_columns = ("upper",)
    output_suffixes = (".up",)

    def __init__(self, out=None):
        self.out = out
        self.seen = []  # names of the inputs answered
        self.calls = 0  # rows() calls

    def load_input(self, path):
        text = path.read_text()
        if text.startswith("bad"):
            msg = f"{path}: bad content"
            raise FormatError(msg)
        return path, text

    def rows(self, items):
        self.calls += 1
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


def texts(folder, n, bad=()):
    """``t00.txt`` ... with ``item<i>`` in each, ``bad`` at the indices given."""
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"t{i:02d}.txt").write_text("bad" if i in bad else f"item{i}")
    return folder


def batch(inputs, store, predictor, partition_size=2, catalog=None, batch_size=2, keep=None, **stream):
    """:func:`run_batch` of a toy predictor over text files, in process."""
    source = InputStream(inputs, [".txt", ".up"], catalog, **stream)
    options = BatchOptions(partition_size=partition_size, batch_size=batch_size, progress=False)
    return run_batch(source, predictor, store, options, keep=keep)


def env():
    """The environment of a subprocess that imports this checkout's deepscope, whatever is installed."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
                OMP_NUM_THREADS="1")


def run(argv, capsys):
    """``deepscope ARGV`` in process: its exit status and stderr."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def error_lines(err):
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("deepscope: error:")]


def cutouts(folder, n, link=False):
    """``n`` cutouts (copies of, or links to, the shipped samples in turn) in ``folder``."""
    folder.mkdir()
    for i in range(n):
        (os.symlink if link else shutil.copy)(SOURCES[i % len(SOURCES)], folder / f"g{i:04d}.jpeg")
    return folder


def predict_argv(inputs, out, *extra):
    return ["-q", "galaxy", "predict", *map(str, inputs), "--out", str(out), "--threads", "1",
            "--read-threads", "1", *extra]


def parts(folder):
    """A directory of parts as one table."""
    return pd.concat(pd.read_parquet(p) for p in sorted(Path(folder).glob("part-*.parquet")))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``p_bar`` of every shipped sample, by file name, from one clean run."""
    out = tmp_path_factory.mktemp("reference") / "ref.csv"
    assert main(predict_argv(SOURCES, out)) == 0
    table = pd.read_csv(out)
    return {Path(f).name: p for f, p in zip(table["file"], table["p_bar"])}


def expected(files, reference):
    """Reference probabilities of cutouts named g0000 ..., by what they are copies of."""
    return [reference[SOURCES[int(Path(f).stem[1:]) % len(SOURCES)].name] for f in files]
