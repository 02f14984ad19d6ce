"""Shared fixtures: the real data in ../shared/data, named once here."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Root of the team's real data; tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bars_dir(shared_data):
    """SDSS/GZ2 barred vs unbarred cutouts with labels.csv."""
    return shared_data / "galaxy" / "sdss_gz2_bars"


@pytest.fixture(scope="session")
def morphology_dir(shared_data):
    """SDSS/GZ elliptical vs spiral cutouts with labels.csv."""
    return shared_data / "galaxy" / "sdss_gz_ellip_spiral"


@pytest.fixture(scope="session")
def spectra_dir(shared_data):
    """Stellar spectral libraries with MK types."""
    return shared_data / "spectra"


@pytest.fixture(scope="session")
def cryoem_dir(shared_data):
    """EMPIAR-10017 micrographs, particle positions and peer picks."""
    return shared_data / "cryoem"
