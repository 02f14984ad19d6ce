"""Synthetic galaxies: the profiles have the physics they claim."""

import numpy as np
import pandas as pd
import pytest

from synthetic_galaxies import bar_image, frame_wcs, offset_positions, render_galaxy, write_bar_sample, write_fits_cube

from deepscope.core.manifest import manifest_from_labels
from deepscope.galaxy import io
from deepscope.galaxy.synthetic import sersic_bn, sersic_image, synthetic_catalog


def _radius(shape, center=None):
    yy, xx = np.indices(shape)
    cy, cx = ((shape[0] - 1) / 2, (shape[1] - 1) / 2) if center is None else center[::-1]
    return np.hypot(xx - cx, yy - cy)


@pytest.mark.parametrize(("n", "expected"), [(1.0, 1.678), (4.0, 7.669)])
def test_sersic_bn_known_values(n, expected):
    assert sersic_bn(n) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("n", [1.0, 4.0])
def test_half_the_light_lies_within_r_eff(n):
    image = sersic_image((241, 241), r_eff=8.0, n=n)
    radius = _radius(image.shape)
    # Flux inside r_eff over the analytic total (1): the n = 4 profile has
    # wings far beyond the image, so compare with the total, not the sum.
    assert image[radius <= 8.0].sum() == pytest.approx(0.5, abs=0.02)
    assert image.sum() == pytest.approx(1.0, abs=0.03)


def test_de_vaucouleurs_is_more_concentrated_than_exponential():
    radius = _radius((121, 121))
    dev = sersic_image((121, 121), r_eff=8.0, n=4.0)
    exp = sersic_image((121, 121), r_eff=8.0, n=1.0)
    assert dev[radius <= 2].sum() > 2 * exp[radius <= 2].sum()


def test_elliptical_profile_follows_its_position_angle():
    image = sersic_image((81, 81), r_eff=10.0, n=1.0, axis_ratio=0.4, position_angle=90.0)
    # Major axis along y: the profile falls more slowly along rows than columns.
    assert image[40 + 15, 40] > 3 * image[40, 40 + 15]


def test_bar_is_elongated_with_known_flux_and_mask():
    bar = bar_image((64, 64), length=30.0, total_flux=5.0, axis_ratio=0.25, position_angle=0.0)
    assert bar.sum() == pytest.approx(5.0)
    yy, xx = np.indices(bar.shape)
    weights = bar / bar.sum()
    var_x = (weights * (xx - 31.5) ** 2).sum()
    var_y = (weights * (yy - 31.5) ** 2).sum()
    assert var_x > 10 * var_y
    assert bar[31:33, 31 + 16:].sum() == 0  # nothing beyond the bar's end


def test_bar_keeps_flux_and_size_but_changes_shape():
    kwargs = {"size": 64, "r_dev": 4.0, "noise": 0.0, "position_angle": 10.0, "bar_angle": 70.0}
    barred = render_galaxy(barred=True, **kwargs)
    plain = render_galaxy(barred=False, **kwargs)
    assert barred.barred and not plain.barred
    np.testing.assert_allclose(barred.bands.sum(axis=(1, 2)), plain.bands.sum(axis=(1, 2)), rtol=0.02)
    assert barred.bar_mask.sum() > 20 and not plain.bar_mask.any()
    difference = np.abs(barred.bands - plain.bands).sum(axis=0)
    # The change is concentrated on the bar.
    assert difference[barred.bar_mask].mean() > 5 * difference[~barred.bar_mask].mean()


def test_colours_and_noise_are_seeded():
    a = render_galaxy(size=32, seed=5)
    b = render_galaxy(size=32, seed=5)
    c = render_galaxy(size=32, seed=6)
    np.testing.assert_array_equal(a.bands, b.bands)
    assert not np.array_equal(a.bands, c.bands)
    g, r, i = a.bands.sum(axis=(1, 2))
    assert g < r < i  # red galaxies, as in SDSS
    sky = a.bands[:, :4, :4]
    assert sky.std() == pytest.approx(1.0, rel=0.3)


def test_rgb_is_an_sdss_like_cutout():
    rgb = render_galaxy(size=48, r_dev=4.0, barred=True, seed=0).rgb()
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    assert rgb[22:26, 22:26].mean() > 150 > rgb[:6, :6].mean()


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError, match="axis_ratio"):
        sersic_image((8, 8), r_eff=2.0, axis_ratio=0.0)
    with pytest.raises(ValueError, match="lengths must be positive"):
        bar_image((8, 8), length=-1.0)


def test_frame_wcs_centre_and_scale():
    header = frame_wcs(10.0, -20.0, (50, 40), scale=0.5).to_header()
    ra, dec = frame_wcs(10.0, -20.0, (50, 40), scale=0.5).pixel_to_world_values(19.5, 24.5)
    assert (float(ra), float(dec)) == pytest.approx((10.0, -20.0))
    assert io.fits_pixel_scale(header) == pytest.approx(0.5)


def test_fits_cube_round_trip(tmp_path):
    galaxy = render_galaxy(size=32, seed=0)
    cube = write_fits_cube(tmp_path / "cube.fits", galaxy.bands)
    bands, header = io.read_fits_bands(cube)
    np.testing.assert_array_equal(bands, galaxy.bands)
    assert [header["BAND1"], header["BAND2"], header["BAND3"]] == ["g", "r", "i"]


def test_synthetic_catalog_spans_the_cuts():
    table = synthetic_catalog(n=300, seed=0)
    assert len(table) == 300 and table["objID"].is_unique
    good = table["petroMag_r"] > 0
    assert (table.loc[good, "petroMag_r"] < 14).any() and (table.loc[good, "petroMag_r"] > 17.4).any()
    assert (table["z"] > 0.2).any() and (table["petroR50_r"] < 5).any() and (table["petroR50_r"] > 30).any()
    assert (table["petroMag_r"] == -9999).sum() == 6


def test_offset_positions_are_exact():
    from astropy.coordinates import SkyCoord

    ra, dec = np.array([0.0, 120.0, 359.9]), np.array([0.0, 89.9, -45.0])
    new_ra, new_dec = offset_positions(ra, dec, [1.0, 2.0, 3.0], seed=0)
    separation = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(new_ra, new_dec, unit="deg")).arcsec
    np.testing.assert_allclose(separation, [1.0, 2.0, 3.0], rtol=1e-6)


def test_bar_sample_is_balanced_readable_and_a_manifest(tmp_path):
    labels_path = write_bar_sample(tmp_path, n=12, size=32, seed=0)
    labels = pd.read_csv(labels_path)
    assert labels["barred"].sum() == 6
    assert set(labels["split"]) <= {"train", "test"}
    manifest = manifest_from_labels(labels_path, required=["barred"])
    for path in manifest["path"]:
        assert io.read_galaxy_image(path).shape == (32, 32, 3)
