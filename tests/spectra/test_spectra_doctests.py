"""The Examples in the spectra docstrings run and give what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["batch_prepare", "decoding", "ensemble", "fits_readers", "gridded", "io", "mktype",
                                  "preprocess", "quality", "spectrum", "table_rows", "tables",
                                  "targets"])
def test_docstring_examples(name):
    module = importlib.import_module(f"deepscope.spectra.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
