"""Turned, mirrored and zoomed cutouts (deepscope.galaxy.zoom), and the zooms that training draws."""

import math

import numpy as np
import pytest
import torch

from deepscope.galaxy.apparent_size import bright_fraction
from deepscope.galaxy.dataset import CutoutDataset
from deepscope.galaxy.train import zoomed_size_range
from deepscope.galaxy.zoom import sky_level_and_noise, transform_cutouts, zoom_cutouts


def _galaxy(size=64, radius=8.0, sky=0.05, noise=0.01, seed=0):
    """A bright disc of ``radius`` px on a noisy sky, (1, 3, S, S) float32."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    disc = 0.8 * (np.hypot(x, y) <= radius)
    image = sky + disc + noise * rng.standard_normal((3, size, size))
    return torch.from_numpy(image[None].astype(np.float32))


def _bright_radius(image):
    """Radius of the bright part, from its area."""
    return math.sqrt(float((image[0].mean(0) > 0.4).sum()) / math.pi)


@pytest.mark.parametrize("zoom", [0.6, 0.67, 1.5, 1.6])
def test_zoom_scales_the_galaxy_by_the_factor(zoom):
    radius = _bright_radius(transform_cutouts(_galaxy(), zoom))
    assert radius == pytest.approx(8.0 * zoom, rel=0.1)


def test_no_zoom_and_no_turn_leave_the_cutout_as_it_is():
    image = _galaxy()
    assert torch.allclose(transform_cutouts(image), image, atol=1e-5)


def test_a_quarter_turn_is_a_quarter_turn_of_the_pixels():
    image = torch.rand(1, 3, 16, 16)
    turned = transform_cutouts(image, angle=math.pi / 2)
    assert any(torch.allclose(turned, torch.rot90(image, k, dims=(2, 3)), atol=1e-5) for k in (1, 3))
    mirrored = transform_cutouts(image, mirror=True)
    assert torch.allclose(mirrored, torch.flip(image, dims=(3,)), atol=1e-5)


def test_a_wider_field_fades_into_the_cutouts_own_sky_not_black():
    image = _galaxy(sky=0.05, noise=0.01)
    wide = transform_cutouts(image, 0.6, generator=torch.Generator().manual_seed(0))
    level, noise = sky_level_and_noise(image)
    assert float(level.mean()) == pytest.approx(0.05 - 2 * 0.01, abs=0.003)  # the 2nd percentile of the sky
    assert float(noise.mean()) == pytest.approx(0.01, rel=0.2)
    corner = wide[0, :, :6, :6]  # beyond the original field
    assert float(corner.mean()) == pytest.approx(float(level.mean()), abs=0.006)  # the edge light has faded
    assert float(corner.std()) == pytest.approx(0.01, rel=0.3)


def test_zoom_cutouts_repeats_with_its_seed_and_takes_8_bit_cutouts():
    pixels = np.clip(np.rint(_galaxy().numpy() * 255), 0, 255).astype(np.uint8)
    first, again = zoom_cutouts(pixels, 0.67, seed=3), zoom_cutouts(pixels, 0.67, seed=3)
    assert first.dtype == np.float32 and np.array_equal(first, again)
    assert np.allclose(first * 255, np.rint(first * 255), atol=1e-3)  # on the 8-bit levels
    assert not np.array_equal(first, zoom_cutouts(pixels, 0.67, seed=4))  # the sky noise is drawn


def test_training_draws_zooms_inside_its_range():
    images = _galaxy().numpy()
    data = CutoutDataset(np.repeat(images, 2, 0), np.array([0, 1]), augment=True, zoom_range=(0.5, 0.5))
    torch.manual_seed(0)
    radii = [_bright_radius(data[i % 2][0][None]) for i in range(8)]
    assert radii == pytest.approx([4.0] * 8, rel=0.15)  # turned at random, always half the size
    as_cut = CutoutDataset(images, np.array([0]), augment=True, zoom_range=(1.0, 1.0))
    assert _bright_radius(as_cut[0][0][None]) == pytest.approx(8.0, rel=0.1)


def test_the_trained_size_range_covers_the_zooms_drawn():
    images = np.concatenate([_galaxy(radius=r, seed=i).numpy() for i, r in enumerate(np.linspace(6, 14, 40))])
    as_cut = zoomed_size_range(images, (1.0, 1.0))
    zoomed = zoomed_size_range(images, (0.6, 1.6))
    fractions = bright_fraction(images)
    assert as_cut["low"] == pytest.approx(np.percentile(fractions, 1), rel=1e-3)
    assert zoomed["low"] < 0.5 * as_cut["low"] and zoomed["high"] > 2 * as_cut["high"]
