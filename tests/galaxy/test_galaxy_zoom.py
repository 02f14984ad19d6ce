"""Turned, mirrored and zoomed cutouts (deepscope.galaxy.zoom), and the zooms that training draws."""

import math

import numpy as np
import pytest
import torch

from deepscope.galaxy.apparent_size import bright_fraction
from deepscope.galaxy.dataset import CutoutDataset
from deepscope.galaxy.train import zoomed_size_range
from deepscope.galaxy.zoom import (
    canonical_zooms,
    rescale_cutouts,
    sky_level_and_noise,
    transform_cutouts,
    zoom_cutouts,
)


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


def _pixels(radius=8.0, sky=0.05, noise=0.01, seed=0):
    """:func:`_galaxy` as 8-bit pixels."""
    image = _galaxy(radius=radius, sky=sky, noise=noise, seed=seed).numpy()
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def _bright_radius_of_pixels(pixels):
    return math.sqrt(float((pixels.mean(0) > 0.4 * 255).sum()) / math.pi)


def test_rescale_cutouts_zooms_each_cutout_by_its_own_factor():
    batch = np.concatenate([_pixels(seed=s) for s in range(3)])
    out = rescale_cutouts(batch, np.array([1.5, 1.0, 0.67]))
    assert out.dtype == np.uint8 and out.shape == batch.shape
    np.testing.assert_array_equal(out[1], batch[1])
    assert _bright_radius_of_pixels(out[0]) == pytest.approx(8.0 * 1.5, rel=0.08)
    assert _bright_radius_of_pixels(out[2]) == pytest.approx(8.0 * 0.67, rel=0.08)


@pytest.mark.parametrize("zoom", [0.625, 1.6])
def test_rescale_cutouts_draws_the_same_pixels_as_transform_cutouts(zoom):
    """Inside the original field the fast batch rescaling and the training transform agree: same centre, scale."""
    pixels = np.concatenate([_pixels(radius=r, seed=s) for s, r in enumerate((6.0, 11.0))])
    pixels[:, 0, 30:34, 20:44] = 255  # an off-centre bar, so that a shift of the centre shows
    fast = rescale_cutouts(pixels, np.full(2, zoom)).astype(np.float32)
    slow = zoom_cutouts(pixels, zoom) * 255
    inner = slice(16, 48)
    assert np.abs(fast - slow)[:, :, inner, inner].mean() < 2.0


def test_a_rescaled_wider_field_fades_into_the_cutouts_own_sky():
    pixels = _pixels(sky=0.2, noise=0.02)
    pixels[:, :, :, -3:] = 230  # a bright star on the edge: replicated, it would streak across the wider field
    wide = rescale_cutouts(pixels, np.array([0.6])).astype(np.float32) / 255
    corner = wide[0, :, :5, :5]
    assert float(corner.mean()) == pytest.approx(0.2 - 2 * 0.02, abs=0.02)  # not black, not the edge
    assert float(corner.std()) == pytest.approx(0.02, rel=0.4)  # with the sky's own noise
    assert float(wide[0, :, 30:34, -4:].mean()) < 0.5  # the star's light faded out beyond the field


def test_a_cutout_is_rescaled_the_same_alone_or_in_any_batch():
    rng = np.random.default_rng(2)
    batch = np.concatenate([_pixels(radius=r, seed=s) for s, r in enumerate(rng.uniform(4, 14, 9))])
    zooms = np.r_[rng.uniform(0.6, 1.6, len(batch) - 2), 1.5, 0.67]  # the last two: one side, zoomed both ways
    together = rescale_cutouts(batch, zooms)
    for i in range(len(batch)):
        np.testing.assert_array_equal(rescale_cutouts(batch[i:i + 1], zooms[i:i + 1])[0], together[i])
    np.testing.assert_array_equal(rescale_cutouts(batch, zooms), together)  # and again: nothing random
    assert rescale_cutouts(batch[:0], zooms[:0]).shape == (0, *batch.shape[1:])


def test_canonical_zooms_bring_every_galaxy_to_the_target_size():
    batch = np.concatenate([_pixels(radius=r, seed=s) for s, r in enumerate((6.0, 9.0, 13.0))])
    target = float(bright_fraction(_pixels(radius=9.0))[0])
    scale = {"bright_fraction": target, "zoom_range": [0.6, 1.6]}
    zooms = canonical_zooms(bright_fraction(batch), scale)
    assert zooms[0] > 1 > zooms[2]
    sizes = bright_fraction(rescale_cutouts(batch, zooms))
    before = bright_fraction(batch)
    assert before.max() / before.min() > 4 and sizes.max() / sizes.min() < 1.25  # one apparent size
    far = canonical_zooms(bright_fraction(_pixels(radius=2.0)), scale)  # needs more than 1.6x: clipped
    assert far.tolist() == [1.6]
