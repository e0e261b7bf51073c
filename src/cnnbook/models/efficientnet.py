"""EfficientNet-B0 (Tan and Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks).

B0 is a network found by neural architecture search (the MnasNet search, aiming at accuracy and
FLOPS): seven stages of the mobile inverted bottleneck (``cnnbook.layers.MBConv``) with SE and the
SiLU ("swish") activation. The paper's second idea, *compound scaling*, grows B0 into B1-B7 by scaling
depth, width and resolution together (``depth_mult``, ``width_mult`` here, and the input size).

The layout and attribute names are torchvision's ``EfficientNet``, so its state dicts load unchanged.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

from torch import Tensor, nn

from ..layers.conv_bn_act import ConvBNAct
from ..layers.inverted_residual import MBConv
from ..layers.squeeze_excite import SqueezeExcite
from ..layers.widths import make_divisible
from ..registry import register_model
from ._base import ImageClassifier, StageInfo, check_positive
from .mobilenet import init_mobile_weights

__all__ = ["EfficientNetStage", "B0_STAGES", "EfficientNet", "efficientnet_b0"]


class EfficientNetStage(NamedTuple):
    """One row of Table 1 of the paper: ``MBConv{expand_ratio}, k{kernel}``, repeated ``layers`` times."""

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    layers: int


# Table 1 of the paper after the 3x3 stem (32 channels, stride 2): 224 -> 112 -> ... -> 7.
B0_STAGES: list[EfficientNetStage] = [
    EfficientNetStage(1, 3, 1, 32, 16, 1),    # 112 x 112 x 16
    EfficientNetStage(6, 3, 2, 16, 24, 2),    # 56 x 56 x 24
    EfficientNetStage(6, 5, 2, 24, 40, 2),    # 28 x 28 x 40
    EfficientNetStage(6, 3, 2, 40, 80, 3),    # 14 x 14 x 80
    EfficientNetStage(6, 5, 1, 80, 112, 3),   # 14 x 14 x 112
    EfficientNetStage(6, 5, 2, 112, 192, 4),  # 7 x 7 x 192
    EfficientNetStage(6, 3, 1, 192, 320, 1),  # 7 x 7 x 320
]


def _init_weights(model: nn.Module) -> None:
    """torchvision's EfficientNet initialisation: MobileNet's, except a uniform(+-1/sqrt(out)) classifier."""
    init_mobile_weights(model)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)


class EfficientNet(ImageClassifier):
    """EfficientNet: stem, one ``Sequential`` of MBConv blocks per stage, 1x1 conv to 4x the last width, head.

    Args:
        stages: the stage table (``B0_STAGES``).
        num_classes: outputs of the classifier.
        width_mult: scales every channel count (compound scaling), rounded with ``make_divisible``.
        depth_mult: scales every stage's repeats, rounded up.
        dropout: dropout probability before the classifier (0.2 for B0).
        stochastic_depth_prob: drop probability of the last block's branch; earlier blocks get less,
            linearly in their index.
        in_channels: channels of the input images.
    """

    classifier_path = "classifier.1"

    def __init__(
        self,
        stages: list[EfficientNetStage] | None = None,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        dropout: float = 0.2,
        stochastic_depth_prob: float = 0.2,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("width_mult", width_mult, "the width multiplier scales every channel count")
        check_positive("depth_mult", depth_mult, "the depth multiplier scales every stage's repeats")
        check_positive("num_classes", num_classes)
        stages = B0_STAGES if stages is None else stages
        if not stages:
            raise ValueError("stages must list at least one EfficientNetStage row; got [].")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_input_size = 1  # every convolution is padded

        def width(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        repeats = [int(math.ceil(s.layers * depth_mult)) for s in stages]
        total_blocks, block_id = sum(repeats), 0
        channels = width(stages[0].in_channels)
        features: list[nn.Module] = [  # N x 32 x H/2 x W/2
            ConvBNAct(in_channels, channels, 3, stride=2, act_layer=nn.SiLU)
        ]
        self.feature_info: list[StageInfo] = [StageInfo("features.0", channels, 2)]
        for stage, n in zip(stages, repeats):
            out = width(stage.out_channels)
            blocks: list[nn.Module] = []
            for i in range(n):
                stride = stage.stride if i == 0 else 1
                # EfficientNet's SE: a quarter of the block's *input* channels, SiLU inside
                se = partial(SqueezeExcite, squeeze_channels=max(1, channels // 4),
                             activation=partial(nn.SiLU, inplace=True))
                sd_prob = stochastic_depth_prob * block_id / total_blocks
                blocks.append(MBConv(channels, make_divisible(channels * stage.expand_ratio, 8), out,
                                     stage.kernel, stride, nn.SiLU, se, None, sd_prob))
                channels, block_id = out, block_id + 1
            features.append(nn.Sequential(*blocks))
            self._record_stage(len(features) - 1, out, stage.stride)
        # 1 x 1 to 4x the last width: N x 1280 x H/32 x W/32
        self.last_channel = 4 * channels
        features.append(ConvBNAct(channels, self.last_channel, 1, act_layer=nn.SiLU))
        self._record_stage(len(features) - 1, self.last_channel, 1)
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(self.last_channel, num_classes))
        _init_weights(self)

    def _record_stage(self, index: int, channels: int, stride: int) -> None:
        """Keep one ``StageInfo`` per resolution: the last module before the next stride 2."""
        reduction = self.feature_info[-1].reduction * stride
        if self.feature_info[-1].reduction == reduction:
            self.feature_info.pop()
        self.feature_info.append(StageInfo(f"features.{index}", channels, reduction))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1280 x H/32 x W/32 (7 x 7 at 224)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)  # N x 1280
        return self.classifier[0](x) if pre_logits else self.classifier(x)  # N x num_classes


@register_model(
    chapter=13,
    paper="Tan and Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
    year=2019,
    input_size=(3, 224, 224),
    key_idea="a NAS-found MBConv + SE network, scaled in depth, width and resolution together",
    torchvision="efficientnet_b0",
    small_kwargs={"num_classes": 10, "width_mult": 0.25, "depth_mult": 0.34},
    small_input_size=(3, 64, 64),
)
def efficientnet_b0(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B0: 5.3M parameters, 0.39 G mult-adds at 224. Keyword arguments go to :class:`EfficientNet`."""
    return EfficientNet(**kwargs)
