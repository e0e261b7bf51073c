"""Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision"), as torchvision.

42 layers deep on a 299x299 input. A stem of plain convolutions brings the image to a 35x35x192 grid; then
three stages of factorised Inception blocks (table 1 of the paper, kept below as data), separated by
grid-reduction blocks::

    stage 3, 35x35:  3 x InceptionA (figure 5: 5x5 -> two 3x3)           -> 35x35x288
    reduction:       InceptionB (figure 10)                              -> 17x17x768
    stage 4, 17x17:  4 x InceptionC (figure 6: 7x7 -> 1x7 and 7x1)       -> 17x17x768, auxiliary head here
    reduction:       InceptionD (figure 10)                              -> 8x8x1280
    stage 5, 8x8:    2 x InceptionE (figure 7: 1x3 | 3x1 side by side)   -> 8x8x2048

then global average pooling, dropout and one fully connected layer. Torchvision follows Google's released
model, whose stem differs slightly from table 1 (a 1x1 then a 3x3 convolution before the second pool).

27,161,264 parameters with the auxiliary head (torchvision's default, ``aux_logits=True``), 23,834,568
without it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..layers.inception import BasicConv2d
from ..layers.inception_v3 import (
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionV3Aux,
)
from ..registry import register_model
from ._base import AuxHeadClassifier, StageInfo, check_positive, imagenet_to_google_scaling, trunc_normal_init
from .googlenet import googlenet_loss

__all__ = ["Inception3", "InceptionOutputs", "INCEPTION_V3_CFG", "inception_v3", "inception_v3_loss"]

# Stages 3, 4 and 5 at full width: attribute -> (block, channel arguments). The pool path of the reduction
# blocks (B, D) passes its input through, so their output channels depend on what comes in.
INCEPTION_V3_CFG: dict[str, tuple[type[nn.Module], dict[str, int]]] = {
    # stage 3, 35x35 grid (figure 5)                                                         channels in -> out
    "Mixed_5b": (InceptionA, dict(pool_features=32, ch1x1=64, ch5x5red=48, ch5x5=64, ch3x3dblred=64, ch3x3dbl=96)),
    "Mixed_5c": (InceptionA, dict(pool_features=64, ch1x1=64, ch5x5red=48, ch5x5=64, ch3x3dblred=64, ch3x3dbl=96)),
    "Mixed_5d": (InceptionA, dict(pool_features=64, ch1x1=64, ch5x5red=48, ch5x5=64, ch3x3dblred=64, ch3x3dbl=96)),
    # grid reduction 35 -> 17 (figure 10)                                                    288 -> 768
    "Mixed_6a": (InceptionB, dict(ch3x3=384, ch3x3dblred=64, ch3x3dbl=96)),
    # stage 4, 17x17 grid (figure 6, n = 7)                                                  768 -> 768
    "Mixed_6b": (InceptionC, dict(channels_7x7=128, ch1x1=192, ch7x7=192, ch7x7dbl=192, pool_proj=192)),
    "Mixed_6c": (InceptionC, dict(channels_7x7=160, ch1x1=192, ch7x7=192, ch7x7dbl=192, pool_proj=192)),
    "Mixed_6d": (InceptionC, dict(channels_7x7=160, ch1x1=192, ch7x7=192, ch7x7dbl=192, pool_proj=192)),
    "Mixed_6e": (InceptionC, dict(channels_7x7=192, ch1x1=192, ch7x7=192, ch7x7dbl=192, pool_proj=192)),
    # grid reduction 17 -> 8 (figure 10)                                                     768 -> 1280
    "Mixed_7a": (InceptionD, dict(ch3x3red=192, ch3x3=320, ch7x7x3=192)),
    # stage 5, 8x8 grid (figure 7)                                                           1280 -> 2048
    "Mixed_7b": (InceptionE, dict(ch1x1=320, ch3x3=384, ch3x3dblred=448, ch3x3dbl=384, pool_proj=192)),
    "Mixed_7c": (InceptionE, dict(ch1x1=320, ch3x3=384, ch3x3dblred=448, ch3x3dbl=384, pool_proj=192)),
}


class InceptionOutputs(NamedTuple):
    """What Inception-v3 returns in training with its auxiliary head (torchvision's order)."""

    logits: Tensor
    aux_logits: Tensor | None


class Inception3(AuxHeadClassifier):
    """Inception-v3 with torchvision's attribute names, so torchvision's state dict loads with ``strict=True``.

    In training with ``aux_logits`` it returns ``InceptionOutputs(logits, aux_logits)``; in evaluation (or
    without the auxiliary head) only the logits.

    Args:
        num_classes: outputs of the classifier and of the auxiliary head.
        aux_logits: build the auxiliary classifier on the 17x17 grid (torchvision's default: True).
        transform_input: re-normalise inputs from ImageNet mean/std to [-1, 1], as Google's original
            weights expect (torchvision sets it only when it loads those weights).
        init_weights: torchvision's initialisation: truncated normal with std 0.1 for convolutions and
            fully connected layers (0.001 for the auxiliary classifier's last layer), BatchNorm 1 and 0.
        dropout: before the classifier (0.5).
        in_channels: input channels.
        width_divisor: every channel count of the network is divided by it (at least 1 channel), for small
            configurations that train on a CPU; 1 is the published network.
    """

    outputs_type = InceptionOutputs

    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = True,
        transform_input: bool = False,
        init_weights: bool = True,
        dropout: float = 0.5,
        in_channels: int = 3,
        width_divisor: int = 1,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("in_channels", in_channels)
        check_positive("width_divisor", width_divisor, "every channel count is divided by it")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout!r}.")
        if transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB images, so in_channels must be 3; got {in_channels}.")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.width_divisor = width_divisor
        w = self._width

        self.Conv2d_1a_3x3 = BasicConv2d(in_channels, w(32), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(w(32), w(32), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(w(32), w(64), kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(w(64), w(80), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(w(80), w(192), kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)

        self.Mixed_5b = self._mixed("Mixed_5b", w(192))
        self.Mixed_5c = self._mixed("Mixed_5c", self.Mixed_5b.out_channels)
        self.Mixed_5d = self._mixed("Mixed_5d", self.Mixed_5c.out_channels)
        self.Mixed_6a = self._mixed("Mixed_6a", self.Mixed_5d.out_channels)
        self.Mixed_6b = self._mixed("Mixed_6b", self.Mixed_6a.out_channels)
        self.Mixed_6c = self._mixed("Mixed_6c", self.Mixed_6b.out_channels)
        self.Mixed_6d = self._mixed("Mixed_6d", self.Mixed_6c.out_channels)
        self.Mixed_6e = self._mixed("Mixed_6e", self.Mixed_6d.out_channels)
        self.AuxLogits: InceptionV3Aux | None = None
        if aux_logits:
            self.AuxLogits = InceptionV3Aux(self.Mixed_6e.out_channels, num_classes, w(128), w(768))
        self.Mixed_7a = self._mixed("Mixed_7a", self.Mixed_6e.out_channels)
        self.Mixed_7b = self._mixed("Mixed_7b", self.Mixed_7a.out_channels)
        self.Mixed_7c = self._mixed("Mixed_7c", self.Mixed_7b.out_channels)

        width = self.Mixed_7c.out_channels  # 2048 at full width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc: nn.Module = nn.Linear(width, num_classes)

        self.feature_info = [
            StageInfo("Conv2d_2b_3x3", w(64), 2),
            StageInfo("Conv2d_4a_3x3", w(192), 4),
            StageInfo("Mixed_5d", self.Mixed_5d.out_channels, 8),
            StageInfo("Mixed_6e", self.Mixed_6e.out_channels, 16),
            StageInfo("Mixed_7c", width, 32),
        ]
        if init_weights:
            self._init_weights()

    @property  # type: ignore[override]
    def min_input_size(self) -> int:
        """The smallest input side, 75 in evaluation and 299 in training with the auxiliary head.

        The stem and the two reductions have no padding. At 75 the grids are 37, 35, 35, 17, 17, 15, then
        7 (stage 3), 3 (stage 4) and 1 (stage 5); at 74 stage 5 would be empty. The auxiliary head pools
        with fixed 5x5 windows, stride 3, then applies a 5x5 convolution, so it needs the full 17x17 grid,
        which only inputs of 299 and more give (298 gives 16x16).
        """
        if self.training and self.AuxLogits is not None:
            return 299
        return 75

    # ---- construction -------------------------------------------------------------------------------
    def _width(self, channels: int) -> int:
        return max(1, channels // self.width_divisor)

    def _mixed(self, name: str, in_channels: int) -> Any:
        """The block ``name`` of :data:`INCEPTION_V3_CFG`, narrowed by ``width_divisor``."""
        block, channels = INCEPTION_V3_CFG[name]
        return block(in_channels, **{key: self._width(c) for key, c in channels.items()})

    def _init_weights(self) -> None:
        trunc_normal_init(self, std=0.1)
        if self.AuxLogits is not None:
            aux_fc = self.AuxLogits.fc
            assert isinstance(aux_fc, nn.Linear)
            nn.init.trunc_normal_(aux_fc.weight, mean=0.0, std=self.AuxLogits.fc_stddev, a=-2, b=2)

    # ---- forward ------------------------------------------------------------------------------------
    def _body(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None]:
        """The convolutional body; also the auxiliary output when ``with_aux``."""
        if self.transform_input:
            x = imagenet_to_google_scaling(x)
        # N x 3 x 299 x 299
        x = self.Conv2d_1a_3x3(x)  # N x 32 x 149 x 149
        x = self.Conv2d_2a_3x3(x)  # N x 32 x 147 x 147
        x = self.Conv2d_2b_3x3(x)  # N x 64 x 147 x 147
        x = self.maxpool1(x)  # N x 64 x 73 x 73
        x = self.Conv2d_3b_1x1(x)  # N x 80 x 73 x 73
        x = self.Conv2d_4a_3x3(x)  # N x 192 x 71 x 71
        x = self.maxpool2(x)  # N x 192 x 35 x 35

        x = self.Mixed_5b(x)  # N x 256 x 35 x 35
        x = self.Mixed_5c(x)  # N x 288 x 35 x 35
        x = self.Mixed_5d(x)  # N x 288 x 35 x 35
        x = self.Mixed_6a(x)  # N x 768 x 17 x 17
        x = self.Mixed_6b(x)  # N x 768 x 17 x 17
        x = self.Mixed_6c(x)  # N x 768 x 17 x 17
        x = self.Mixed_6d(x)  # N x 768 x 17 x 17
        x = self.Mixed_6e(x)  # N x 768 x 17 x 17
        aux = self.AuxLogits(x) if with_aux and self.AuxLogits is not None else None  # N x num_classes
        x = self.Mixed_7a(x)  # N x 1280 x 8 x 8
        x = self.Mixed_7b(x)  # N x 2048 x 8 x 8
        x = self.Mixed_7c(x)  # N x 2048 x 8 x 8
        return x, aux  # N x 2048 x 8 x 8, and the auxiliary logits

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x)  # N x 2048 x 1 x 1
        x = self.dropout(x)
        x = torch.flatten(x, 1)  # N x 2048
        return x if pre_logits else self.fc(x)  # N x num_classes

    def aux_heads(self) -> list[nn.Module | None]:
        return [self.AuxLogits]


def inception_v3_loss(
    outputs: Tensor | tuple[Tensor | None, ...],
    target: Tensor,
    aux_weight: float = 0.4,
) -> Tensor:
    """Training loss ``loss + aux_weight * aux loss``; 0.4 is the weight of Google's TF-slim training script.

    The paper does not state the weight. Same rules as :func:`cnnbook.models.googlenet_loss`.
    """
    return googlenet_loss(outputs, target, aux_weight)


@register_model(
    chapter=6,
    paper="Szegedy et al. 2015, Rethinking the Inception Architecture for Computer Vision",
    year=2015,
    input_size=(3, 299, 299),
    key_idea="factorised convolutions (5x5 -> two 3x3, 7x7 -> 1x7 + 7x1) and grid-reduction blocks",
    depth=42,
    torchvision="inception_v3",
    small_kwargs=dict(num_classes=10, aux_logits=False, width_divisor=8),
    small_input_size=(3, 75, 75),
)
def inception_v3(num_classes: int = 1000, **kwargs: Any) -> Inception3:
    """Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture"), torchvision's layout.

    27.2M parameters with the auxiliary head (the default, as torchvision), 23.8M without. It expects
    299x299 inputs in training (the auxiliary head needs them), 75x75 and more in evaluation.
    Further keyword arguments: see :class:`Inception3`.
    """
    return Inception3(num_classes, **kwargs)
