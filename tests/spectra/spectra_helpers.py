"""What several spectra tests share: one spectrum made into the network input."""

from deepscope.spectra.preparation.continuum import normalise
from deepscope.spectra.preparation.grid import Grid, on_grid


def prepare(spectrum, grid=Grid(), min_coverage=0.4, path="spectrum", red_limit=None):
    """``(2, grid.n)`` network input of one spectrum: on the grid, then normalised as a batch of one."""
    flux, mask = on_grid(spectrum, grid, min_coverage, path, red_limit)
    return normalise(flux[None], mask[None], grid)[0]
