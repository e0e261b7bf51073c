"""RegNetY-400MF (Radosavovic et al. 2020, Designing Network Design Spaces).

Instead of searching for one network, Radosavovic et al. search for a *rule*: block widths that grow
linearly with depth, ``u_j = w_0 + w_a * j``, quantised in log space with step ``w_m`` and rounded to
multiples of 8, so that blocks of equal width form a stage. Every block is the ResNeXt bottleneck with a
fixed group width (``cnnbook.layers.RegNetBottleneck``); the Y models add squeeze-and-excitation. The
400MF model's parameters (depth 16, w_0 = 48, w_a = 27.89, w_m = 2.09, group width 8, SE ratio 0.25)
produce the stage table below, which :func:`regnet_stages` recomputes.

The layout and attribute names are torchvision's ``RegNet``, so its state dicts load unchanged.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor, nn

from ..layers.conv_bn_act import ConvBNAct
from ..layers.regnet_block import RegNetBottleneck
from ..layers.widths import make_divisible
from ..registry import register_model
from ._base import ImageClassifier, StageInfo, check_positive

__all__ = ["RegNetStage", "REGNET_Y_400MF", "regnet_stages", "RegNet", "regnet_y_400mf"]


class RegNetStage(NamedTuple):
    """One stage: ``depth`` blocks of ``width`` channels, the first with stride 2."""

    depth: int
    width: int
    group_width: int


def regnet_stages(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> list[RegNetStage]:
    """The stage table of a RegNet from its design-space parameters (Section 3.3 of the paper)."""
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % 8:
        raise ValueError(f"need w_a >= 0, w_0 > 0 and a multiple of 8, w_m > 1; got {w_0=}, {w_a=}, {w_m=}.")
    u = np.arange(depth) * w_a + w_0                                   # linear widths u_j
    steps = np.round(np.log(u / w_0) / math.log(w_m))                  # quantise in log space
    widths = (np.round(w_0 * np.power(w_m, steps) / 8) * 8).astype(int).tolist()  # multiples of 8
    stages: list[RegNetStage] = []
    for w in widths:  # consecutive equal widths form a stage
        if stages and stages[-1].width == w:
            stages[-1] = stages[-1]._replace(depth=stages[-1].depth + 1)
        else:
            g = min(group_width, w)  # a group cannot be wider than the block
            stages.append(RegNetStage(1, make_divisible(w, g), g))
    return stages


# regnet_stages(16, 48, 27.89, 2.09, 8): 16 blocks in 4 stages.
REGNET_Y_400MF: list[RegNetStage] = [
    RegNetStage(1, 48, 8),    # 56 x 56 x 48
    RegNetStage(3, 104, 8),   # 28 x 28 x 104
    RegNetStage(6, 208, 8),   # 14 x 14 x 208
    RegNetStage(6, 440, 8),   # 7 x 7 x 440
]


class RegNet(ImageClassifier):
    """RegNet: ``stem`` (3x3, stride 2), ``trunk_output`` (stages ``block1``...), global pool, ``fc``.

    Args:
        stages: the stage table (``REGNET_Y_400MF``).
        num_classes: outputs of the classifier.
        se_ratio: SE hidden width per block input width (0.25 for Y models, ``None`` for X models).
        stem_width: channels of the stem (32).
        in_channels: channels of the input images.
    """

    classifier_path = "fc"

    def __init__(
        self,
        stages: list[RegNetStage] | None = None,
        num_classes: int = 1000,
        se_ratio: float | None = 0.25,
        stem_width: int = 32,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("stem_width", stem_width)
        stages = REGNET_Y_400MF if stages is None else stages
        if not stages:
            raise ValueError("stages must list at least one RegNetStage row; got [].")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_input_size = 1  # every convolution is padded
        self.stem = ConvBNAct(in_channels, stem_width, 3, stride=2)  # N x 32 x H/2 x W/2
        width_in = stem_width
        trunk: OrderedDict[str, nn.Module] = OrderedDict()
        self.feature_info = [StageInfo("stem", stem_width, 2)]
        for s, stage in enumerate(stages, start=1):
            blocks = OrderedDict(
                (f"block{s}-{i}", RegNetBottleneck(width_in if i == 0 else stage.width, stage.width,
                                                   2 if i == 0 else 1, stage.group_width, se_ratio=se_ratio))
                for i in range(stage.depth)
            )
            trunk[f"block{s}"] = nn.Sequential(blocks)  # N x width x H/2^(s+1) x W/2^(s+1)
            self.feature_info.append(StageInfo(f"trunk_output.block{s}", stage.width, 2 ** (s + 1)))
            width_in = stage.width
        self.trunk_output = nn.Sequential(trunk)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's RegNet initialisation: He normal (fan-out) convolutions, BN at identity, small FC."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.trunk_output(self.stem(x))  # N x 440 x H/32 x W/32 (7 x 7 at 224)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x).flatten(1)  # N x 440
        return x if pre_logits else self.fc(x)  # N x num_classes


@register_model(
    chapter=13,
    paper="Radosavovic et al. 2020, Designing Network Design Spaces",
    year=2020,
    input_size=(3, 224, 224),
    key_idea="a searched design space: widths grow linearly with depth, quantised; group-width bottlenecks + SE",
    depth=50,
    torchvision="regnet_y_400mf",
    small_kwargs={"num_classes": 10, "stages": [RegNetStage(1, 16, 8), RegNetStage(1, 32, 8)], "stem_width": 16},
    small_input_size=(3, 32, 32),
)
def regnet_y_400mf(**kwargs: Any) -> RegNet:
    """RegNetY-400MF: 4.3M parameters, 0.40 G mult-adds at 224. Keyword arguments go to :class:`RegNet`."""
    return RegNet(**kwargs)
