"""MobileNet v3 (Howard et al. 2019, Searching for MobileNetV3): v2's block, tuned by search and by hand.

Three changes over MobileNet v2, all knobs of the same inverted residual block (``cnnbook.layers.MBConv``):

- **hard-swish**, ``x * ReLU6(x + 3) / 6``: a piecewise-linear stand-in for swish ``x * sigmoid(x)``
  that is cheap on phones; used in the deeper half, where the maps are small, ReLU in the first half;
- **squeeze-and-excitation** in some blocks, with a hard-sigmoid gate and ``make_divisible(C / 4)``
  hidden units, C the expanded width;
- 5x5 depthwise kernels in some blocks, the block table found by platform-aware NAS (MnasNet) and
  NetAdapt, and a cheaper head (the 1x1 to 1280 moved after the global pool).

The layout and attribute names are torchvision's ``MobileNetV3``, so its state dicts load unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from torch import Tensor, nn

from ..layers.conv_bn_act import ConvBNAct
from ..layers.inverted_residual import MBConv
from ..layers.squeeze_excite import SqueezeExcite
from ..layers.widths import make_divisible
from ..registry import register_model
from ._base import ImageClassifier, check_positive, stage_ends
from .mobilenet import init_mobile_weights

__all__ = ["V3Block", "V3_LARGE", "V3_SMALL", "MobileNetV3", "mobilenet_v3_large", "mobilenet_v3_small",
           "v3_se_layer"]


class V3Block(NamedTuple):
    """One row of Tables 1 and 2 of the paper."""

    kernel: int         # depthwise kernel, 3 or 5
    expanded: int       # "exp size": channels of the expanded tensor
    out: int            # "#out": channels of the output bottleneck
    se: bool            # squeeze-and-excitation in this block
    hard_swish: bool    # "NL": HS (True) or RE (False)
    stride: int


# Table 1 (large), after the 3x3 stem convolution to 16 channels, hard-swish, stride 2. 224 -> 7.
V3_LARGE: list[V3Block] = [
    V3Block(3, 16, 16, False, False, 1),   # 112 x 112 x 16
    V3Block(3, 64, 24, False, False, 2),   # 56 x 56 x 24
    V3Block(3, 72, 24, False, False, 1),
    V3Block(5, 72, 40, True, False, 2),    # 28 x 28 x 40
    V3Block(5, 120, 40, True, False, 1),
    V3Block(5, 120, 40, True, False, 1),
    V3Block(3, 240, 80, False, True, 2),   # 14 x 14 x 80
    V3Block(3, 200, 80, False, True, 1),
    V3Block(3, 184, 80, False, True, 1),
    V3Block(3, 184, 80, False, True, 1),
    V3Block(3, 480, 112, True, True, 1),   # 14 x 14 x 112
    V3Block(3, 672, 112, True, True, 1),
    V3Block(5, 672, 160, True, True, 2),   # 7 x 7 x 160
    V3Block(5, 960, 160, True, True, 1),
    V3Block(5, 960, 160, True, True, 1),
]
# Table 2 (small). 224 -> 7.
V3_SMALL: list[V3Block] = [
    V3Block(3, 16, 16, True, False, 2),    # 56 x 56 x 16
    V3Block(3, 72, 24, False, False, 2),   # 28 x 28 x 24
    V3Block(3, 88, 24, False, False, 1),
    V3Block(5, 96, 40, True, True, 2),     # 14 x 14 x 40
    V3Block(5, 240, 40, True, True, 1),
    V3Block(5, 240, 40, True, True, 1),
    V3Block(5, 120, 48, True, True, 1),    # 14 x 14 x 48
    V3Block(5, 144, 48, True, True, 1),
    V3Block(5, 288, 96, True, True, 2),    # 7 x 7 x 96
    V3Block(5, 576, 96, True, True, 1),
    V3Block(5, 576, 96, True, True, 1),
]
V3_STEM_CHANNELS = 16


def v3_se_layer(channels: int) -> SqueezeExcite:
    """MobileNet v3's SE: ``make_divisible(C / 4)`` hidden units, ReLU, hard-sigmoid gate."""
    return SqueezeExcite(channels, squeeze_channels=make_divisible(channels // 4, 8), scale_activation=nn.Hardsigmoid)


class MobileNetV3(ImageClassifier):
    """MobileNet v3: stem, the block table, 1x1 conv to 6x the last width, pool, ``Linear-HS-Dropout-Linear``.

    Args:
        blocks: the block table (``V3_LARGE`` or ``V3_SMALL``).
        last_channel: width of the hidden classifier layer (1280 large, 1024 small).
        num_classes: outputs of the classifier.
        width_mult: scales every channel count, rounded with ``make_divisible``.
        dropout: dropout probability in the classifier.
        in_channels: channels of the input images.
    """

    classifier_path = "classifier.3"

    def __init__(
        self,
        blocks: list[V3Block],
        last_channel: int,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("width_mult", width_mult, "the width multiplier scales every channel count")
        check_positive("num_classes", num_classes)
        if not blocks:
            raise ValueError("blocks must list at least one V3Block row; got [].")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_input_size = 1  # every convolution is padded

        def width(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)  # the TensorFlow release's BN settings

        channels = width(V3_STEM_CHANNELS)
        features: list[nn.Module] = [  # N x 16 x H/2 x W/2
            ConvBNAct(in_channels, channels, 3, stride=2, norm_layer=norm, act_layer=nn.Hardswish)
        ]
        strides, widths = [2], [channels]
        for row in blocks:
            out = width(row.out)
            act = nn.Hardswish if row.hard_swish else nn.ReLU
            se = v3_se_layer if row.se else None
            features.append(MBConv(channels, width(row.expanded), out, row.kernel, row.stride, act, se, norm))
            strides.append(row.stride)
            widths.append(out)
            channels = out
        # 1 x 1 to 6x the last bottleneck: N x 960 (large) or 576 (small) x H/32 x W/32
        features.append(ConvBNAct(channels, 6 * channels, 1, norm_layer=norm, act_layer=nn.Hardswish))
        strides.append(1)
        widths.append(6 * channels)
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.last_channel = width(last_channel)
        self.classifier = nn.Sequential(
            nn.Linear(6 * channels, self.last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(self.last_channel, num_classes),
        )
        self.feature_info = stage_ends("features", strides, widths)
        init_mobile_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 960 x H/32 x W/32 (large)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)  # N x 960
        x = self.classifier[:3](x)  # N x 1280: the hidden layer the paper moved after the pool
        return x if pre_logits else self.classifier[3](x)  # N x num_classes


_V3_PAPER = "Howard et al. 2019, Searching for MobileNetV3"


@register_model(
    chapter=11,
    paper=_V3_PAPER,
    year=2019,
    input_size=(3, 224, 224),
    key_idea="v2's block with hard-swish and squeeze-excitation, its table found by NAS",
    torchvision="mobilenet_v3_large",
    small_kwargs={"num_classes": 10, "width_mult": 0.25},
    small_input_size=(3, 64, 64),
)
def mobilenet_v3_large(**kwargs: Any) -> MobileNetV3:
    """MobileNet v3 large: 5.5M parameters, 0.22 G mult-adds at 224. Keyword arguments go to :class:`MobileNetV3`."""
    kwargs.setdefault("blocks", V3_LARGE)
    kwargs.setdefault("last_channel", 1280)
    return MobileNetV3(**kwargs)


@register_model(
    chapter=11,
    paper=_V3_PAPER,
    year=2019,
    input_size=(3, 224, 224),
    key_idea="the small v3: 11 blocks for low-end phones",
    torchvision="mobilenet_v3_small",
    small_kwargs={"num_classes": 10, "width_mult": 0.25},
    small_input_size=(3, 64, 64),
)
def mobilenet_v3_small(**kwargs: Any) -> MobileNetV3:
    """MobileNet v3 small: 2.5M parameters, 0.06 G mult-adds at 224. Keyword arguments go to :class:`MobileNetV3`."""
    kwargs.setdefault("blocks", V3_SMALL)
    kwargs.setdefault("last_channel", 1024)
    return MobileNetV3(**kwargs)
