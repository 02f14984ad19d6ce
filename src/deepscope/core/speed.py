"""Inference-time model preparation: BatchNorm folding and channels-last layout."""


def fold_batchnorm(model):
    """Fold every BatchNorm that directly follows a convolution into it.

    In eval mode a BatchNorm is a fixed per-channel affine map, so it can be
    absorbed into the preceding convolution (``torch.nn.utils.fusion``): one
    pass over the activations less per block, the same outputs to rounding.
    Pairs (``Conv1d`` + ``BatchNorm1d`` for spectra, ``Conv2d`` +
    ``BatchNorm2d`` for images) are found inside ``nn.Sequential`` containers.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode; modified in place.

    Returns
    -------
    torch.nn.Module
        ``model``, for chaining.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d))
    for block in model.modules():
        if not isinstance(block, nn.Sequential):
            continue
        for i in range(len(block) - 1):
            if any(isinstance(block[i], conv) and isinstance(block[i + 1], norm) for conv, norm in pairs):
                block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                block[i + 1] = nn.Identity()
    return model


def prepare_for_inference(model):
    """Eval mode, folded BatchNorm and channels-last memory layout.

    Channels-last lets oneDNN pick its fastest CPU convolution kernels.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    torch.nn.Module
    """
    import torch

    model = fold_batchnorm(model.eval())
    return model.to(memory_format=torch.channels_last)
