"""What the network looks at: feature maps of every convolution, occlusion maps."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from deepscope.errors import ModelError

if TYPE_CHECKING:
    import torch


def conv_label(conv: torch.nn.Conv2d, number: int) -> str:
    """A name a person reads for the ``number``-th convolution of a network.

    Parameters
    ----------
    conv : torch.nn.Conv2d
    number : int
        Its place among the network's convolutions, from 1.

    Returns
    -------
    str

    Examples
    --------
    >>> from torch import nn
    >>> conv_label(nn.Conv2d(3, 16, 3, stride=2), 1)
    'conv1 (3x3 stride 2, 16 ch)'
    >>> conv_label(nn.Conv2d(16, 32, 5), 2)
    'conv2 (5x5, 32 ch)'
    """
    height, width = conv.kernel_size
    stride = f" stride {conv.stride[0]}" if max(conv.stride) > 1 else ""
    return f"conv{number} ({height}x{width}{stride}, {conv.out_channels} ch)"


def conv_feature_maps(model: torch.nn.Module, batch: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """Outputs of every 2-D convolution for one input batch.

    Parameters
    ----------
    model : torch.nn.Module
        On any device; the batch is moved there and the maps come back to the CPU.
    batch : numpy.ndarray
        ``float32`` ``(1, 3, S, S)``.

    Returns
    -------
    list of (str, str, numpy.ndarray)
        Module path (``1.0``), readable name (:func:`conv_label`) and the
        ``(channels, H, W)`` feature maps of each convolution, in forward order.

    Raises
    ------
    ModelError
        If the model has no convolutional layer.
    """
    import torch

    captured, hooks = [], []
    convs = [(name, module) for name, module in model.named_modules() if isinstance(module, torch.nn.Conv2d)]
    for number, (name, module) in enumerate(convs, start=1):
        label = conv_label(module, number)
        hooks.append(module.register_forward_hook(
            lambda mod, inp, out, name=name, label=label: captured.append((name, label, out[0].detach().cpu().numpy()))
        ))
    if not hooks:
        msg = "the model has no convolutional layer to visualise"
        raise ModelError(msg)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.from_numpy(batch).to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def _occluder(images, blur_sigma):
    # A blurred copy keeps the light under the patch but removes structure
    # such as a bar; a black patch would instead paint a dark, bar-like
    # hole over the bright centre and tell us about that artefact.
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0,) * (images.ndim - 2) + (blur_sigma, blur_sigma))


def occlusion_map(probability_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, patch: int = 12,
                  stride: int = 4, blur_sigma: float = 4.0) -> tuple[np.ndarray, float]:
    """Positive-class probability as a square patch slides over the image.

    Parameters
    ----------
    probability_fn : callable
        ``probability_fn(batch (N, 3, S, S)) -> (N,)`` positive-class probabilities.
    image : numpy.ndarray
        ``float32`` ``(3, S, S)`` model input.
    patch : int
        Side of the occluding square in pixels.
    stride : int
        Step between patch positions.
    blur_sigma : float
        The patch shows a Gaussian-blurred copy of the image (sigma in
        pixels): same light, no small-scale structure.

    Returns
    -------
    heat : numpy.ndarray
        ``(S, S)`` mean probability over the patches covering each pixel.
    base : float
        Probability of the unoccluded image.
    """
    size = image.shape[-1]
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    positions = [(r, c) for r in starts for c in starts]
    batch = np.repeat(image[None], len(positions), axis=0)
    blurred = _occluder(image[None], blur_sigma)[0]
    for k, (r, c) in enumerate(positions):
        batch[k, :, r:r + patch, c:c + patch] = blurred[:, r:r + patch, c:c + patch]
    probs = np.concatenate([probability_fn(batch[i:i + 256]) for i in range(0, len(batch), 256)])
    total = np.zeros((size, size))
    count = np.zeros((size, size))
    for p, (r, c) in zip(probs, positions):
        total[r:r + patch, c:c + patch] += p
        count[r:r + patch, c:c + patch] += 1
    base = float(probability_fn(image[None])[0])
    return total / np.maximum(count, 1), base


def region_occlusion_drop(probability_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, patch: int,
                          blur_sigma: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Drop of the positive probability when blurring the centre vs an outer region.

    The centre patch sits on the galaxy's centre, where a bar lies; the outer
    patches of the same size sit at the middle of each edge, on the galaxy's
    outskirts. Each patch shows a blurred copy of the image (see
    :func:`occlusion_map`). Returns, per image, ``p(original) - p(occluded)``
    for the centre and the mean over the four outer patches.

    Parameters
    ----------
    probability_fn : callable
        As in :func:`occlusion_map`.
    images : numpy.ndarray
        ``(N, 3, S, S)`` model inputs.
    patch : int
        Side of the square patch.
    blur_sigma : float

    Returns
    -------
    centre_drop, outer_drop : numpy.ndarray of shape (N,)
    """
    size = images.shape[-1]
    mid, far = (size - patch) // 2, size - patch
    base = probability_fn(images)
    blurred = _occluder(images, blur_sigma)

    def drop(r, c):
        occluded = images.copy()
        occluded[:, :, r:r + patch, c:c + patch] = blurred[:, :, r:r + patch, c:c + patch]
        return base - probability_fn(occluded)

    outer = [drop(r, c) for r, c in [(mid, 0), (mid, far), (0, mid), (far, mid)]]
    return drop(mid, mid), np.mean(outer, axis=0)
