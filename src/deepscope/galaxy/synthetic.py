"""Synthetic galaxy catalogues and survey frames with known truth, for the demo, the docs and the tests.

A catalogue with SDSS column names on both sides of the sample cuts
(:func:`synthetic_catalog`, the ``galaxy select`` example), and single-band
FITS frames with a real celestial WCS holding Sersic discs where a catalogue
puts them (:func:`render_discs`, :func:`write_frame`: the demo's ``galaxy
cutout``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from astropy.wcs import WCS

SDSS_PIXEL_ARCSEC = 0.396
# Band brightness relative to r: a red galaxy, as most barred spirals' bulges are.
RED_GALAXY_COLOURS = {"g": 0.5, "r": 1.0, "i": 1.4}


def sersic_bn(n: float) -> float:
    """The Sersic ``b_n`` that makes ``r_eff`` the half-light radius, for index ``n`` (4: de Vaucouleurs).

    Examples
    --------
    >>> round(sersic_bn(4.0), 3)
    7.669
    """
    from scipy.special import gammaincinv

    return float(gammaincinv(2.0 * n, 0.5))


def check_geometry(axis_ratio: float, *lengths: float) -> None:
    """Refuse an axis ratio outside (0, 1] or a length that is not positive (ValueError)."""
    if not 0 < axis_ratio <= 1:
        msg = f"axis_ratio must be in (0, 1], got {axis_ratio}"
        raise ValueError(msg)
    if any(length <= 0 for length in lengths):
        msg = f"lengths must be positive, got {lengths}"
        raise ValueError(msg)


def sersic_image(shape: tuple[int, int], r_eff: float, n: float = 4.0, total_flux: float = 1.0,
                 center: tuple[float, float] | None = None, axis_ratio: float = 1.0, position_angle: float = 0.0,
                 oversample: int = 6) -> np.ndarray:
    """Render a Sersic profile, pixel-integrated (astropy ``Sersic2D`` + ``discretize_model``).

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the ``float64`` image returned.
    r_eff : float
        Half-light radius along the major axis, pixels.
    n : float
        Sersic index.
    total_flux : float
        Flux of the whole (infinite) profile; the image holds less when the profile extends beyond it.
    center : tuple of float, optional
        ``(x, y)`` in pixels (x = column); the image centre by default.
    axis_ratio, position_angle : float
        Minor / major axis, in (0, 1]; major axis in degrees, counter-clockwise from +x.
    oversample : int
        Sub-pixels per pixel side; keep it even, so that no sub-pixel lands on the cusp of an n = 4
        profile centred on a pixel.

    Examples
    --------
    >>> image = sersic_image((101, 101), r_eff=5.0, n=1.0)
    >>> round(float(image.sum()), 3)
    1.0
    """
    from astropy.convolution import discretize_model
    from astropy.modeling.models import Sersic2D
    from scipy.special import gamma

    check_geometry(axis_ratio, r_eff)
    height, width = shape
    cx, cy = ((width - 1) / 2, (height - 1) / 2) if center is None else center
    bn = sersic_bn(n)
    # Surface brightness at r_eff such that the analytic total is total_flux.
    analytic_total = 2 * np.pi * n * axis_ratio * r_eff**2 * np.exp(bn) * bn ** (-2 * n) * gamma(2 * n)
    profile = Sersic2D(amplitude=total_flux / analytic_total, r_eff=r_eff, n=n, x_0=cx, y_0=cy,
                       ellip=1.0 - axis_ratio, theta=np.deg2rad(position_angle))
    # Oversampled: the steep core of an n = 4 profile is badly under-sampled by pixel centres alone.
    return discretize_model(profile, (0, width), (0, height), mode="oversample", factor=oversample)


def synthetic_catalog(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """``n`` galaxies with SDSS column names (``objID, ra, dec, petroMag_r, modelMag_r, z, petroR50_r, deVRad_r``).

    Magnitudes, redshifts and radii are drawn on both sides of the default
    cuts of :func:`deepscope.galaxy.catalog.select_sample`, and a few rows
    carry SDSS's ``-9999`` "no measurement" value.
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


def render_discs(wcs: WCS, shape: tuple[int, int], galaxies, gain: float = 1.0) -> np.ndarray:
    """Noise-free exponential discs seen through a frame's WCS, on an image of ``shape``.

    ``galaxies`` holds ``(ra, dec, r_eff, flux)``: degrees, half-light radius
    in arcsec, total flux; ``gain`` multiplies every flux (a band's colour).
    """
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
    """Write a single-band frame: float32 pixels, the WCS, ``FILTER`` if ``band``, more header cards;
    bzip2 if the name ends .bz2. Returns ``path``."""
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
