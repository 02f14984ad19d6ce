"""Synthetic galaxy catalogues and sky positions with known truth.

For the tests and docs of the catalogue tools (:mod:`deepscope.galaxy.catalog`):
a catalogue with SDSS column names on both sides of the sample cuts, and
positions moved by exact angular offsets for cross-matching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike


def synthetic_catalog(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A galaxy catalogue with SDSS column names, spanning the sample cuts.

    Magnitudes, redshifts and radii are drawn on both sides of the default
    cuts of :func:`deepscope.galaxy.catalog.select_sample`, and a few rows
    carry SDSS's ``-9999`` "no measurement" value.

    Parameters
    ----------
    n : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        Columns ``objID, ra, dec, petroMag_r, modelMag_r, z, petroR50_r, deVRad_r``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "objID": np.arange(1_237_645_000_000_000_000, 1_237_645_000_000_000_000 + n, dtype=np.int64),
        "ra": rng.uniform(150.0, 200.0, n),
        "dec": rng.uniform(-5.0, 60.0, n),
        "petroMag_r": rng.uniform(12.0, 19.0, n),
        "z": rng.uniform(0.0, 0.3, n),
        "petroR50_r": rng.uniform(1.0, 40.0, n),
    })
    table["modelMag_r"] = table["petroMag_r"] - rng.uniform(0.0, 0.3, n)
    table["deVRad_r"] = table["petroR50_r"] * rng.uniform(0.8, 1.5, n)
    missing = rng.choice(n, size=max(1, n // 50), replace=False)
    table.loc[missing, "petroMag_r"] = -9999.0
    return table[["objID", "ra", "dec", "petroMag_r", "modelMag_r", "z", "petroR50_r", "deVRad_r"]]


def offset_positions(ra: ArrayLike, dec: ArrayLike, offset_arcsec: float | ArrayLike,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Move sky positions by exact angular offsets in random directions.

    Parameters
    ----------
    ra, dec : array_like
        Degrees.
    offset_arcsec : float or array_like
        Angular distance of each moved position from the original.
    seed : int

    Returns
    -------
    ra, dec : numpy.ndarray
        Degrees.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(seed)
    coords = SkyCoord(np.asarray(ra, dtype=float) * u.deg, np.asarray(dec, dtype=float) * u.deg)
    angle = rng.uniform(0.0, 360.0, len(coords)) * u.deg
    moved = coords.directional_offset_by(angle, np.broadcast_to(offset_arcsec, len(coords)) * u.arcsec)
    return moved.ra.deg, moved.dec.deg
