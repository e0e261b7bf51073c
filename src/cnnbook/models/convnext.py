"""ConvNeXt-Tiny (Liu et al. 2022, A ConvNet for the 2020s).

A ResNet-50 modernised one design decision at a time towards a vision transformer (Swin-T), keeping only
convolutions: a 4x4 stride-4 "patchify" stem, stage depths 3-3-9-3 (Swin's 1:1:3:1), the ConvNeXt block
(``cnnbook.layers.ConvNeXtBlock``: 7x7 depthwise, LayerNorm, 4x inverted bottleneck with GELU, layer
scale), and separate 2x2 stride-2 downsampling layers between stages. At 4.5 G mult-adds it is the
largest network of the zoo after VGG.

The layout and attribute names are torchvision's ``ConvNeXt``, so its state dicts load unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from torch import Tensor, nn

from ..layers.conv_bn_act import ConvBNAct
from ..layers.convnext_block import ConvNeXtBlock, LayerNorm2d
from ..registry import register_model
from ..calc.shapes import smallest_input_side
from ._base import ImageClassifier, StageInfo, check_positive

__all__ = ["ConvNeXtStage", "CONVNEXT_TINY", "ConvNeXt", "convnext_tiny"]


class ConvNeXtStage(NamedTuple):
    """``layers`` blocks of ``channels``, then (when ``out_channels`` is set) a 2x2 stride-2 downsampling."""

    channels: int
    out_channels: int | None
    layers: int


# Section 3 of the paper, ConvNeXt-T: C = (96, 192, 384, 768), B = (3, 3, 9, 3). 224 -> 56 -> ... -> 7.
CONVNEXT_TINY: list[ConvNeXtStage] = [
    ConvNeXtStage(96, 192, 3),    # 56 x 56 x 96
    ConvNeXtStage(192, 384, 3),   # 28 x 28 x 192
    ConvNeXtStage(384, 768, 9),   # 14 x 14 x 384
    ConvNeXtStage(768, None, 3),  # 7 x 7 x 768
]


class ConvNeXt(ImageClassifier):
    """ConvNeXt: ``features`` (stem, stage, downsample, stage, ...), global pool, ``LayerNorm-Flatten-Linear``.

    Args:
        stages: the stage table (``CONVNEXT_TINY``).
        num_classes: outputs of the classifier.
        stochastic_depth_prob: drop probability of the last block's branch (0.1 for Tiny), linear in depth.
        layer_scale: initial per-channel scale of each residual branch (1e-6).
        in_channels: channels of the input images.
    """

    classifier_path = "classifier.2"

    def __init__(
        self,
        stages: list[ConvNeXtStage] | None = None,
        num_classes: int = 1000,
        stochastic_depth_prob: float = 0.1,
        layer_scale: float = 1e-6,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        stages = CONVNEXT_TINY if stages is None else stages
        if not stages:
            raise ValueError("stages must list at least one ConvNeXtStage row; got [].")
        self.in_channels = in_channels
        self.num_classes = num_classes
        norm = partial(LayerNorm2d, eps=1e-6)
        # "patchify" stem, 4x4 stride 4, no padding: N x 96 x H/4 x W/4
        features: list[nn.Module] = [
            ConvBNAct(in_channels, stages[0].channels, 4, 4, padding=0, norm_layer=norm, act_layer=None)
        ]
        self.feature_info: list[StageInfo] = []
        total_blocks, block_id, reduction = sum(s.layers for s in stages), 0, 4
        for stage in stages:
            blocks: list[nn.Module] = []
            for _ in range(stage.layers):
                sd_prob = stochastic_depth_prob * block_id / max(1.0, total_blocks - 1.0)
                blocks.append(ConvNeXtBlock(stage.channels, layer_scale, sd_prob))
                block_id += 1
            features.append(nn.Sequential(*blocks))  # N x C x H/r x W/r
            self.feature_info.append(StageInfo(f"features.{len(features) - 1}", stage.channels, reduction))
            if stage.out_channels is not None:  # 2x2 stride-2 downsampling: N x 2C x H/2r x W/2r
                features.append(nn.Sequential(norm(stage.channels),
                                              nn.Conv2d(stage.channels, stage.out_channels, 2, stride=2)))
                reduction *= 2
        last = stages[-1].out_channels or stages[-1].channels
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(norm(last), nn.Flatten(1), nn.Linear(last, num_classes))
        # the 4x4 stem needs 4 pixels; each unpadded 2x2 downsampling needs 2 on its input
        self.min_input_size = smallest_input_side(self.features)
        for m in self.modules():  # torchvision's initialisation: truncated normal, std 0.02
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 768 x H/32 x W/32 (7 x 7 at 224)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[:2](self.avgpool(x))  # N x 768, normalised
        return x if pre_logits else self.classifier[2](x)  # N x num_classes


@register_model(
    chapter=15,
    paper="Liu et al. 2022, A ConvNet for the 2020s",
    year=2022,
    input_size=(3, 224, 224),
    key_idea="a ResNet modernised towards a transformer: patchify stem, 7x7 depthwise, LayerNorm, GELU",
    depth=59,
    torchvision="convnext_tiny",
    small_kwargs={"num_classes": 10, "stages": [ConvNeXtStage(16, 32, 1), ConvNeXtStage(32, None, 1)]},
    small_input_size=(3, 32, 32),
)
def convnext_tiny(**kwargs: Any) -> ConvNeXt:
    """ConvNeXt-Tiny: 28.6M parameters, 4.46 G mult-adds at 224. Keyword arguments go to :class:`ConvNeXt`."""
    return ConvNeXt(**kwargs)
