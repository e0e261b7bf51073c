"""The stages of U-Net (Ronneberger, Fischer, Brox 2015): two 3x3 convolutions, down and up stages.

- :class:`DoubleConv`: two 3x3 convolutions, each followed by ReLU (and BatchNorm, optionally).
- :class:`UNetDown`: a contracting (encoder) stage: 2x2 max-pool, stride 2, then :class:`DoubleConv`
  doubling the channels.
- :class:`UNetUp`: an expanding (decoder) stage: a 2x2 transposed convolution ("up-convolution") that
  doubles H and W and halves the channels, concatenation with the encoder feature map of the same
  level (the long skip connection), then :class:`DoubleConv` halving the channels again.

With ``padding=1`` every 3x3 convolution keeps H and W ("same"). With ``padding=0`` (the paper) each
one trims a 1-pixel border, so the encoder map is larger than the decoder map it joins; it is then
centre-cropped to the decoder's size, as in Figure 1 of the paper.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DoubleConv", "UNetDown", "UNetUp", "center_crop"]


def center_crop(x: Tensor, height: int, width: int) -> Tensor:
    """The central ``height x width`` window of an N x C x H x W tensor (a view, no copy)."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class DoubleConv(nn.Sequential):
    """``[Conv2d 3x3 -> (BatchNorm2d) -> ReLU] x 2``.

    Args:
        in_channels: channels in.
        out_channels: channels out of both convolutions.
        padding: 1 keeps H and W; 0 (the paper) trims one pixel per convolution and side, so H -> H - 4.
        batch_norm: add BatchNorm after each convolution (the convolutions then have no bias).
    """

    def __init__(self, in_channels: int, out_channels: int, padding: int = 1, batch_norm: bool = False) -> None:
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=padding, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class UNetDown(nn.Sequential):
    """Contracting stage: ``MaxPool2d(2)`` (H, W halved) then :class:`DoubleConv` (channels doubled)."""

    def __init__(self, in_channels: int, out_channels: int, padding: int = 1, batch_norm: bool = False) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, padding, batch_norm))
        self.out_channels = out_channels


class UNetUp(nn.Module):
    """Expanding stage: up-convolution, concatenation with the encoder map, :class:`DoubleConv`.

    Args:
        in_channels: channels of the decoder map coming up (e.g. 1024).
        out_channels: channels out (e.g. 512); also the channels of the encoder map that is joined.
        padding: 1 for "same" convolutions; 0 crops the encoder map to the decoder's size.
        batch_norm: BatchNorm in the two convolutions.
        long_skip: concatenate the encoder map (U-Net); ``False`` drops it, so the stage sees only the
            up-sampled decoder map (the ablation: what the decoder loses without long skips).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        padding: int = 1,
        batch_norm: bool = False,
        long_skip: bool = True,
    ) -> None:
        super().__init__()
        self.long_skip = long_skip
        self.out_channels = out_channels
        # 2x2 up-convolution, stride 2: H, W doubled, channels halved (1024 -> 512)
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        joined = in_channels // 2 + out_channels if long_skip else in_channels // 2
        self.conv = DoubleConv(joined, out_channels, padding, batch_norm)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.up(x)  # N x in/2 x 2H x 2W
        if self.long_skip:
            if skip is None:
                raise ValueError("UNetUp(long_skip=True) needs the encoder feature map `skip` of the same level.")
            if skip.shape[-2:] != x.shape[-2:]:  # unpadded convolutions: encoder map is larger
                skip = center_crop(skip, x.shape[-2], x.shape[-1])
            x = torch.cat([skip, x], dim=1)  # N x (out + in/2) x 2H x 2W: the long skip connection
        return self.conv(x)  # N x out x 2H x 2W (minus 4 with padding 0)
