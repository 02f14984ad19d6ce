"""Cutouts as the networks read them: resized, channels first, scaled to [0, 1]."""

from __future__ import annotations

import numpy as np


def to_model_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB cutout to the model's input size, as float32 CHW in [0, 1].

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` array ``(H, W, 3)``.
    size : int
        Output side in pixels.

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(3, size, size)``.

    Examples
    --------
    >>> x = to_model_input(np.full((80, 80, 3), 255, np.uint8), 64)
    >>> x.shape, x.dtype, float(x.max())
    ((3, 64, 64), dtype('float32'), 1.0)
    """
    return pixels_to_input(to_model_pixels(rgb, size))


def to_model_pixels(rgb: np.ndarray, size: int) -> np.ndarray:
    """:func:`to_model_input` before the scaling to [0, 1]: ``uint8 (3, size, size)``.

    A quarter of the bytes, for handing cutouts between processes.
    """
    if rgb.shape[:2] != (size, size):
        from PIL import Image

        # PIL's bilinear resize, as the shipped models were trained with.
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def pixels_to_input(pixels: np.ndarray) -> np.ndarray:
    """``uint8`` pixels (one cutout or a batch) as the network's float32 input in [0, 1].

    Examples
    --------
    >>> pixels_to_input(np.array([0, 51, 255], np.uint8)).tolist()
    [0.0, 0.20000000298023224, 1.0]
    """
    # One pass, in float32: the values of astype(float32) / 255, at a third of the time.
    return np.divide(pixels, np.float32(255), dtype=np.float32)


def input_to_pixels(batch: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pixels_to_input`: floats in [0, 1] read as 8-bit pixels; ``uint8`` comes back as it is.

    Examples
    --------
    >>> input_to_pixels(np.array([0.0, 0.2, 1.3], np.float32)).tolist()
    [0, 51, 255]
    """
    if batch.dtype == np.uint8:
        return batch
    return np.rint(np.clip(batch, 0, 1) * 255).astype(np.uint8)
