"""Fixtures shared by the galaxy tests."""

import pytest

from deepscope.galaxy.synthetic import render_galaxy, write_fits_cube


@pytest.fixture(scope="module")
def galaxy():
    """A synthetic barred galaxy with known g, r, i bands."""
    return render_galaxy(size=48, r_dev=4.0, barred=True, seed=3)


@pytest.fixture()
def cube_path(tmp_path, galaxy):
    """That galaxy as a FITS cube with a celestial WCS."""
    return write_fits_cube(tmp_path / "galaxy.fits", galaxy.bands, pixel_scale=0.396, ra=150.0, dec=2.0)
