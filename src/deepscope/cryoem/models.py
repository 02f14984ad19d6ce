"""Registered segmentation networks for particle picking.

A compact U-Net: at the working scale (a particle ~14 px across) three
poolings give a receptive field of several particle diameters, enough to
see a particle against its neighbours and the surrounding ice, in a network
small enough for CPUs.
"""

import torch
from torch import nn

from deepscope.registry import register_model


def _block(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` poolings, channel width doubling at each level.

    Parameters
    ----------
    in_channels : int
    out_channels : int
        Logit maps (1 for a particle mask, 4 for CASSPER regions, 5 for both).
    width : int
        Channels of the first level.
    depth : int
        Number of 2x poolings; inputs must be multiples of ``2**depth``
        (:func:`deepscope.cryoem.picking.predict_maps` pads them).
    """

    def __init__(self, in_channels=1, out_channels=1, width=16, depth=3):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        channels = in_channels
        for w in widths:
            self.down.append(_block(channels, w))
            channels = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(channels, w, 2, stride=2))
            self.merge.append(_block(2 * w, w))
            channels = w
        self.head = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


@register_model
def cryoem_unet(width=16, depth=3):
    """Binary particle U-Net: one logit map, trained on disks at particle centres."""
    return UNet(1, 1, width, depth)


@register_model
def cryoem_unet_regions(width=16, depth=3):
    """CASSPER-style U-Net: 4 region logits (protein, ice, background, carbon)."""
    return UNet(1, 4, width, depth)


@register_model
def cryoem_unet_joint(width=16, depth=3):
    """Both heads in one network: particle logit + 4 region logits (5 maps)."""
    return UNet(1, 5, width, depth)
