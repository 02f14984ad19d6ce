"""Synthetic galaxies with known truth for the galaxy tests: bulge + disc (+ bar) in g, r, i, and files of them.

Galaxies are a de Vaucouleurs bulge (Sersic n = 4), an exponential disc
(n = 1) and optionally a bar (a flat-topped, elongated Ferrers component).
A bar takes its light from the disc, so barred and unbarred galaxies of the
same parameters have the same total flux and size: only the bar tells them
apart. Catalogues and frames the demo uses too are in :mod:`deepscope.galaxy.synthetic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.wcs import WCS
from numpy.typing import ArrayLike

from deepscope.galaxy.cutouts.composite import lupton_composite
from deepscope.galaxy.synthetic import SDSS_PIXEL_ARCSEC, check_geometry, sersic_image

# Relative flux in g, r, i: bulges are red, discs bluer (roughly SDSS
# colours g - r ~ 0.8 and ~ 0.5 mag).
BULGE_COLOURS = (0.45, 1.0, 1.35)
DISC_COLOURS = (0.65, 1.0, 1.2)


def _elliptical_radius(shape, center, axis_ratio, position_angle, oversample):
    """Elliptical radius on an oversampled grid, shape (H, W, s, s)."""
    height, width = shape
    cx, cy = ((width - 1) / 2, (height - 1) / 2) if center is None else center
    # Sub-pixel offsets: a bar's sharp edge is badly sampled by pixel centres alone.
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    y = np.arange(height)[:, None, None, None] + sub[None, None, :, None] - cy
    x = np.arange(width)[None, :, None, None] + sub[None, None, None, :] - cx
    theta = np.deg2rad(position_angle)
    major = x * np.cos(theta) + y * np.sin(theta)
    minor = -x * np.sin(theta) + y * np.cos(theta)
    return np.sqrt(major**2 + (minor / axis_ratio) ** 2)


def bar_image(shape: tuple[int, int], length: float, total_flux: float = 1.0, center: tuple[float, float] | None = None,
              axis_ratio: float = 0.25, position_angle: float = 0.0, oversample: int = 6) -> np.ndarray:
    """Render a bar: a Ferrers ellipsoid ``(1 - m**2)**2`` inside ``m < 1``.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)``.
    length : float
        Full length of the bar (major axis) in pixels.
    total_flux : float
        Flux of the bar (all of it lies inside its ellipse).
    center, axis_ratio, position_angle, oversample
        As in :func:`sersic_image`.

    Returns
    -------
    numpy.ndarray
        ``float64`` image of ``shape``.
    """
    check_geometry(axis_ratio, length)
    m = _elliptical_radius(shape, center, axis_ratio, position_angle, oversample) / (length / 2.0)
    profile = np.where(m < 1.0, (1.0 - np.minimum(m, 1.0) ** 2) ** 2, 0.0).mean(axis=(2, 3))
    # Normalise on the rendered pixels: the Ferrers profile is compact, so
    # nothing falls outside unless the bar leaves the image.
    return profile * (total_flux / profile.sum()) if profile.sum() > 0 else profile


@dataclass
class SyntheticGalaxy:
    """A rendered galaxy and its truth.

    Attributes
    ----------
    bands : numpy.ndarray
        ``float32`` ``(3, height, width)`` images in the g, r, i bands (flux
        units, sky-subtracted, with noise).
    bar_mask : numpy.ndarray
        ``bool`` ``(height, width)``: pixels inside the bar's ellipse (all
        False for an unbarred galaxy).
    r_dev : float
        de Vaucouleurs (bulge) half-light radius, pixels.
    barred : bool
    """

    bands: np.ndarray
    bar_mask: np.ndarray
    r_dev: float
    barred: bool

    def rgb(self):
        """The galaxy as an SDSS-like ``uint8`` colour composite (H, W, 3)."""
        return lupton_composite(*self.bands)


def render_galaxy(
    size: int = 64, r_dev: float = 5.0, barred: bool = False, disc_scale: float = 2.5, bulge_fraction: float = 0.4,
    bar_fraction: float = 0.3, bar_length: float | None = None, axis_ratio: float = 0.9, position_angle: float = 0.0,
    bar_angle: float | None = None, flux: float = 20000.0, noise: float = 1.0,
    center: tuple[float, float] | None = None, seed: int | np.random.Generator | None = None,
) -> SyntheticGalaxy:
    """Render a bulge + disc (+ bar) galaxy in g, r and i.

    Parameters
    ----------
    size : int
        Image side, pixels.
    r_dev : float
        Bulge de Vaucouleurs half-light radius, pixels.
    barred : bool
        Add a bar, whose light is taken from the disc (``bar_fraction`` of
        the disc flux), so the total flux does not change.
    disc_scale : float
        Disc half-light radius in units of ``r_dev``.
    bulge_fraction : float
        Bulge share of the total r-band flux.
    bar_fraction : float
        Share of the disc flux moved into the bar when ``barred``.
    bar_length : float, optional
        Full bar length in pixels; default ``2 * disc_scale * r_dev``
        (the disc's half-light diameter).
    axis_ratio : float
        Disc (and bulge) minor / major axis ratio.
    position_angle : float
        Disc major axis, degrees counter-clockwise from +x.
    bar_angle : float, optional
        Bar major axis, degrees; default 60 degrees from the disc's.
    flux : float
        Total r-band flux.
    noise : float
        Standard deviation of the Gaussian sky noise per pixel and band.
    center : tuple of float, optional
        ``(x, y)`` in pixels; the image centre by default.
    seed : int or numpy.random.Generator, optional
        Seeds the noise.

    Returns
    -------
    SyntheticGalaxy

    Examples
    --------
    >>> galaxy = render_galaxy(size=48, r_dev=4.0, barred=True, seed=0)
    >>> galaxy.bands.shape, galaxy.rgb().shape, bool(galaxy.bar_mask.any())
    ((3, 48, 48), (48, 48, 3), True)
    """
    rng = np.random.default_rng(seed)
    shape = (size, size)
    bar_length = 2.0 * disc_scale * r_dev if bar_length is None else bar_length
    bar_angle = position_angle + 60.0 if bar_angle is None else bar_angle
    disc_flux = flux * (1.0 - bulge_fraction)
    bar_flux = disc_flux * bar_fraction if barred else 0.0
    geometry = {"center": center, "axis_ratio": axis_ratio, "position_angle": position_angle}
    bulge = sersic_image(shape, r_dev, n=4.0, total_flux=flux * bulge_fraction, **geometry)
    disc = sersic_image(shape, disc_scale * r_dev, n=1.0, total_flux=disc_flux - bar_flux, **geometry)
    bar_geometry = {"center": center, "axis_ratio": 0.25, "position_angle": bar_angle}
    bar = bar_image(shape, bar_length, total_flux=bar_flux, **bar_geometry) if barred else np.zeros(shape)
    if barred:
        bar_mask = _elliptical_radius(shape, center, 0.25, bar_angle, 1)[:, :, 0, 0] < bar_length / 2.0
    else:
        bar_mask = np.zeros(shape, dtype=bool)
    bands = np.stack([
        bulge * BULGE_COLOURS[k] + (disc + bar) * DISC_COLOURS[k] for k in range(3)
    ])
    bands = bands + rng.normal(0.0, noise, bands.shape)
    return SyntheticGalaxy(bands=bands.astype(np.float32), bar_mask=bar_mask, r_dev=float(r_dev), barred=bool(barred))


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
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    step = scale / 3600
    wcs.wcs.cd = [[0.0, step], [step, 0.0]] if mirrored else [[-step, 0.0], [0.0, step]]
    return wcs


def write_fits_cube(path: str | Path, bands: np.ndarray, pixel_scale: float = SDSS_PIXEL_ARCSEC, ra: float = 180.0,
                    dec: float = 0.0) -> Path:
    """Write g, r, i bands as one FITS cube with a celestial WCS.

    Parameters
    ----------
    path : str or Path
    bands : numpy.ndarray
        ``(3, height, width)`` in the order g, r, i.
    pixel_scale : float
        Arcsec per pixel.
    ra, dec : float
        Sky position of the centre, degrees.

    Returns
    -------
    Path
    """
    from astropy.io import fits

    header = frame_wcs(ra, dec, bands.shape[1:], pixel_scale).to_header()
    for k, band in enumerate("gri", start=1):
        header[f"BAND{k}"] = (band, f"SDSS filter of plane {k}")
    path = Path(path)
    fits.PrimaryHDU(np.asarray(bands, dtype=np.float32), header=header).writeto(path, overwrite=True)
    return path


def write_bar_sample(out_dir: str | Path, n: int = 40, size: int = 64, suffix: str = ".png", test_fraction: float = 0.25,
                     seed: int = 0) -> Path:
    """Write a toy barred / unbarred image set in the layout of the real data.

    Half the galaxies are barred; bulge radius, disc orientation and
    inclination are drawn from the same distributions for both classes,
    so the bar is the only difference (no size shortcut).

    Parameters
    ----------
    out_dir : str or Path
        Receives ``images/`` and ``labels.csv``.
    n : int
        Number of galaxies.
    size : int
        Image side, pixels.
    suffix : str
        ``".png"`` (lossless) or ``".jpeg"``.
    test_fraction : float
        Share of galaxies marked ``split = test``.
    seed : int

    Returns
    -------
    Path
        The ``labels.csv`` with columns ``file, barred, ra, dec, split``.
    """
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    barred = np.arange(n) % 2 == 1
    rng.shuffle(barred)
    rows = []
    for k in range(n):
        galaxy = render_galaxy(
            size=size, r_dev=rng.uniform(0.05, 0.09) * size, barred=bool(barred[k]),
            axis_ratio=rng.uniform(0.7, 1.0), position_angle=rng.uniform(0.0, 180.0),
            bar_angle=rng.uniform(0.0, 180.0), seed=rng,
        )
        name = f"images/synthetic_{k:04d}{suffix}"
        Image.fromarray(galaxy.rgb()).save(out_dir / name)
        rows.append({
            "file": name, "barred": int(barred[k]), "ra": rng.uniform(150.0, 200.0),
            "dec": rng.uniform(0.0, 50.0), "split": "test" if rng.random() < test_fraction else "train",
        })
    labels = out_dir / "labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    return labels


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
