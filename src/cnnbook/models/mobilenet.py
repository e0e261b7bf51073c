"""MobileNet v1 (Howard et al. 2017) and MobileNet v2 (Sandler et al. 2018): networks for phones.

Both aim at low latency on devices with little compute and battery: train on a PC or GPU, convert,
deploy. Both are a data table plus one generic builder.

- v1 replaces every convolution but the first with a depthwise-separable one
  (``cnnbook.layers.DepthwiseSeparableConv``), about 8-9x cheaper than a standard 3x3
  convolution. Two knobs trade accuracy for cost: the width multiplier alpha scales every channel
  count (cost ~ alpha^2) and the resolution multiplier rho scales the input side, 224 -> 192, 160, 128
  (cost ~ rho^2). The network is fully convolutional up to a global average pool, so rho is simply the
  input size you feed it.
- v2 stacks 17 inverted residual blocks with linear bottlenecks
  (``cnnbook.layers.InvertedResidual``); the layout and attribute names are torchvision's, so
  torchvision's ``mobilenet_v2`` state dicts load unchanged.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.conv_bn_act import ConvBNAct
from ..layers.inverted_residual import InvertedResidual
from ..layers.separable import DepthwiseSeparableConv
from ..layers.widths import make_divisible
from ..registry import register_model
from ._base import ImageClassifier, check_positive, stage_ends

__all__ = ["MobileNetV1", "MobileNetV2", "mobilenet_v1", "mobilenet_v2"]


# Table 1 of the MobileNet v1 paper, after the first full 3x3 convolution (32 filters, stride 2).
# Each row is one depthwise-separable layer: (filters of the pointwise 1x1, stride of the depthwise 3x3).
# 224 x 224 x 3 -> 112 x 112 x 32 -> ... -> 7 x 7 x 1024. (The paper's table prints "s2" on the last
# depthwise layer, a typo: its input and output are both 7 x 7.)
V1_STEM_CHANNELS = 32
V1_SEPARABLE_LAYERS: list[tuple[int, int]] = [
    (64, 1),    # 112 x 112 x 64
    (128, 2),   # 56 x 56 x 128
    (128, 1),
    (256, 2),   # 28 x 28 x 256
    (256, 1),
    (512, 2),   # 14 x 14 x 512
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),  # "5x" in the paper
    (1024, 2),  # 7 x 7 x 1024
    (1024, 1),
]

# Table 2 of the MobileNet v2 paper, as in torchvision: expansion t, output channels c, repeats n,
# stride s of the first repeat. 1 + 2 + 3 + 4 + 3 + 3 + 1 = 17 bottleneck blocks.
V2_INVERTED_RESIDUAL_SETTING: list[list[int]] = [
    # t, c, n, s
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


def _v1_channels(channels: int, width_mult: float, min_channels: int = 8) -> int:
    """Width multiplier of v1: ``max(int(channels * alpha), 8)``.

    The paper only says "the number of input channels M becomes alpha*M"; this rounding (truncate, at
    least 8 channels) is the one of the authors' TensorFlow-Slim release (``depth_multiplier`` with
    ``min_depth=8``). For alpha in {1, 0.75, 0.5, 0.25} every product is already a whole number.
    """
    return max(int(channels * width_mult), min_channels)


def init_mobile_weights(model: nn.Module) -> None:
    """torchvision's MobileNet initialisation: He (fan-out) convolutions, BN at identity, small FC."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class MobileNetV1(ImageClassifier):
    """MobileNet v1: a 3x3 convolution, 13 depthwise-separable layers, global average pool, FC.

    28 layers when the depthwise and pointwise halves count separately (1 + 13*2 + FC).
    1.0 MobileNet-224 has 4,231,976 parameters (4.2M) and about 569M mult-adds.

    Args:
        num_classes: outputs of the final FC layer (1000 for ImageNet).
        width_mult: alpha, scales every channel count (1.0, 0.75, 0.5, 0.25 in the paper); see
            ``_v1_channels`` for the rounding.
        in_channels: channels of the input images.
        separable_layers: (filters, stride) per depthwise-separable layer; Table 1 by default.
    """

    classifier_path = "fc"

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        in_channels: int = 3,
        separable_layers: list[tuple[int, int]] | None = None,
    ) -> None:
        super().__init__()
        check_positive("width_mult", width_mult, "the width multiplier alpha scales every channel count")
        check_positive("num_classes", num_classes)
        layers_cfg = V1_SEPARABLE_LAYERS if separable_layers is None else separable_layers
        if len(layers_cfg) == 0:
            raise ValueError("separable_layers must list at least one (filters, stride) pair; got [].")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.width_mult = width_mult
        self.min_input_size = 1  # every 3x3 convolution is padded: even a 1x1 input keeps a 1x1 map

        channels = _v1_channels(V1_STEM_CHANNELS, width_mult)
        features: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, stride=2)]  # N x 32a x H/2 x W/2
        strides, widths = [2], [channels]
        for filters, stride in layers_cfg:
            out_channels = _v1_channels(filters, width_mult)
            features.append(DepthwiseSeparableConv(channels, out_channels, 3, stride))
            strides.append(stride)
            widths.append(out_channels)
            channels = out_channels
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.feature_info = stage_ends("features", strides, widths)
        init_mobile_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1024a x H/32 x W/32 (7 x 7 at 224)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)  # N x 1024a
        return x if pre_logits else self.fc(x)  # N x num_classes


class MobileNetV2(ImageClassifier):
    """MobileNet v2 as torchvision builds it: ``features`` (stem, 17 inverted residuals, 1x1 conv to
    1280) and ``classifier`` (Dropout, Linear). 3,504,872 parameters at width 1.0.

    Args:
        num_classes: outputs of the classifier.
        width_mult: scales every channel count, rounded to a multiple of ``round_nearest``.
        inverted_residual_setting: the ``t, c, n, s`` table; Table 2 of the paper by default.
        round_nearest: channel counts are multiples of this (8); 1 turns rounding off.
        dropout: dropout probability before the classifier.
        in_channels: channels of the input images.
    """

    classifier_path = "classifier.1"

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        inverted_residual_setting: list[list[int]] | None = None,
        round_nearest: int = 8,
        dropout: float = 0.2,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("width_mult", width_mult, "the width multiplier scales every channel count")
        check_positive("num_classes", num_classes)
        check_positive("round_nearest", round_nearest)
        setting = V2_INVERTED_RESIDUAL_SETTING if inverted_residual_setting is None else inverted_residual_setting
        if len(setting) == 0 or any(len(row) != 4 for row in setting):
            raise ValueError(f"inverted_residual_setting must be a non-empty list of [t, c, n, s] rows; got {setting}.")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_input_size = 1  # padded 3x3 convolutions: no input shrinks to nothing

        input_channel = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNAct(in_channels, input_channel, 3, stride=2, act_layer=nn.ReLU6)]
        strides, widths = [2], [input_channel]
        for t, c, n, s in setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, expand_ratio=t))
                strides.append(stride)
                widths.append(output_channel)
                input_channel = output_channel
        features.append(ConvBNAct(input_channel, self.last_channel, 1, act_layer=nn.ReLU6))
        strides.append(1)
        widths.append(self.last_channel)
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        self.feature_info = stage_ends("features", strides, widths)
        init_mobile_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1280 x H/32 x W/32 (7 x 7 at 224)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = F.adaptive_avg_pool2d(x, (1, 1))  # N x 1280 x 1 x 1
        x = x.flatten(1)  # N x 1280
        return self.classifier[0](x) if pre_logits else self.classifier(x)  # N x num_classes


@register_model(
    chapter=11,
    paper="Howard et al. 2017, MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    year=2017,
    input_size=(3, 224, 224),
    key_idea="depthwise-separable convolutions; width and resolution multipliers",
    depth=28,
    small_kwargs={"num_classes": 10, "width_mult": 0.25},
    small_input_size=(3, 64, 64),
)
def mobilenet_v1(**kwargs: Any) -> MobileNetV1:
    """MobileNet v1 (Howard et al. 2017), Table 1: 4.2M parameters, 569M mult-adds at 224x224.

    Vary the resolution multiplier by the input size: 224, 192, 160 or 128. Keyword arguments go to
    :class:`MobileNetV1` (``num_classes``, ``width_mult``, ``in_channels``, ``separable_layers``).
    """
    return MobileNetV1(**kwargs)


@register_model(
    chapter=11,
    paper="Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    year=2018,
    input_size=(3, 224, 224),
    key_idea="inverted residuals with linear bottlenecks (expand 1x1, depthwise 3x3, project 1x1)",
    depth=53,
    torchvision="mobilenet_v2",
    small_kwargs={"num_classes": 10, "width_mult": 0.25},
    small_input_size=(3, 64, 64),
)
def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNet v2 (Sandler et al. 2018), 17 inverted residual blocks, 3.5M parameters, ~300M mult-adds.

    Keyword arguments go to :class:`MobileNetV2`, e.g. ``inverted_residual_setting`` or ``width_mult``.
    """
    return MobileNetV2(**kwargs)
