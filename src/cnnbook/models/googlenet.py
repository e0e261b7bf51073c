"""GoogLeNet, Inception v1 (Szegedy et al. 2014, "Going Deeper with Convolutions"), as torchvision builds it.

22 weight layers: a small stem (7x7, 1x1, 3x3 convolutions), nine Inception modules in stages 3, 4 and 5
(table 1 of the paper, kept below as data), global average pooling and one fully connected layer.
Two auxiliary classifiers, on inception4a and inception4d, add their losses with weight 0.3 during
training (:func:`googlenet_loss`) and are ignored at inference.

Differences from the 2014 paper, all torchvision's: batch normalisation after every convolution (the
paper has none; it arrived with Inception-BN), no local response normalisation, adaptive pooling in the
auxiliary heads, and a 3x3 kernel in the "5x5" path of every module (a known torchvision bug kept for
its weights; ``branch3_kernel=5`` builds the paper's modules).

Parameter counts: 13,004,888 with the two auxiliary heads (torchvision's default, ``aux_logits=True``);
6,624,904 without them (``aux_logits=False``), the figure torchvision quotes for its ImageNet weights,
whose loader drops the heads. The heads hold almost half the weights, nearly all in their two fully
connected layers (2048 -> 1024 -> 1000).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..calc.shapes import smallest_input_side
from ..layers.inception import BasicConv2d, InceptionAux, InceptionModule
from ..registry import register_model
from ._base import AuxHeadClassifier, StageInfo, check_positive, imagenet_to_google_scaling, trunc_normal_init

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "GOOGLENET_CFG", "googlenet", "googlenet_loss"]

# Table 1 of the paper: the channels of each Inception module at full width.
#                   1x1  3x3 reduce  3x3  5x5 reduce  5x5  pool proj      channels in -> out, grid at 224
GOOGLENET_CFG: dict[str, tuple[int, int, int, int, int, int]] = {
    "inception3a": (64, 96, 128, 16, 32, 32),        # 192 -> 256, 28x28
    "inception3b": (128, 128, 192, 32, 96, 64),      # 256 -> 480, 28x28
    "inception4a": (192, 96, 208, 16, 48, 64),       # 480 -> 512, 14x14 (aux1 reads it)
    "inception4b": (160, 112, 224, 24, 64, 64),      # 512 -> 512
    "inception4c": (128, 128, 256, 24, 64, 64),      # 512 -> 512
    "inception4d": (112, 144, 288, 32, 64, 64),      # 512 -> 528 (aux2 reads it)
    "inception4e": (256, 160, 320, 32, 128, 128),    # 528 -> 832
    "inception5a": (256, 160, 320, 32, 128, 128),    # 832 -> 832, 7x7
    "inception5b": (384, 192, 384, 48, 128, 128),    # 832 -> 1024, 7x7
}


class GoogLeNetOutputs(NamedTuple):
    """What GoogLeNet returns in training with its auxiliary heads (torchvision's order)."""

    logits: Tensor
    aux_logits2: Tensor | None
    aux_logits1: Tensor | None


class GoogLeNet(AuxHeadClassifier):
    """GoogLeNet with torchvision's attribute names, so torchvision's state dict loads with ``strict=True``.

    In training with ``aux_logits`` it returns ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``;
    in evaluation (or without auxiliary heads) only the logits.

    Args:
        num_classes: outputs of the classifier and of the auxiliary heads.
        aux_logits: build the two auxiliary classifiers (torchvision's default: True).
        transform_input: re-normalise inputs from ImageNet mean/std to [-1, 1], as Google's original
            weights expect (torchvision sets it only when it loads those weights).
        init_weights: torchvision's initialisation: truncated normal (std 0.01) for convolutions and
            fully connected layers, BatchNorm weight 1 and bias 0.
        dropout: before the classifier (0.2 in torchvision; the paper uses 0.4).
        dropout_aux: inside the auxiliary heads (0.7).
        in_channels: input channels.
        width_divisor: every channel count of the network is divided by it (at least 1 channel), for small
            configurations that train on a CPU; 1 is the published network.
        branch3_kernel: kernel of the "5x5" path of each module: 3 as torchvision (a bug kept for weight
            compatibility), 5 as the paper.
    """

    outputs_type = GoogLeNetOutputs

    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = True,
        transform_input: bool = False,
        init_weights: bool = True,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        in_channels: int = 3,
        width_divisor: int = 1,
        branch3_kernel: int = 3,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("in_channels", in_channels)
        check_positive("width_divisor", width_divisor, "every channel count is divided by it")
        if not 0 <= dropout < 1 or not 0 <= dropout_aux < 1:
            raise ValueError(f"dropout probabilities must lie in [0, 1); got {dropout!r} and {dropout_aux!r}.")
        if transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB images, so in_channels must be 3; got {in_channels}.")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.width_divisor = width_divisor
        self.branch3_kernel = branch3_kernel
        w = self._width

        self.conv1 = BasicConv2d(in_channels, w(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(w(64), w(64), kernel_size=1)
        self.conv3 = BasicConv2d(w(64), w(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = self._inception("inception3a", w(192))
        self.inception3b = self._inception("inception3b", self.inception3a.out_channels)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = self._inception("inception4a", self.inception3b.out_channels)
        self.inception4b = self._inception("inception4b", self.inception4a.out_channels)
        self.inception4c = self._inception("inception4c", self.inception4b.out_channels)
        self.inception4d = self._inception("inception4d", self.inception4c.out_channels)
        self.inception4e = self._inception("inception4e", self.inception4d.out_channels)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = self._inception("inception5a", self.inception4e.out_channels)
        self.inception5b = self._inception("inception5b", self.inception5a.out_channels)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = self._aux(self.inception4a.out_channels, num_classes, dropout_aux)  # 512 channels
            self.aux2 = self._aux(self.inception4d.out_channels, num_classes, dropout_aux)  # 528 channels

        width = self.inception5b.out_channels  # 1024 at full width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc: nn.Module = nn.Linear(width, num_classes)

        self.feature_info = [
            StageInfo("conv1", w(64), 2),
            StageInfo("conv3", w(192), 4),
            StageInfo("inception3b", self.inception3b.out_channels, 8),
            StageInfo("inception4e", self.inception4e.out_channels, 16),
            StageInfo("inception5b", width, 32),
        ]
        # 15: 15 -> 8 -> 4 -> 2 -> 1 (maxpool3) -> 1; at 14 the map is 1x1 before maxpool3 (3x3, no padding).
        # Every path inside an inception module keeps the side, so the layers can be taken as one chain.
        self.min_input_size = smallest_input_side(self)
        if init_weights:
            self._init_weights()

    # ---- construction -------------------------------------------------------------------------------
    def _width(self, channels: int) -> int:
        return max(1, channels // self.width_divisor)

    def _inception(self, name: str, in_channels: int) -> InceptionModule:
        """The Inception module ``name`` of :data:`GOOGLENET_CFG`, narrowed by ``width_divisor``."""
        channels = [self._width(c) for c in GOOGLENET_CFG[name]]
        return InceptionModule(in_channels, *channels, branch3_kernel=self.branch3_kernel)

    def _aux(self, in_channels: int, num_classes: int, dropout: float) -> InceptionAux:
        return InceptionAux(in_channels, num_classes, self._width(128), self._width(1024), dropout)

    def _init_weights(self) -> None:
        trunc_normal_init(self, std=0.01)

    # ---- forward ------------------------------------------------------------------------------------
    def _body(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The convolutional body; also the two auxiliary outputs when ``with_aux``."""
        if self.transform_input:
            x = imagenet_to_google_scaling(x)
        # N x 3 x 224 x 224
        x = self.conv1(x)  # N x 64 x 112 x 112
        x = self.maxpool1(x)  # N x 64 x 56 x 56
        x = self.conv2(x)  # N x 64 x 56 x 56
        x = self.conv3(x)  # N x 192 x 56 x 56
        x = self.maxpool2(x)  # N x 192 x 28 x 28

        x = self.inception3a(x)  # N x 256 x 28 x 28
        x = self.inception3b(x)  # N x 480 x 28 x 28
        x = self.maxpool3(x)  # N x 480 x 14 x 14

        x = self.inception4a(x)  # N x 512 x 14 x 14
        aux1 = self.aux1(x) if with_aux and self.aux1 is not None else None  # N x num_classes
        x = self.inception4b(x)  # N x 512 x 14 x 14
        x = self.inception4c(x)  # N x 512 x 14 x 14
        x = self.inception4d(x)  # N x 528 x 14 x 14
        aux2 = self.aux2(x) if with_aux and self.aux2 is not None else None  # N x num_classes
        x = self.inception4e(x)  # N x 832 x 14 x 14
        x = self.maxpool4(x)  # N x 832 x 7 x 7

        x = self.inception5a(x)  # N x 832 x 7 x 7
        x = self.inception5b(x)  # N x 1024 x 7 x 7
        return x, aux2, aux1  # N x 1024 x H/32 x W/32, then the auxiliary logits in GoogLeNetOutputs' order

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x)  # N x 1024 x 1 x 1
        x = torch.flatten(x, 1)  # N x 1024
        x = self.dropout(x)
        return x if pre_logits else self.fc(x)  # N x num_classes

    def aux_heads(self) -> list[nn.Module | None]:
        return [self.aux1, self.aux2]


def googlenet_loss(
    outputs: Tensor | tuple[Tensor | None, ...],
    target: Tensor,
    aux_weight: float = 0.3,
) -> Tensor:
    """Training loss with auxiliary classifiers: ``loss + aux_weight * (aux loss 2 + aux loss 1)``.

    GoogLeNet weights each auxiliary loss by 0.3 (Szegedy et al. 2014, section 5). ``outputs`` is what
    the model returns: a tensor of logits (evaluation, or no auxiliary heads), or a tuple whose first
    entry is the main logits and whose other entries are auxiliary logits (``None`` entries are skipped),
    so it also serves Inception-v3's ``(logits, aux_logits)``. Losses are cross-entropies.
    """
    if isinstance(outputs, Tensor):
        return F.cross_entropy(outputs, target)
    logits, *aux_outputs = outputs
    if logits is None:
        raise ValueError("The first entry of outputs must be the main logits; got None.")
    loss = F.cross_entropy(logits, target)
    for aux in aux_outputs:
        if aux is not None:
            loss = loss + aux_weight * F.cross_entropy(aux, target)
    return loss


@register_model(
    chapter=6,
    paper="Szegedy et al. 2014, Going Deeper with Convolutions",
    year=2014,
    input_size=(3, 224, 224),
    key_idea="Inception modules: 1x1, 3x3, 5x5 and pooling paths side by side, 1x1 reductions, aux classifiers",
    depth=22,
    torchvision="googlenet",
    small_kwargs=dict(num_classes=10, width_divisor=8),
    small_input_size=(3, 32, 32),
)
def googlenet(num_classes: int = 1000, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Szegedy et al. 2014, "Going Deeper with Convolutions"), torchvision's layout.

    13.0M parameters with the auxiliary heads (the default, as torchvision), 6.6M without
    (``aux_logits=False``). ``branch3_kernel=5`` gives the paper's 5x5 paths (torchvision uses 3x3).
    Further keyword arguments: see :class:`GoogLeNet`.
    """
    return GoogLeNet(num_classes, **kwargs)
