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

import functools
import math

import numpy as np

# Light beyond a cutout's field falls to the sky level over this scale (e-folding, in the cutout's
# pixels): 3 arcsec in the shared SDSS cutouts, about the outer scale length of their discs.
FADE_PIXELS = 10.0
# Fixed sky-noise fields that rescale_cutouts draws a shrunk cutout's wider field from.
N_NOISE_FIELDS = 8


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
    return _sky_level(images)[..., None, None], _edge_noise(images)[..., None, None]


def _sky_level(images):
    """``(N, C)``: the 2nd percentile of each image's pixels in each channel.

    ``images`` is a ``(N, C, S, S)`` tensor or array (8-bit pixels too); the
    value of rank ``1 + int(0.02 * (pixels - 1))``, found by numpy's selection.
    """
    import torch

    as_tensor = isinstance(images, torch.Tensor)
    array = images.numpy() if as_tensor else images
    values = array.reshape(*array.shape[:2], -1)
    rank = int(0.02 * (values.shape[2] - 1))
    level = np.partition(values, rank, axis=2)[:, :, rank]
    level = level if np.issubdtype(level.dtype, np.floating) else level.astype(np.float32)
    return torch.from_numpy(level) if as_tensor else level


def _edge_noise(images):
    """``(N, C)``: the robust spread of neighbouring-pixel differences along the edges, divided by sqrt 2.

    ``images`` is a ``(N, C, S, S)`` tensor or array (8-bit pixels too); the
    medians are the lower middle values, as torch's are, found by numpy's
    selection (three times faster than torch's median here).
    """
    import torch

    as_tensor = isinstance(images, torch.Tensor)
    array = images.numpy() if as_tensor else images
    signed = np.int16 if array.dtype == np.uint8 else array.dtype
    edges = [array[:, :, 0, :], array[:, :, -1, :], array[:, :, :, 0], array[:, :, :, -1]]
    steps = np.concatenate([np.diff(edge.astype(signed), axis=2) for edge in edges], axis=2)
    middle = (steps.shape[2] - 1) // 2
    centred = np.abs(steps - np.partition(steps, middle, axis=2)[:, :, middle:middle + 1])
    spread = np.partition(centred, middle, axis=2)[:, :, middle].astype(np.float32)
    noise = spread * np.float32(1.4826) / np.float32(math.sqrt(2))
    return torch.from_numpy(noise) if as_tensor else noise


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


def canonical_zooms(fractions: np.ndarray, scale: dict) -> np.ndarray:
    """The zoom that brings each cutout to a model's canonical scale (``meta["canonical_scale"]``).

    A zoom scales a galaxy's isophotal area, so its
    :func:`~deepscope.galaxy.apparent_size.bright_fraction`, by the zoom
    squared: ``sqrt(target / fraction)`` gives every galaxy the target's
    apparent size, clipped to the scale's ``zoom_range``.

    Parameters
    ----------
    fractions : numpy.ndarray
        Bright fractions of the cutouts as given.
    scale : dict
        ``bright_fraction`` (the target) and ``zoom_range`` (smallest, largest).

    Examples
    --------
    >>> canonical_zooms(np.array([0.04, 0.16, 1.0]), {"bright_fraction": 0.16, "zoom_range": [0.6, 1.6]}).tolist()
    [1.6, 1.0, 0.6]
    """
    low, high = scale["zoom_range"]
    return np.clip(np.sqrt(scale["bright_fraction"] / np.maximum(fractions, 1e-4)), low, high)


def _even_sides(size: int, scales: np.ndarray) -> np.ndarray:
    """``size * scales`` rounded to sides that keep the centre on a pixel boundary, as ``size`` does."""
    return size - 2 * np.rint((size - size * scales) / 2).astype(int)


@functools.lru_cache(maxsize=64)
def _border(size: int, inner: int, channels: int):
    """The pixels around a centred ``inner`` square, for shrinking a cutout into a wider field.

    Returns
    -------
    where : torch.Tensor
        Their flat indices in a ``size x size`` image.
    nearest : torch.Tensor
        The flat index of the nearest pixel of the ``inner x inner`` image: the edge light that fades out.
    fade : torch.Tensor
        ``(P, 1)``: how much of it is left, ``exp(-distance / FADE_PIXELS)``.
    noise : torch.Tensor
        ``(N_NOISE_FIELDS, P, channels)``: fixed unit Gaussian fields, the sky noise of a
        wider field, drawn the same for the same pixels.
    """
    import torch

    border = (size - inner) // 2
    centred = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2).abs() - (inner - 1) / 2
    beyond_axis = centred.clamp(min=0)
    beyond = torch.sqrt(beyond_axis[:, None] ** 2 + beyond_axis[None, :] ** 2).ravel()
    where = torch.nonzero(beyond > 0).ravel()
    source = (torch.arange(size) - border).clamp(0, inner - 1)
    nearest = (source[:, None] * inner + source[None, :]).ravel()[where]
    noise = torch.randn((N_NOISE_FIELDS, channels, size, size), generator=torch.Generator().manual_seed(20261207))
    noise = noise.permute(0, 2, 3, 1).reshape(N_NOISE_FIELDS, size * size, channels)[:, where]
    return where, nearest, torch.exp(-beyond[where] / FADE_PIXELS)[:, None], noise


def rescale_cutouts(pixels: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """8-bit cutouts zoomed about their centres, each by its own zoom, in batches of one zoom.

    The fast counterpart of :func:`transform_cutouts` for whole batches of
    ``uint8`` pixels (``galaxy predict`` rescales every cutout): zooms are
    rounded to an even crop or shrink side (steps of 2 pixels, under 2.5% at
    64 pixels, inside the +-10% zooms of training), enlarging crops the centre,
    shrinking resamples with antialiasing and fades the edge light into the
    cutout's own sky level and noise (:func:`sky_level_and_noise` of every other pixel) over
    :data:`FADE_PIXELS`. The noise is drawn from a fixed bank, chosen by the
    cutout's total light, so the same pixels always give the same answer.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``uint8 (N, C, S, S)``.
    zooms : numpy.ndarray
        One per cutout: above 1 enlarges, below 1 shrinks into a wider field.

    Returns
    -------
    numpy.ndarray
        ``uint8 (N, C, S, S)``.

    Examples
    --------
    >>> x = np.zeros((2, 3, 64, 64), np.uint8)
    >>> x[:, :, 24:40, 24:40] = 200
    >>> out = rescale_cutouts(x, np.array([2.0, 1.0]))
    >>> int((out[0].sum(0) > 300).sum()), int((out[1].sum(0) > 300).sum())
    (1024, 256)
    """
    import torch

    threads = torch.get_num_threads()
    # Many small tensors: splitting each across threads costs more than it saves (and takes cores from
    # the reader processes and the network beside it).
    torch.set_num_threads(1)
    try:
        return _rescale(pixels, zooms)
    finally:
        torch.set_num_threads(threads)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of equal neighbours in ``values``."""
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return list(zip(starts.tolist(), np.r_[starts[1:], len(values)].tolist()))


def _rescale(pixels: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """:func:`rescale_cutouts` on the calling thread."""
    import torch
    import torch.nn.functional as F

    n, channels, size, _ = pixels.shape
    if n == 0:
        return pixels.copy()
    # The side of the crop to enlarge (positive), or of the shrunk cutout (negative).
    zooms = np.asarray(zooms, float)
    keys = np.where(zooms > 1, _even_sides(size, 1 / zooms), -_even_sides(size, zooms))
    # The sky-noise field of each cutout's wider field, chosen by its total light.
    banks = pixels.reshape(n, -1).sum(1, dtype=np.int64) % N_NOISE_FIELDS
    # Sorted by zoom, then noise field, each zoom is one slice of the batch: one gather in, one scatter out.
    order = np.lexsort((banks, keys))
    keys, banks = keys[order], banks[order]
    x = torch.from_numpy(pixels[order]).contiguous(memory_format=torch.channels_last)
    out = torch.empty_like(x)
    for start, stop in _runs(keys):
        side = abs(int(keys[start]))
        batch = x[start:stop]
        if side == size:
            out[start:stop] = batch
            continue
        if keys[start] > 0:
            corner = (size - side) // 2
            crop = batch[:, :, corner:corner + side, corner:corner + side]
            out[start:stop] = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)
            continue
        shrunk = F.interpolate(batch, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        border = (size - side) // 2
        out[start:stop, :, border:border + side, border:border + side] = shrunk
        # Only the pixels beyond the original field need arithmetic: channels-last views, (n, pixels, channels).
        where, nearest, fade, sky = _border(size, side, channels)
        edge = shrunk.permute(0, 2, 3, 1).reshape(stop - start, side * side, -1).index_select(1, nearest).float()
        # sky_level_and_noise of every other pixel, on the 8-bit values
        sparse = pixels[order[start:stop], :, ::2, ::2]
        level = torch.from_numpy(_sky_level(sparse)).view(-1, 1, channels)
        noise = torch.from_numpy(_edge_noise(sparse)).view(-1, 1, channels)
        edge.sub_(level).mul_(fade).add_(level)
        fields = banks[start:stop]
        for first, last in _runs(fields):
            edge[first:last].addcmul_(noise[first:last], sky[fields[first]])
        flat = out.permute(0, 2, 3, 1).view(n, size * size, channels)
        flat[start:stop, where] = edge.round_().clamp_(0, 255).to(torch.uint8)
    result = np.empty_like(pixels)
    result[order] = out.numpy()
    return result
