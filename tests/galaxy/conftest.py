"""Fixtures shared by the galaxy tests."""

import shutil

import pandas as pd
import pytest

from synthetic_galaxies import render_galaxy, write_fits_cube


@pytest.fixture(scope="module")
def galaxy():
    """A synthetic barred galaxy with known g, r, i bands."""
    return render_galaxy(size=48, r_dev=4.0, barred=True, seed=3)


@pytest.fixture()
def cube_path(tmp_path, galaxy):
    """That galaxy as a FITS cube with a celestial WCS."""
    return write_fits_cube(tmp_path / "galaxy.fits", galaxy.bands, pixel_scale=0.396, ra=150.0, dec=2.0)


@pytest.fixture(scope="module")
def tiny_labels(bars_dir, tmp_path_factory):
    """24 training and 16 test cutouts of each class, copied with a labels.csv."""
    folder = tmp_path_factory.mktemp("bars")
    table = pd.read_csv(bars_dir / "labels.csv")
    parts = [table[(table.split == s) & (table.barred == b)].head(n)
             for s, n in (("train", 24), ("test", 16)) for b in (0, 1)]
    table = pd.concat(parts)
    (folder / "images").mkdir()
    for name in table["file"]:
        shutil.copy(bars_dir / name, folder / name)
    table.to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"
