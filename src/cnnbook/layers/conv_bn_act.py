"""Conv -> norm -> activation, the unit most modern networks are built from (timm's ``ConvNormAct``)."""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

__all__ = ["ConvBNAct", "make_activation"]


def make_activation(act_layer: Callable[..., nn.Module]) -> nn.Module:
    """Instantiate an activation class, in place where it supports it (as torchvision's blocks do).

    ``nn.ReLU``, ``nn.ReLU6``, ``nn.Hardswish`` and ``nn.SiLU`` take ``inplace``; ``nn.GELU`` or a
    ``functools.partial`` that already fixes its arguments does not need it.
    """
    try:
        takes_inplace = "inplace" in inspect.signature(act_layer).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        takes_inplace = False
    return act_layer(inplace=True) if takes_inplace else act_layer()


class ConvBNAct(nn.Sequential):
    """``Conv2d -> norm -> activation``; "same" padding for odd kernels by default.

    The children are numbered as in torchvision's ``Conv2dNormActivation``: 0 is the convolution,
    1 the normalisation (absent when ``norm_layer`` is ``None``), then the activation (absent when
    ``act_layer`` is ``None``). Torchvision state dicts therefore load unchanged.

    Args:
        in_channels: channels in.
        out_channels: channels out.
        kernel_size: square kernel size, or ``(kh, kw)`` for factorised kernels such as 1x7.
        stride: convolution stride.
        padding: defaults to ``dilation * (k - 1) // 2`` per dimension, which keeps H and W at stride 1.
        groups: 1 for a standard convolution, ``in_channels`` for a depthwise one.
        act_layer: activation class, e.g. ``nn.ReLU``, ``nn.Hardswish``; ``None`` for no activation.
        bn_eps: BatchNorm epsilon (torchvision's Inception uses 0.001) when ``norm_layer`` is not given.
        norm_layer: normalisation class called with the channel count, e.g.
            ``functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)`` (MobileNet v3) or
            ``LayerNorm2d`` (ConvNeXt); ``None`` (the default) means ``nn.BatchNorm2d(eps=bn_eps)``.
            Pass ``use_norm=False`` for a convolution without normalisation.
        bias: convolution bias; defaults to ``True`` only when there is no normalisation layer or it is
            not a BatchNorm (a BatchNorm's shift makes a bias redundant).
        dilation: convolution dilation.
        use_norm: ``False`` drops the normalisation layer (the activation then becomes child 1).
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
        norm_layer: Callable[..., nn.Module] | None = None,
        bias: bool | None = None,
        dilation: int = 1,
        use_norm: bool = True,
    ) -> None:
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if padding is None:
            padding = (dilation * (k[0] - 1) // 2, dilation * (k[1] - 1) // 2)
        norm: nn.Module | None = None
        if use_norm:
            norm = nn.BatchNorm2d(out_channels, eps=bn_eps) if norm_layer is None else norm_layer(out_channels)
        if bias is None:
            bias = not isinstance(norm, nn.modules.batchnorm._BatchNorm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, k, stride, padding, dilation=dilation, groups=groups, bias=bias),
        ]
        if norm is not None:
            layers.append(norm)
        if act_layer is not None:
            layers.append(make_activation(act_layer))
        super().__init__(*layers)
        self.out_channels = out_channels  # N x C_in x H x W -> N x C_out x H/s x W/s
