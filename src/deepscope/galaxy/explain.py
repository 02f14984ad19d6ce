"""What the network looks at: feature maps of every convolution, occlusion maps."""

import numpy as np

from deepscope.errors import ModelError


def conv_feature_maps(model, batch):
    """Outputs of every 2-D convolution for one input batch.

    Parameters
    ----------
    model : torch.nn.Module
    batch : numpy.ndarray
        ``float32`` ``(1, 3, S, S)``.

    Returns
    -------
    list of (str, numpy.ndarray)
        Layer name and its ``(channels, H, W)`` feature maps, in forward order.

    Raises
    ------
    ModelError
        If the model has no convolutional layer.
    """
    import torch

    captured, hooks = [], []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            hooks.append(module.register_forward_hook(
                lambda mod, inp, out, name=name: captured.append((name, out[0].detach().numpy()))
            ))
    if not hooks:
        msg = "the model has no convolutional layer to visualise"
        raise ModelError(msg)
    try:
        with torch.no_grad():
            model(torch.from_numpy(batch))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def occlusion_map(probability_fn, image, patch=12, stride=4, fill=0.0):
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
    fill : float
        Value written under the patch (0 = empty sky after scaling to [0, 1]).

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
    for k, (r, c) in enumerate(positions):
        batch[k, :, r:r + patch, c:c + patch] = fill
    probs = np.concatenate([probability_fn(batch[i:i + 256]) for i in range(0, len(batch), 256)])
    total = np.zeros((size, size))
    count = np.zeros((size, size))
    for p, (r, c) in zip(probs, positions):
        total[r:r + patch, c:c + patch] += p
        count[r:r + patch, c:c + patch] += 1
    base = float(probability_fn(image[None])[0])
    return total / np.maximum(count, 1), base


def region_occlusion_drop(probability_fn, images, patch, fill=0.0):
    """Drop of the positive probability when covering the centre vs an outer region.

    The centre patch sits on the galaxy's centre, where a bar lies; the outer
    patches of the same size sit in the four corners. Returns, per image,
    ``p(original) - p(occluded)`` for the centre and the mean over corners.

    Parameters
    ----------
    probability_fn : callable
        As in :func:`occlusion_map`.
    images : numpy.ndarray
        ``(N, 3, S, S)`` model inputs.
    patch : int
        Side of the square patch.
    fill : float

    Returns
    -------
    centre_drop, outer_drop : numpy.ndarray of shape (N,)
    """
    size = images.shape[-1]
    lo = (size - patch) // 2
    base = probability_fn(images)
    centre = images.copy()
    centre[:, :, lo:lo + patch, lo:lo + patch] = fill
    centre_drop = base - probability_fn(centre)
    outer = []
    for r, c in [(0, 0), (0, size - patch), (size - patch, 0), (size - patch, size - patch)]:
        occluded = images.copy()
        occluded[:, :, r:r + patch, c:c + patch] = fill
        outer.append(base - probability_fn(occluded))
    return centre_drop, np.mean(outer, axis=0)
