"""Cutouts as the networks read them."""

import numpy as np

from deepscope.galaxy import preprocess


def test_to_model_input_resamples_and_scales():
    rgb = np.full((80, 80, 3), 255, np.uint8)
    x = preprocess.to_model_input(rgb, 64)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    assert np.allclose(x, 1.0)


def test_model_pixels_are_the_input_before_scaling():
    rgb = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    pixels = preprocess.to_model_pixels(rgb, 64)
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 64, 64)
    np.testing.assert_array_equal(preprocess.pixels_to_input(pixels), preprocess.to_model_input(rgb, 64))
