"""A cutout gives the same answer whatever its pixel depth or colour mode, and giant images are refused early."""

import numpy as np
import pytest
from PIL import Image

from deepscope.errors import FormatError
from deepscope.galaxy.io import MAX_CUTOUT_PIXELS, read_rgb_image
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.samples import sample_dir

CUTOUTS = sorted(sample_dir("galaxy", "bars", "images").glob("*.jpeg"))[:6]


@pytest.fixture(scope="module")
def predictor():
    # fp32: the int8 export turns a one-level pixel difference (a CMYK JPEG at quality 100 round-trips RGB
    # within 1 with Pillow 13's libjpeg) into p_bar steps of up to 0.03; fp32 moves p_bar by under 0.006
    return GalaxyPredictor.from_checkpoint(engine="onnx")


def _p_bar(predictor, path):
    return predictor.rows([predictor.load_input(path)])[0]["p_bar"]


def _variants(rgb, grey, folder):
    """The same cutout in each container and mode a survey may write (name -> (path, reference path))."""
    paths = {}

    def save(name, image, **kwargs):
        path = folder / name
        image.save(path, **kwargs)
        return path

    rgb_png = save("rgb.png", Image.fromarray(rgb))
    grey_png = save("grey8.png", Image.fromarray(grey))
    paths["16-bit grey PNG"] = (save("grey16.png", Image.fromarray(grey.astype(np.uint16) * 257)), grey_png)
    paths["8-bit values in a 16-bit PNG"] = (save("grey16low.png", Image.fromarray(grey.astype(np.uint16))), grey_png)
    alpha = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    paths["RGBA PNG"] = (save("rgba.png", Image.fromarray(alpha, "RGBA")), rgb_png)
    paths["CMYK JPEG"] = (save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), quality=100), rgb_png)
    # 256 colours lose information of their own; the reader must show what a viewer shows.
    palette = Image.fromarray(rgb).quantize(256, dither=Image.Dither.NONE)
    paths["palette PNG"] = (save("palette.png", palette), save("palette_rgb.png", palette.convert("RGB")))
    return paths


@pytest.mark.parametrize("cutout", CUTOUTS, ids=[c.stem for c in CUTOUTS])
def test_every_mode_gives_the_same_p_bar(cutout, predictor, tmp_path):
    rgb = np.asarray(Image.open(cutout).convert("RGB"))
    grey = np.asarray(Image.open(cutout).convert("L"))
    for name, (path, reference) in _variants(rgb, grey, tmp_path).items():
        assert abs(_p_bar(predictor, path) - _p_bar(predictor, reference)) <= 0.01, name


def test_16_bit_grey_is_scaled_not_saturated(tmp_path):
    grey = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(grey * 257).save(tmp_path / "g16.png")
    read = read_rgb_image(tmp_path / "g16.png")
    assert read.dtype == np.uint8 and read.shape == (16, 16, 3)
    assert np.array_equal(read[..., 0], grey.astype(np.uint8))


def test_a_giant_image_is_refused_from_its_header(tmp_path):
    side = int(np.sqrt(MAX_CUTOUT_PIXELS)) + 1
    Image.new("L", (side, side)).save(tmp_path / "frame.png")
    with pytest.raises(FormatError, match=rf"frame.png: {side} x {side} pixels is more than a cutout may have"):
        read_rgb_image(tmp_path / "frame.png")
