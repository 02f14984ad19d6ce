"""Synthetic galaxy catalogues, sky positions and survey frames with known truth.

For the tests, docs and demo of the catalogue and cutout tools
(:mod:`deepscope.galaxy.catalog`, :mod:`deepscope.galaxy.cutouts.make`): a
catalogue with SDSS column names on both sides of the sample cuts, positions
moved by exact angular offsets for cross-matching, and single-band FITS
frames with a real celestial WCS holding exponential discs where a
catalogue puts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from astropy.wcs import WCS
    from numpy.typing import ArrayLike

SDSS_PIXEL_ARCSEC = 0.396
# Band brightness relative to r: a red galaxy, as most barred spirals' bulges are.
RED_GALAXY_COLOURS = {"g": 0.5, "r": 1.0, "i": 1.4}


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


def frame_wcs(ra: float, dec: float, shape: tuple[int, int], scale: float = SDSS_PIXEL_ARCSEC,
              mirrored: bool = False) -> WCS:
    """A gnomonic (TAN) WCS centred on ``(ra, dec)`` for a frame of ``shape`` (rows, columns).

    Parameters
    ----------
    ra, dec : float
        Degrees.
    shape : tuple of int
    scale : float
        Arcsec per pixel.
    mirrored : bool
        Columns along dec and rows along ra, as SDSS frames run along the
        scan (a mirror image of north up); otherwise north up, east left.

    Returns
    -------
    astropy.wcs.WCS

    Examples
    --------
    >>> wcs = frame_wcs(150.0, 2.0, (100, 100))
    >>> [round(float(v), 6) for v in wcs.pixel_to_world_values(49.5, 49.5)]
    [150.0, 2.0]
    """
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    step = scale / 3600
    wcs.wcs.cd = [[0.0, step], [step, 0.0]] if mirrored else [[-step, 0.0], [0.0, step]]
    return wcs


def render_discs(wcs: WCS, shape: tuple[int, int], galaxies, gain: float = 1.0) -> np.ndarray:
    """Noise-free exponential discs seen through a frame's WCS.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
    shape : tuple of int
    galaxies : iterable of (ra, dec, r_eff, flux)
        Degrees, half-light radius in arcsec, total flux.
    gain : float
        Multiplies every flux (a band's colour).

    Returns
    -------
    numpy.ndarray
    """
    from deepscope.galaxy.synthetic import sersic_image

    scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix)))) * 3600
    image = np.zeros(shape)
    for ra, dec, r_eff, flux in galaxies:
        x, y = wcs.world_to_pixel_values(ra, dec)
        reach = 12 * r_eff / scale
        if -reach < x < shape[1] + reach and -reach < y < shape[0] + reach:
            image += sersic_image(shape, r_eff / scale, n=1.0, total_flux=flux * gain, center=(x, y), oversample=2)
    return image


def write_frame(path: Path, image: np.ndarray, wcs: WCS, band: str | None = None,
                header_extra: dict | None = None) -> Path:
    """Write a single-band frame: float32 pixels, the WCS, ``FILTER`` if ``band``; bzip2 if the name ends .bz2.

    Parameters
    ----------
    path : Path
    image : numpy.ndarray
    wcs : astropy.wcs.WCS
    band : str, optional
    header_extra : dict, optional
        More header cards.

    Returns
    -------
    Path
    """
    import bz2
    import io

    from astropy.io import fits

    header = wcs.to_header()
    if band is not None:
        header["FILTER"] = band
    for key, value in (header_extra or {}).items():
        header[key] = value
    hdu = fits.PrimaryHDU(image.astype(np.float32), header=header)
    if path.name.endswith(".bz2"):
        buffer = io.BytesIO()
        hdu.writeto(buffer)
        path.write_bytes(bz2.compress(buffer.getvalue()))
    else:
        hdu.writeto(path, overwrite=True)
    return path
