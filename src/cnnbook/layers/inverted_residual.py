"""Inverted residual block with a linear bottleneck, MobileNet v2 (Sandler et al. 2018).

A ResNet bottleneck is wide -> narrow -> wide, with the shortcut between the wide ends. MobileNet v2
inverts it: narrow -> wide -> narrow, with the shortcut between the narrow ends (the "bottlenecks").

1. 1 x 1 expansion by a factor t (e.g. t = 6: n x n x 3 -> n x n x 18) + BN + ReLU6;
2. 3 x 3 depthwise convolution (stride 1 or 2) + BN + ReLU6;
3. 1 x 1 projection back to few channels (n x n x 18 -> n x n x 3) + BN, with *no* activation: a ReLU
   on a low-dimensional tensor destroys information, so the bottleneck stays linear;
4. residual connection ``x + block(x)`` when stride is 1 and channels in == channels out.

Attribute names follow torchvision's ``mobilenetv2.InvertedResidual`` so its state dicts load unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn

from .conv_bn_act import ConvBNAct

__all__ = ["InvertedResidual"]


class InvertedResidual(nn.Module):
    """``conv = [expand 1x1 (absent when t == 1), depthwise 3x3, project 1x1, BN]`` plus the shortcut.

    Args:
        in_channels: channels of the input bottleneck.
        out_channels: channels of the output bottleneck.
        stride: 1 or 2, applied by the depthwise convolution.
        expand_ratio: t, the expansion factor; hidden width is ``round(in_channels * t)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2 in an inverted residual block; got {stride}.")
        if not expand_ratio > 0:
            raise ValueError(f"expand_ratio (the expansion factor t) must be > 0; got {expand_ratio!r}.")
        self.stride = stride
        self.hidden_channels = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        hidden = self.hidden_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:  # 1 x 1 expansion: N x in x H x W -> N x hidden x H x W
            layers.append(ConvBNAct(in_channels, hidden, kernel_size=1, act_layer=nn.ReLU6))
        layers.extend(
            [
                # 3 x 3 depthwise: N x hidden x H/s x W/s
                ConvBNAct(hidden, hidden, kernel_size=3, stride=stride, groups=hidden, act_layer=nn.ReLU6),
                # 1 x 1 linear projection: N x out x H/s x W/s, BN but no activation
                nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
                nn.BatchNorm2d(out_channels),
            ]
        )
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)  # shapes match: add the shortcut
        return self.conv(x)
