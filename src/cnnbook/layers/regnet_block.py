"""RegNet's residual bottleneck block (Radosavovic et al. 2020, Designing Network Design Spaces).

RegNet does not design a new block: it takes the ResNeXt bottleneck (1x1, grouped 3x3, 1x1, with a
fixed *group width* rather than a fixed group count) and searches for the rule that sets each stage's
width and depth. The "Y" variants add squeeze-and-excitation after the grouped convolution, sized from
the block's *input* width. Names follow torchvision's ``ResBottleneckBlock`` (``proj``, ``f.a``, ``f.b``,
``f.se``, ``f.c``) so its state dicts load unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from torch import Tensor, nn

from .conv_bn_act import ConvBNAct, make_activation
from .squeeze_excite import SqueezeExcite

__all__ = ["RegNetBottleneck"]


class RegNetBottleneck(nn.Module):
    """``act(proj(x) + f(x))``, ``f = [a: 1x1, b: grouped 3x3 (stride), se (Y only), c: 1x1 without activation]``.

    Args:
        width_in: channels in.
        width_out: channels out (also the bottleneck width when ``bottleneck_multiplier`` is 1).
        stride: of the grouped 3x3 convolution and of the projection shortcut.
        group_width: channels per group of the 3x3 convolution (groups = bottleneck width / group width).
        bottleneck_multiplier: bottleneck width / ``width_out`` (1 in RegNetX/Y).
        se_ratio: SE hidden width as a fraction of ``width_in`` (0.25 in RegNetY); ``None`` for RegNetX.
        norm_layer: normalisation class (``nn.BatchNorm2d`` when ``None``).
        act_layer: activation (``nn.ReLU``).
    """

    def __init__(
        self,
        width_in: int,
        width_out: int,
        stride: int = 1,
        group_width: int = 1,
        bottleneck_multiplier: float = 1.0,
        se_ratio: float | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        w_b = int(round(width_out * bottleneck_multiplier))  # bottleneck width
        if group_width <= 0 or w_b % group_width:
            raise ValueError(
                f"group_width must divide the bottleneck width {w_b}; got {group_width!r}. "
                "Pick widths that are multiples of the group width."
            )
        self.proj = None  # identity shortcut unless the shape changes
        if width_in != width_out or stride != 1:
            self.proj = ConvBNAct(width_in, width_out, 1, stride, norm_layer=norm_layer, act_layer=None)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["a"] = ConvBNAct(width_in, w_b, 1, norm_layer=norm_layer, act_layer=act_layer)  # N x w_b x H x W
        layers["b"] = ConvBNAct(w_b, w_b, 3, stride, groups=w_b // group_width, norm_layer=norm_layer,
                                act_layer=act_layer)  # N x w_b x H/s x W/s, grouped
        if se_ratio:
            layers["se"] = SqueezeExcite(w_b, activation=act_layer, squeeze_channels=int(round(se_ratio * width_in)))
        layers["c"] = ConvBNAct(w_b, width_out, 1, norm_layer=norm_layer, act_layer=None)  # N x out x H/s x W/s
        self.f = nn.Sequential(layers)
        self.activation = make_activation(act_layer)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))
