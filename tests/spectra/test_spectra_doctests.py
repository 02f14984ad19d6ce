"""The Examples in the spectra docstrings run and give what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["preparation.grid_rows", "decoding", "ensemble", "io.fits", "preparation.gridded",
                                  "io.files", "mktype", "preparation.grid", "quality", "io.spectrum",
                                  "io.table_rows", "io.tables", "targets"])
def test_docstring_examples(name):
    module = importlib.import_module(f"deepscope.spectra.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
