"""Array work: model input, apparent size, cutouts scaled to the de Vaucouleurs radius."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from sklearn.metrics import roc_auc_score

from deepscope.errors import FormatError, InputError
from deepscope.galaxy import io, preprocess
from deepscope.galaxy.evaluate import size_matched_indices
from deepscope.galaxy.synthetic import render_galaxy, write_fits_bands, write_fits_cube


def test_to_model_input_resamples_and_scales():
    rgb = np.full((80, 80, 3), 255, np.uint8)
    x = preprocess.to_model_input(rgb, 64)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    assert np.allclose(x, 1.0)


def test_size_confound_on_real_cutouts(bars_dir):
    table = pd.read_csv(bars_dir / "labels.csv").groupby("barred").head(150)
    sizes = np.array([preprocess.bright_pixel_count(io.read_galaxy_image(bars_dir / f)) for f in table["file"]])
    labels = table["barred"].to_numpy()
    keep = size_matched_indices(sizes, labels)
    assert roc_auc_score(labels, sizes) > 0.65  # DATA.md measures ~0.78 on the whole set
    assert abs(roc_auc_score(labels[keep], sizes[keep]) - 0.5) < 0.1


def test_real_jpeg_scaled_to_its_radius(bars_dir):
    path = sorted((bars_dir / "images").glob("*.jpeg"))[0]
    image = io.read_galaxy_image(path)
    # The bundled cutouts are 0.3"/px: a 1.92" radius at 10 radii is exactly
    # the 64 px field, so halving the size must match 2x2 block averages.
    scaled = preprocess.scale_to_radius(image, radius_arcsec=1.92, pixel_scale=0.3, size=32)
    assert scaled.shape == (32, 32, 3) and scaled.dtype == np.uint8
    blocks = image.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(scaled.astype(float) - blocks).mean() < 6


def test_scaled_cutouts_of_near_and_far_galaxy_look_alike(tmp_path):
    # The same galaxy at two distances: twice as large in pixels. Scaled to
    # its radius, it must look the same (both well resolved, so pixel
    # sampling does not dominate the difference).
    images, raw = [], []
    for r_dev in (5.0, 10.0):
        galaxy = render_galaxy(size=200, r_dev=r_dev, barred=True, noise=0.1, bar_angle=30.0, seed=0)
        path = write_fits_cube(tmp_path / f"r{r_dev}.fits", galaxy.bands, pixel_scale=0.396)
        images.append(preprocess.fits_cutout(path, radius_arcsec=r_dev * 0.396, n_radii=10, size=48).astype(float))
        raw.append(io.read_galaxy_image(path)[50:150, 50:150].astype(float))
    assert images[0].shape == (48, 48, 3)
    scaled_difference = np.abs(images[0] - images[1]).mean()
    assert scaled_difference < 2.0
    # Unscaled, the two differ a lot.
    assert np.abs(raw[0] - raw[1]).mean() > 5 * scaled_difference


def test_fits_cutout_from_band_files_at_a_sky_position(tmp_path):
    galaxy = render_galaxy(size=96, r_dev=4.0, center=(60.0, 40.0), noise=0.1, seed=1)
    paths = write_fits_bands(tmp_path, galaxy.bands, ra=150.0, dec=2.0)
    # The galaxy sits at +12.5 px in x and -7.5 px in y from the centre; the
    # WCS has RA decreasing with x (east left) and dec increasing with y.
    ra = 150.0 - 12.5 * 0.396 / 3600 / np.cos(np.deg2rad(2.0))
    dec = 2.0 - 7.5 * 0.396 / 3600
    centred = preprocess.fits_cutout(paths, radius_arcsec=4.0 * 0.396, position=(ra, dec), size=32)
    off = preprocess.fits_cutout(paths, radius_arcsec=4.0 * 0.396, size=32)
    brightest = np.unravel_index(np.argmax(centred.sum(axis=-1)), (32, 32))
    assert abs(brightest[0] - 15.5) <= 1.5 and abs(brightest[1] - 15.5) <= 1.5
    assert centred[14:18, 14:18].mean() > off[14:18, 14:18].mean() + 30


def test_fits_cutout_needs_a_pixel_scale(tmp_path, galaxy):
    path = tmp_path / "nowcs.fits"
    fits.PrimaryHDU(galaxy.bands).writeto(path)
    with pytest.raises(FormatError, match=r"nowcs\.fits: no celestial WCS .*pixel scale"):
        preprocess.fits_cutout(path, radius_arcsec=2.0)
    assert preprocess.fits_cutout(path, radius_arcsec=2.0, pixel_scale=0.396, size=16).shape == (16, 16, 3)


def test_fits_cutout_wants_one_or_three_paths(cube_path):
    with pytest.raises(InputError, match="three band files"):
        preprocess.fits_cutout([cube_path, cube_path], radius_arcsec=2.0)


def test_resample_square_identity_and_outside_fill():
    image = np.arange(64.0).reshape(8, 8)
    np.testing.assert_allclose(preprocess.resample_square(image, 8, size=8), image)
    # A field twice the image: the border is outside and takes the fill.
    wide = preprocess.resample_square(image, 32, size=8, fill=-1.0)
    assert wide[0, 0] == -1.0 and wide[4, 4] != -1.0


def test_crop_before_filtering_changes_nothing():
    # Resampling a small field of a large image equals resampling the same
    # field cut out generously by hand: the crop is only a speed-up.
    image = np.random.default_rng(0).normal(size=(300, 400))
    small = preprocess.resample_square(image, 40, size=10, center=(250.0, 120.0))
    by_hand = preprocess.resample_square(image[60:180, 190:310], 40, size=10, center=(60.0, 60.0))
    np.testing.assert_allclose(small, by_hand, atol=1e-12)
    off_image = preprocess.resample_square(image, 10, size=4, center=(-100.0, -100.0), fill=7.0)
    assert (off_image == 7.0).all()


def test_resample_keeps_uint8_and_channels():
    image = np.full((20, 30, 3), 200, dtype=np.uint8)
    out = preprocess.resample_square(image, 10, size=5)
    assert out.dtype == np.uint8 and out.shape == (5, 5, 3)
    assert (out == 200).all()


def test_downsampling_is_antialiased():
    # A one-pixel checkerboard has no low frequencies: shrinking it must
    # give its mean, not an alias pattern.
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(float)
    out = preprocess.resample_square(checker, 64, size=16)
    assert np.abs(out[2:-2, 2:-2] - 0.5).max() < 0.05


@pytest.mark.parametrize("kwargs", [{"radius_arcsec": 0.0}, {"radius_arcsec": np.nan}, {"pixel_scale": -1.0}])
def test_scale_to_radius_rejects_bad_numbers(kwargs):
    args = {"radius_arcsec": 2.0, "pixel_scale": 0.4, **kwargs}
    with pytest.raises(InputError, match="must be a positive number"):
        preprocess.scale_to_radius(np.zeros((8, 8)), **args)
