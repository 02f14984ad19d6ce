"""The Examples in the spectra docstrings run and give what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["calibration", "decoding", "flags", "io.files", "io.fits", "io.spectrum",
                                  "io.table_rows", "io.tables", "mktype", "preparation.continuum", "preparation.grid",
                                  "preparation.staged", "synthetic", "targets", "train"])
def test_docstring_examples(name):
    module = importlib.import_module(f"deepscope.spectra.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
