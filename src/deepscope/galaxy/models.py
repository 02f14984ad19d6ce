"""Registered networks for galaxy cutouts.

All take float RGB tensors of shape ``(N, 3, S, S)`` with values in [0, 1]
and return one logit per class (``n_classes`` of them).
"""

from __future__ import annotations

from torch import nn

from deepscope.registry import register_model

# Fixed input scaling (instead of dataset statistics) so that predicting needs
# nothing but the checkpoint: SDSS cutouts are mostly dark sky near 0.
_PIXEL_OFFSET, _PIXEL_SCALE = 0.1, 0.2


class _Scale(nn.Module):
    def forward(self, x):
        return (x - _PIXEL_OFFSET) / _PIXEL_SCALE


def _conv_bn(c_in, c_out, kernel=3, stride=1):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@register_model
def abraham2018(n_classes: int = 2, input_size: int = 64, dropout: float = 0.5) -> nn.Module:
    """The CNN of Abraham et al. (2018, MNRAS 477, 894), as closely as the paper allows.

    Twelve layers of which five are convolutional: conv-conv-pool-conv-pool-
    conv-pool-conv-pool, then a dense layer with dropout and the output layer.
    The paper does not list every filter count and kernel size; those used
    here (32-32-64-64-128 filters, 5x5 then 3x3 kernels, 256 dense units) are
    our reading of it. ``input_size`` must be a multiple of 16; ``dropout``
    is applied before the output layer.
    """
    side = input_size // 16
    return nn.Sequential(
        _Scale(),
        nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(inplace=True),
        nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * side * side, 256), nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(256, n_classes),
    )


@register_model
def barnet(n_classes: int = 2, input_size: int = 64, width: int = 16, dropout: float = 0.2) -> nn.Module:
    """deepscope's default galaxy CNN: small, batch-normalised, fast on CPU.

    A strided stem, three stages of two 3x3 convolutions each, and global
    average pooling, which makes the output independent of where the bar
    lies and of the input size (``input_size`` is recorded for preprocessing
    only). ``width`` is the first stage's channels; later stages double it.
    """
    del input_size  # global pooling accepts any size; kept for the checkpoint
    return _barnet_layers(n_classes, width, dropout, first_stage_convs=2)


@register_model
def barnet_fast(n_classes: int = 2, input_size: int = 64, width: int = 12, dropout: float = 0.2) -> nn.Module:
    """A cheaper barnet: one convolution at the stem's resolution, narrower stages.

    barnet spends a third of its multiply-adds in its first stage (two 3x3
    convolutions at half the input resolution); bars span several pixels
    there, so one convolution before the first pooling still resolves them.
    With width 12 (channels 12-24-48-96) it needs about 19 M multiply-adds per
    64x64 cutout instead of 43 M. Arguments as :func:`barnet`'s.

    Examples
    --------
    >>> import torch
    >>> barnet_fast(width=4).eval()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 2])
    """
    del input_size  # global pooling accepts any size; kept for the checkpoint
    return _barnet_layers(n_classes, width, dropout, first_stage_convs=1)


def _barnet_layers(n_classes: int, width: int, dropout: float, first_stage_convs: int) -> nn.Sequential:
    """barnet's layers: a strided stem, three stages (the first of ``first_stage_convs`` convolutions), global pooling.

    The layer order is the checkpoints' key order (``1.0.weight`` ...): the
    shipped weights load into it.
    """
    w = width
    first_stage = [_conv_bn(w, 2 * w)] + [_conv_bn(2 * w, 2 * w) for _ in range(first_stage_convs - 1)]
    return nn.Sequential(
        _Scale(),
        _conv_bn(3, w, 3, stride=2),
        *first_stage,
        nn.MaxPool2d(2),
        _conv_bn(2 * w, 4 * w), _conv_bn(4 * w, 4 * w),
        nn.MaxPool2d(2),
        _conv_bn(4 * w, 8 * w), _conv_bn(8 * w, 8 * w),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(8 * w, n_classes),
    )
