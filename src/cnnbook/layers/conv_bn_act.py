"""Conv -> BatchNorm -> activation, the unit most modern networks are built from (timm's ``ConvNormAct``)."""

from __future__ import annotations

from typing import Callable

from torch import nn

__all__ = ["ConvBNAct"]


class ConvBNAct(nn.Sequential):
    """``Conv2d(bias=False) -> BatchNorm2d -> activation``; "same" padding for odd kernels by default.

    The children are numbered as in torchvision's ``Conv2dNormActivation``: 0 is the convolution,
    1 the BatchNorm, 2 the activation (absent when ``act_layer`` is ``None``). Torchvision state dicts
    therefore load unchanged.

    Args:
        in_channels: channels in.
        out_channels: channels out.
        kernel_size: square kernel size, or ``(kh, kw)`` for factorised kernels such as 1x7.
        stride: convolution stride.
        padding: defaults to ``(k - 1) // 2`` per dimension, which keeps H and W at stride 1.
        groups: 1 for a standard convolution, ``in_channels`` for a depthwise one.
        act_layer: activation class, e.g. ``nn.ReLU``; ``None`` for no activation.
        bn_eps: BatchNorm epsilon (torchvision's Inception uses 0.001).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        groups: int = 1,
        act_layer: Callable[..., nn.Module] | None = nn.ReLU,
        bn_eps: float = 1e-5,
    ) -> None:
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if padding is None:
            padding = ((k[0] - 1) // 2, (k[1] - 1) // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, k, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
        ]
        if act_layer is not None:
            layers.append(act_layer(inplace=True) if act_layer in (nn.ReLU, nn.ReLU6) else act_layer())
        super().__init__(*layers)
        self.out_channels = out_channels  # N x C_in x H x W -> N x C_out x H/s x W/s
