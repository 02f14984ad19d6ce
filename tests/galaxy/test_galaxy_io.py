"""Galaxy readers: JPEG/PNG cutouts, FITS g, r, i composites."""

import gzip

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from synthetic_galaxies import frame_wcs, write_fits_cube

from deepscope.errors import FormatError, InputError
from deepscope.galaxy import io
from deepscope.galaxy.cutouts import composite


def _rgb_image(seed=0, shape=(24, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- JPEG and PNG ------------------------------------------------------------


def test_png_round_trip_is_exact(tmp_path):
    image = _rgb_image()
    Image.fromarray(image).save(tmp_path / "cutout.png")
    back = io.read_galaxy_image(tmp_path / "cutout.png")
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, image)


def test_jpeg_round_trip_is_close(tmp_path):
    yy, xx = np.mgrid[:64, :64]
    smooth = (255 * np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / 200.0)).astype(np.uint8)
    image = np.stack([smooth, smooth // 2, smooth // 3], axis=-1)
    Image.fromarray(image).save(tmp_path / "cutout.jpeg", quality=95)
    back = io.read_galaxy_image(tmp_path / "cutout.jpeg")
    assert back.shape == (64, 64, 3)
    assert np.abs(back.astype(int) - image).mean() < 2.0


def test_greyscale_png_becomes_rgb(tmp_path):
    Image.fromarray(_rgb_image(shape=(16, 16))).save(tmp_path / "grey.png")
    back = io.read_galaxy_image(tmp_path / "grey.png")
    assert back.shape == (16, 16, 3)
    np.testing.assert_array_equal(back[..., 0], back[..., 2])


def test_mislabelled_png_is_read_by_its_magic_bytes(tmp_path):
    image = _rgb_image()
    Image.fromarray(image).save(tmp_path / "cutout.png")
    (tmp_path / "cutout.png").rename(tmp_path / "cutout.jpeg")
    assert io.sniff_format(tmp_path / "cutout.jpeg") == "png"
    np.testing.assert_array_equal(io.read_galaxy_image(tmp_path / "cutout.jpeg"), image)


def test_truncated_jpeg_is_rejected(tmp_path):
    Image.fromarray(_rgb_image(shape=(64, 64, 3))).save(tmp_path / "full.jpeg")
    data = (tmp_path / "full.jpeg").read_bytes()
    (tmp_path / "cut.jpeg").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.jpeg: cannot decode image"):
        io.read_galaxy_image(tmp_path / "cut.jpeg")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"file,barred\na.jpeg,1\n", "not a supported galaxy image")],
)
def test_non_image_files_are_rejected(tmp_path, content, message):
    path = tmp_path / "notes.jpeg"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as info:
        io.read_galaxy_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="cannot open"):
        io.read_galaxy_image(tmp_path / "absent.png")


def test_galaxy_suffixes_cover_fits_and_images():
    for suffix in (".jpeg", ".jpg", ".png", ".fits", ".fits.gz", ".fz"):
        assert suffix in io.GALAXY_SUFFIXES


# --- Real SDSS cutouts -------------------------------------------------------


def test_real_sdss_jpegs(bars_dir):
    paths = sorted((bars_dir / "images").glob("*.jpeg"))[:5]
    assert len(paths) == 5
    for path in paths:
        image = io.read_galaxy_image(path)
        assert image.shape == (64, 64, 3)
        assert image.dtype == np.uint8
        # A galaxy is centred: the middle is brighter than the corners.
        centre = image[28:36, 28:36].mean()
        corners = np.mean([image[:6, :6].mean(), image[:6, -6:].mean(), image[-6:, :6].mean(), image[-6:, -6:].mean()])
        assert centre > corners + 20


# --- FITS --------------------------------------------------------------------


def test_fits_cube_becomes_a_colour_composite(cube_path, galaxy):
    rgb = io.read_galaxy_image(cube_path)
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    # Bright centre, dark sky.
    assert rgb[22:26, 22:26].mean() > 150
    assert rgb[:4, :4].mean() < 40
    # The galaxy is redder in i than in g, so red (i) outshines blue (g).
    assert rgb[20:28, 20:28, 0].mean() > rgb[20:28, 20:28, 2].mean()


def test_band_order_is_i_red_r_green_g_blue(tmp_path):
    yy, xx = np.mgrid[:32, :32]
    blob = np.exp(-((xx - 16.0) ** 2 + (yy - 16.0) ** 2) / 30.0).astype(np.float32)
    zero = np.zeros_like(blob)
    for plane, channel in ((2, 0), (1, 1), (0, 2)):
        bands = [zero, zero, zero]
        bands[plane] = blob
        rgb = io.read_galaxy_image(write_fits_cube(tmp_path / f"plane{plane}.fits", np.stack(bands)))
        assert int(np.argmax(rgb[16, 16])) == channel
        assert rgb[16, 16, channel] > 200


def test_fits_cube_pixel_scale_from_wcs(cube_path):
    _, header = io.read_fits_bands(cube_path)
    assert io.fits_pixel_scale(header) == pytest.approx(0.396, rel=1e-6)


def test_fits_pixel_scale_from_cdelt_and_none_without_wcs():
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CDELT1"], header["CDELT2"] = -0.25 / 3600, 0.25 / 3600
    assert io.fits_pixel_scale(header) == pytest.approx(0.25)
    assert io.fits_pixel_scale(fits.Header()) is None


def test_gzipped_fits_cube(tmp_path, cube_path):
    zipped = tmp_path / "galaxy.fits.gz"
    zipped.write_bytes(gzip.compress(cube_path.read_bytes()))
    assert io.sniff_format(zipped) == "gzip"
    np.testing.assert_array_equal(io.read_galaxy_image(zipped), io.read_galaxy_image(cube_path))


def test_cube_in_an_extension_hdu(tmp_path, galaxy):
    path = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(galaxy.bands)]).writeto(path)
    assert io.read_galaxy_image(path).shape == (48, 48, 3)


def test_tile_compressed_fits_cube(tmp_path, galaxy):
    path = tmp_path / "galaxy.fits.fz"
    header = frame_wcs(180.0, 0.0, (48, 48)).to_header()
    compressed = fits.CompImageHDU(galaxy.bands, header=header, quantize_level=-0.01)
    fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(path)
    rgb = io.read_galaxy_image(path)
    assert rgb.shape == (48, 48, 3)
    assert rgb[22:26, 22:26].mean() > 150


def test_nan_pixels_are_filled(tmp_path, galaxy):
    bands = galaxy.bands.copy()
    bands[:, :5, :] = np.nan
    rgb = io.read_galaxy_image(write_fits_cube(tmp_path / "nan.fits", bands))
    assert rgb.shape == (48, 48, 3)
    assert rgb[:5].mean() < 40


def test_single_band_fits_asks_for_three_bands(tmp_path, galaxy):
    path = tmp_path / "r.fits"
    fits.PrimaryHDU(galaxy.bands[1], header=frame_wcs(180.0, 0.0, (48, 48)).to_header()).writeto(path)
    with pytest.raises(FormatError, match=r"r\.fits: single-band FITS image; .*three bands \(g, r, i\)"):
        io.read_galaxy_image(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((4, 16, 16), np.float32), r"expected a FITS cube of shape \(3, height, width\).*\(4, 16, 16\)"),
        (np.zeros((16, 16, 3), np.float32), r"expected a FITS cube.*\(16, 16, 3\)"),
        (np.zeros(16, np.float32), r"expected a FITS cube.*\(16,\)"),
        (np.full((3, 16, 16), np.nan, np.float32), "g plane has no finite pixels"),
    ],
)
def test_wrongly_shaped_or_empty_fits_is_rejected(tmp_path, data, message):
    path = tmp_path / "bad.fits"
    fits.PrimaryHDU(data).writeto(path)
    with pytest.raises(FormatError, match=message) as info:
        io.read_galaxy_image(path)
    assert str(path) in str(info.value)


def test_fits_without_image_data_is_rejected(tmp_path):
    path = tmp_path / "table.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="ra", format="D", array=np.arange(3.0))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(FormatError, match="no image data"):
        io.read_galaxy_image(path)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_fits_is_rejected(tmp_path, cube_path, keep):
    data = cube_path.read_bytes()
    path = tmp_path / "cut.fits"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FormatError, match=r"cut\.fits: (FITS file is truncated|cannot read FITS image)"):
        io.read_galaxy_image(path)


def test_gzip_of_something_else_is_rejected(tmp_path):
    path = tmp_path / "notes.fits.gz"
    path.write_bytes(gzip.compress(b"just some text, not FITS"))
    with pytest.raises(FormatError, match=r"notes\.fits\.gz: cannot read FITS image"):
        io.read_galaxy_image(path)


def test_single_band_reader_refuses_a_cube(cube_path):
    message = r"galaxy\.fits: expected a 2-D single-band FITS image, got shape \(3, 48, 48\)"
    with pytest.raises(FormatError, match=message):
        io.read_fits_band(cube_path)


def test_composite_rejects_mismatched_arrays():
    with pytest.raises(InputError, match="one shape"):
        composite.lupton_composite(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((5, 4)))


def test_blank_image_renders_black():
    rgb = composite.lupton_composite(*np.zeros((3, 8, 8)))
    assert rgb.shape == (8, 8, 3) and not rgb.any()
