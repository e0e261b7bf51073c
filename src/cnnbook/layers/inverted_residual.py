"""Inverted residual block with a linear bottleneck: MobileNet v2 (Sandler et al. 2018), v3 and EfficientNet.

A ResNet bottleneck is wide -> narrow -> wide, with the shortcut between the wide ends. MobileNet v2
inverts it: narrow -> wide -> narrow, with the shortcut between the narrow ends (the "bottlenecks").

1. 1 x 1 expansion by a factor t (e.g. t = 6: n x n x 3 -> n x n x 18) + BN + ReLU6;
2. k x k depthwise convolution (stride 1 or 2) + BN + ReLU6;
3. (MobileNet v3, EfficientNet) squeeze-and-excitation on the wide tensor;
4. 1 x 1 projection back to few channels (n x n x 18 -> n x n x 3) + BN, with *no* activation: a ReLU
   on a low-dimensional tensor destroys information, so the bottleneck stays linear;
5. residual connection ``x + block(x)`` when stride is 1 and channels in == channels out.

The same block serves three networks that only change its knobs: the activation (ReLU6, then hard-swish
in v3, SiLU in EfficientNet), the kernel (3 or 5), the SE hook, the normalisation's epsilon and momentum.
Two classes keep torchvision's two layouts so its state dicts load unchanged:
:class:`InvertedResidual` (``conv``, the v2 layout: projection as a bare Conv2d and BatchNorm) and
:class:`MBConv` (``block``, the v3 and EfficientNet layout: projection as a ConvBNAct without activation).
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .conv_bn_act import ConvBNAct
from .stochastic_depth import StochasticDepth

__all__ = ["InvertedResidual", "MBConv"]

def _expand_depthwise(
    in_channels: int,
    hidden: int,
    kernel_size: int,
    stride: int,
    norm_layer: Callable[..., nn.Module] | None,
    act_layer: Callable[..., nn.Module],
    se_layer: Callable[[int], nn.Module] | None,
) -> list[nn.Module]:
    """Steps 1-3, shared by both layouts: expansion (absent when hidden == in), depthwise, SE hook."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2 in an inverted residual block; got {stride}.")
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd so 'same' padding keeps the size; got {kernel_size}.")
    layers: list[nn.Module] = []
    if hidden != in_channels:  # 1 x 1 expansion: N x in x H x W -> N x hidden x H x W
        layers.append(ConvBNAct(in_channels, hidden, 1, norm_layer=norm_layer, act_layer=act_layer))
    # k x k depthwise: N x hidden x H/s x W/s
    layers.append(
        ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, norm_layer=norm_layer, act_layer=act_layer)
    )
    if se_layer is not None:  # channel attention on the wide tensor: N x hidden x H/s x W/s
        layers.append(se_layer(hidden))
    return layers


class InvertedResidual(nn.Module):
    """MobileNet v2's block: ``conv = [expand 1x1 (absent when t == 1), depthwise kxk, (SE), project 1x1, BN]``.

    Args:
        in_channels: channels of the input bottleneck.
        out_channels: channels of the output bottleneck.
        stride: 1 or 2, applied by the depthwise convolution.
        expand_ratio: t, the expansion factor; hidden width is ``round(in_channels * t)``.
        kernel_size: of the depthwise convolution (3 in v2).
        norm_layer: normalisation class (``nn.BatchNorm2d`` when ``None``).
        act_layer: activation of the expansion and depthwise steps (``nn.ReLU6`` in v2).
        se_layer: attention hook, called with the hidden width, e.g.
            ``lambda c: SqueezeExcite(c, squeeze_channels=c // 4)``; ``None`` (v2) for none.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: float,
        kernel_size: int = 3,
        norm_layer: Callable[..., nn.Module] | None = None,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
        se_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if not expand_ratio > 0:
            raise ValueError(f"expand_ratio (the expansion factor t) must be > 0; got {expand_ratio!r}.")
        self.stride = stride
        self.hidden_channels = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        hidden = self.hidden_channels
        layers = _expand_depthwise(in_channels, hidden, kernel_size, stride, norm_layer, act_layer, se_layer)
        layers += [
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),  # 1 x 1 linear projection: N x out x H/s x W/s
            nn.BatchNorm2d(out_channels) if norm_layer is None else norm_layer(out_channels),  # no activation
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)  # shapes match: add the shortcut
        return self.conv(x)


class MBConv(nn.Module):
    """The mobile inverted bottleneck of MobileNet v3 and EfficientNet, in torchvision's ``block`` layout.

    ``block = [expand 1x1 (absent when hidden == in), depthwise kxk, SE (optional), project 1x1 + norm]``;
    the shortcut passes through :class:`StochasticDepth` (EfficientNet; probability 0 in MobileNet v3).

    Args:
        in_channels: channels of the input bottleneck.
        hidden_channels: width of the expanded tensor (v3 lists it per block; EfficientNet uses ``t * in``).
        out_channels: channels of the output bottleneck.
        kernel_size: of the depthwise convolution, 3 or 5.
        stride: 1 or 2.
        act_layer: ``nn.ReLU`` or ``nn.Hardswish`` (v3), ``nn.SiLU`` (EfficientNet).
        se_layer: attention hook called with ``hidden_channels``, or ``None``.
        norm_layer: normalisation class (``nn.BatchNorm2d`` when ``None``).
        stochastic_depth_prob: probability of dropping the residual branch of a sample in training.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        se_layer: Callable[[int], nn.Module] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        stochastic_depth_prob: float = 0.0,
    ) -> None:
        super().__init__()
        if hidden_channels <= 0:
            raise ValueError(f"hidden_channels (the expanded width) must be > 0; got {hidden_channels!r}.")
        self.stride = stride
        self.hidden_channels = hidden_channels
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = _expand_depthwise(in_channels, hidden_channels, kernel_size, stride, norm_layer, act_layer, se_layer)
        # 1 x 1 linear projection: N x out x H/s x W/s, normalised, no activation
        layers.append(ConvBNAct(hidden_channels, out_channels, 1, norm_layer=norm_layer, act_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            return self.stochastic_depth(out) + x
        return out
