"""Cutouts turned, mirrored and zoomed as a differently cut field would show them.

A zoom below 1 shows the galaxy smaller in a wider field, as a radius-scaled
cutout of a smaller galaxy does; what the wider field adds beyond the
original cutout is not known, so the cutout's edge light fades into its own
sky level and noise there (:data:`FADE_PIXELS`), rather than into black
zeros that no real cutout has. Training draws turns, mirrors and zooms with
:func:`transform_cutouts` (``galaxy train --zoom``); the benchmarks zoom
held-out cutouts with :func:`zoom_cutouts`.
"""

from __future__ import annotations

import math

import numpy as np

# Light beyond a cutout's field falls to the sky level over this scale (e-folding, in the cutout's
# pixels): 3 arcsec in the shared SDSS cutouts, about the outer scale length of their discs.
FADE_PIXELS = 10.0


def sky_level_and_noise(images):
    """The sky level and pixel noise of each image and channel.

    Parameters
    ----------
    images : torch.Tensor
        Float ``(N, C, S, S)``.

    Returns
    -------
    level, noise : torch.Tensor
        ``(N, C, 1, 1)`` each: the 2nd percentile of the pixels, and the
        robust spread of neighbouring-pixel differences along the edge
        divided by sqrt 2.
    """
    import torch

    n, c, _, _ = images.shape
    flat = images.reshape(n, c, -1)
    level = flat.kthvalue(1 + int(0.02 * (flat.shape[2] - 1)), dim=2).values
    edges = [images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1]]
    steps = torch.cat([e[..., 1:] - e[..., :-1] for e in edges], dim=2)
    centred = steps - steps.median(dim=2, keepdim=True).values
    noise = 1.4826 * centred.abs().median(dim=2).values / math.sqrt(2)
    return level[..., None, None], noise[..., None, None]


def _blur(images, sigma):
    """Separable Gaussian blur of ``(N, C, S, S)`` with edge pixels replicated."""
    import torch
    import torch.nn.functional as F

    c = images.shape[1]
    radius = int(math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-offsets**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(c, 1)
    padded = F.pad(images, (radius,) * 4, mode="replicate")
    blurred = F.conv2d(padded, kernel[:, None, None, :], groups=c)
    return F.conv2d(blurred, kernel[:, None, :, None], groups=c)


def transform_cutouts(images, zoom: float = 1.0, angle: float = 0.0, mirror: bool = False, generator=None,
                      sky=None):
    """Cutouts turned by ``angle``, mirrored and zoomed by ``zoom`` about their centres.

    Parameters
    ----------
    images : torch.Tensor
        Float ``(N, C, S, S)``, one transform for all.
    zoom : float
        1.5 shows the galaxy 1.5x as large (the central part enlarged), 0.67
        smaller in a wider field. Shrinking blurs first, so that it does not alias.
    angle : float
        Counter-clockwise turn in radians.
    mirror : bool
        Mirror left to right before turning.
    generator : torch.Generator, optional
        Draws the sky noise added beyond the original field.
    sky : tuple of torch.Tensor, optional
        The images' :func:`sky_level_and_noise`, when already measured.

    Returns
    -------
    torch.Tensor
        Same shape; beyond the original field, the edge light fades into the
        image's own sky level (:func:`sky_level_and_noise`) over
        :data:`FADE_PIXELS`, plus sky noise.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 3, 16, 16)
    >>> bool(torch.allclose(transform_cutouts(x), x, atol=1e-5))
    True
    >>> tuple(transform_cutouts(x, zoom=0.6, angle=1.0, mirror=True).shape)
    (2, 3, 16, 16)
    """
    import torch
    import torch.nn.functional as F

    n, _, size, _ = images.shape
    level, noise = sky_level_and_noise(images) if sky is None else sky
    sigma = 0.5 * math.sqrt(max(1 / min(zoom, 1.0) ** 2 - 1, 0.0))
    source = _blur(images, sigma) if sigma > 0.05 else images
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    flip = -1.0 if mirror else 1.0
    theta = torch.tensor([[cos * flip, -sin, 0.0], [sin * flip, cos, 0.0]], dtype=images.dtype).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    beyond = (grid.abs() - 1).clamp(min=0).pow(2).sum(-1).sqrt()[:, None] * size / 2
    if not bool((beyond > 0).any()):
        return out
    sky = noise * torch.randn(out.shape, generator=generator, dtype=images.dtype) * (beyond > 0).to(images.dtype)
    return level + (out - level) * torch.exp(-beyond / FADE_PIXELS) + sky


def zoom_cutouts(images: np.ndarray, zoom: float, seed: int = 0) -> np.ndarray:
    """Cutouts zoomed about their centres, as 8-bit cutouts of another field would hold them.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, C, S, S)``, ``uint8`` or floats in [0, 1].
    zoom : float
        As :func:`transform_cutouts`.
    seed : int
        Seeds the sky noise, so that a zoomed split repeats.

    Returns
    -------
    numpy.ndarray
        ``float32`` in [0, 1], rounded to 1/255.
    """
    import torch

    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    out = transform_cutouts(x, zoom, generator=torch.Generator().manual_seed(seed))
    return (torch.round(out.clamp(0, 1) * 255) / 255).numpy()
