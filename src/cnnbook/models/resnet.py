"""ResNet (He, Zhang, Ren, Sun 2015, Deep Residual Learning for Image Recognition) and its family.

One class builds them all; the variants differ by data, not by copied code:

- ResNet-18/34 (basic blocks) and ResNet-50/101/152 (bottlenecks), as torchvision (stride on the 3x3 of the
  bottleneck, "v1.5"); ResNet-50 has 25,557,032 parameters.
- Plain-18 ... Plain-152: the same layers with ``shortcut=False``. As in He et al.'s plain networks there is
  no shortcut of any kind, so neither the identity nor the 1x1 projection exists; a plain network has the
  parameters of its ResNet twin minus the projections. (The paper only trains plain-18/34; the deeper plain
  bottleneck networks are the same recipe applied to ResNet-50/101/152.)
- ResNeXt-50 32x4d (Xie et al. 2017): bottlenecks with a grouped 3x3 convolution (32 groups of 4 channels).
- SE-ResNet-50 (Hu et al. 2017): bottlenecks with a squeeze-and-excitation block on the residual branch,
  built by passing ``attn_layer=SqueezeExcite``.
- Pre-activation ResNet (He et al. 2016): ``block=PreActBasicBlock`` or ``PreActBottleneck``.
- A CIFAR-style stem (``stem="cifar"``: one 3x3 stride-1 convolution, no max-pooling) and free ``widths``,
  for small networks on 32x32 images, and :func:`cifar_resnet` for He et al.'s 6n+2-layer CIFAR networks
  used in the plain-vs-residual depth experiment.

Attribute names are torchvision's (``conv1, bn1, relu, maxpool, layer1 ... layer4, avgpool, fc``), so a
torchvision ``state_dict`` loads with ``strict=True``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..layers.residual import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ResidualBlock,
)
from ..layers.squeeze_excite import SqueezeExcite
from ..registry import register_model
from .._checks import check_stem
from ._base import ImageClassifier, StageInfo, check_positive

__all__ = [
    "ResNet",
    "cifar_resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "plain_resnet18",
    "plain_resnet34",
    "plain_resnet50",
    "plain_resnet101",
    "plain_resnet152",
    "resnext50_32x4d",
    "se_resnet50",
    "preact_resnet18",
    "resnet20_cifar",
    "plain_resnet20_cifar",
]

class ResNet(ImageClassifier):
    """Stem, stages of residual blocks, global average pooling, one fully connected layer.

    Args:
        block: ``BasicBlock``, ``Bottleneck`` or a pre-activation block; its ``expansion`` fixes the
            output channels of a stage (``width * expansion``).
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50. Stage ``i`` is ``layer{i+1}``.
        num_classes: outputs of ``fc``.
        in_channels: image channels.
        zero_init_residual: zero the last BN (gamma) of every residual branch, so each block starts as the
            identity (Goyal et al. 2017); as torchvision.
        groups, width_per_group: ResNeXt cardinality and channels per group (1 and 64 for ResNet).
        widths: channels of each stage before expansion; ``widths[0]`` is also the stem's output.
        stem: ``"imagenet"`` (7x7 stride-2 conv + 3x3 stride-2 max-pool: 224 -> 56) or ``"cifar"``
            (3x3 stride-1 conv, no pooling: 32 -> 32).
        shortcut: ``False`` builds the plain network (no identity, no projection).
        attn_layer: module class applied to every block's residual branch, e.g. ``SqueezeExcite``.
        norm_layer: normalisation layer class.
    """

    classifier_path = "fc"

    def __init__(
        self,
        block: type[ResidualBlock],
        layers: Sequence[int],
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        shortcut: bool = True,
        attn_layer: Callable[[int], nn.Module] | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        _check_config(layers, widths, stem, num_classes, in_channels)
        self.in_channels = in_channels
        self.num_classes = num_classes
        # Every convolution and pooling pads (k - 1) / 2, so floor((h + 2p - k) / s) + 1 >= 1 for any h >= 1.
        self.min_input_size = 1
        self.shortcut = shortcut
        self.norm_layer = norm_layer
        self.block_kwargs: dict[str, Any] = dict(
            groups=groups, base_width=width_per_group, norm_layer=norm_layer, shortcut=shortcut, attn_layer=attn_layer
        )

        stem_channels = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, stem_channels, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        stem_stride = 2 if stem == "imagenet" else 1  # of conv1, and again of the max-pooling
        self.feature_info = [StageInfo("relu", stem_channels, stem_stride)]
        reduction = stem_stride * stem_stride  # 4 for the ImageNet stem (224 -> 56), 1 for CIFAR's

        channels = stem_channels
        self.stage_names: list[str] = []
        for i, (num_blocks, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2  # stage 1 keeps the stem's resolution, every later one halves it
            reduction *= stride
            name = f"layer{i + 1}"
            self.add_module(name, self._make_layer(block, channels, width, num_blocks, stride))
            channels = width * block.expansion
            self.stage_names.append(name)
            self.feature_info.append(StageInfo(name, channels, reduction))

        # Pre-activation blocks end on a convolution: the body needs one last BN-ReLU (He et al. 2016).
        self.final_act = nn.Sequential(norm_layer(channels), nn.ReLU(inplace=True)) if block.preact else None
        if self.final_act is not None:
            self.feature_info[-1] = StageInfo("final_act", channels, reduction)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(
        self, block: type[ResidualBlock], in_channels: int, width: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        """One stage; only its first block may change the shape, and only it may need a projection shortcut."""
        out_channels = width * block.expansion
        downsample = None
        if self.shortcut and (stride != 1 or in_channels != out_channels):
            downsample = block.projection(in_channels, out_channels, stride, self.norm_layer)
        blocks = [block(in_channels, width, stride, downsample, **self.block_kwargs)]
        for _ in range(1, num_blocks):
            blocks.append(block(out_channels, width, **self.block_kwargs))
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """He (Kaiming) normal initialisation of the convolutions, BN to gamma = 1, beta = 0; as torchvision."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_last()

    def forward_features(self, x: Tensor) -> Tensor:
        # Shapes for ResNet-50 on N x 3 x 224 x 224 (the CIFAR stem keeps 32 x 32 through layer1).
        x = self.conv1(x)                 # N x 64 x 112 x 112
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)               # N x 64 x 56 x 56
        for name in self.stage_names:     # layer1: N x 256 x 56 x 56, layer2: N x 512 x 28 x 28,
            x = getattr(self, name)(x)    # layer3: N x 1024 x 14 x 14, layer4: N x 2048 x 7 x 7
        if self.final_act is not None:
            x = self.final_act(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x)               # N x 2048 x 1 x 1
        x = torch.flatten(x, 1)           # N x 2048
        if pre_logits:
            return x
        return self.fc(x)                 # N x num_classes


def _check_config(
    layers: Sequence[int], widths: Sequence[int], stem: str, num_classes: int, in_channels: int
) -> None:
    if len(layers) == 0 or len(layers) != len(widths):
        raise ValueError(
            f"layers and widths must give one entry per stage (and at least one stage); "
            f"got layers={tuple(layers)}, widths={tuple(widths)}."
        )
    for i, (n, w) in enumerate(zip(layers, widths)):
        check_positive(f"layers[{i}]", n, "blocks in a stage")
        check_positive(f"widths[{i}]", w, "channels of a stage")
    check_stem(stem)
    check_positive("num_classes", num_classes)
    check_positive("in_channels", in_channels)


# depth -> (block, blocks per stage), He et al. 2015, Table 1.
RESNET_LAYERS: dict[int, tuple[type[ResidualBlock], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
PREACT = {BasicBlock: PreActBasicBlock, Bottleneck: PreActBottleneck}


def _resnet(depth: int, preact: bool = False, **kwargs: Any) -> ResNet:
    block, layers = RESNET_LAYERS[depth]
    return ResNet(PREACT[block] if preact else block, layers, **kwargs)


def cifar_resnet(
    depth: int, shortcut: bool = True, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64), **kwargs: Any
) -> ResNet:
    """He et al. 2015's CIFAR-10 networks (Section 4.2): ``6n + 2`` layers, 3 stages of ``n`` basic blocks.

    3x3 stem with 16 channels, stages of 16, 32, 64 channels on 32x32, 16x16, 8x8 maps, global average
    pooling and a 10-way FC layer: depth 20, 32, 44, 56, 110 (and ``shortcut=False`` for plain-20 ... 56,
    the paper's Figure 6). He et al. use parameter-free zero-padding shortcuts (option A) where the shape
    changes; this uses the 1x1 projections (option B) of the ImageNet networks, 2 small extra layers.
    """
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...); got {depth!r}.")
    n = (depth - 2) // 6
    return ResNet(
        BasicBlock, (n,) * len(widths), num_classes, widths=widths, stem="cifar", shortcut=shortcut, **kwargs
    )


# A small configuration of every ImageNet-size builder: CIFAR stem, a quarter of the widths, 10 classes.
_SMALL = dict(num_classes=10, stem="cifar", widths=(16, 32, 64, 128))
_HE2015 = "He, Zhang, Ren, Sun 2015, Deep Residual Learning for Image Recognition"
_RESNET = dict(chapter=8, paper=_HE2015, year=2015, input_size=(3, 224, 224), small_kwargs=_SMALL)
_PLAIN = "the ResNet layers without any shortcut, for the degradation experiment"


@register_model(key_idea="residual connections: a[l+2] = g(z[l+2] + a[l]), basic blocks", depth=18,
                torchvision="resnet18", **_RESNET)
def resnet18(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-18 (He et al. 2015): basic blocks (2, 2, 2, 2), 11,689,512 parameters."""
    return _resnet(18, num_classes=num_classes, **kwargs)


@register_model(key_idea="residual connections, basic blocks", depth=34, torchvision="resnet34", **_RESNET)
def resnet34(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-34 (He et al. 2015): basic blocks (3, 4, 6, 3), 21,797,672 parameters."""
    return _resnet(34, num_classes=num_classes, **kwargs)


@register_model(key_idea="residual bottleneck blocks (1x1 reduce, 3x3, 1x1 restore)", depth=50,
                torchvision="resnet50", **_RESNET)
def resnet50(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-50 (He et al. 2015): bottlenecks (3, 4, 6, 3), 25,557,032 parameters."""
    return _resnet(50, num_classes=num_classes, **kwargs)


@register_model(key_idea="residual bottleneck blocks, deeper", depth=101, torchvision="resnet101", **_RESNET)
def resnet101(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-101 (He et al. 2015): bottlenecks (3, 4, 23, 3), 44,549,160 parameters."""
    return _resnet(101, num_classes=num_classes, **kwargs)


@register_model(key_idea="residual bottleneck blocks, ILSVRC 2015 winner", depth=152, torchvision="resnet152",
                **_RESNET)
def resnet152(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-152 (He et al. 2015): bottlenecks (3, 8, 36, 3), 60,192,808 parameters."""
    return _resnet(152, num_classes=num_classes, **kwargs)


@register_model(key_idea=_PLAIN, depth=18, **_RESNET)
def plain_resnet18(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Plain-18 (He et al. 2015): ResNet-18's convolutions with no shortcuts (Table 2, Figure 4)."""
    return _resnet(18, num_classes=num_classes, shortcut=False, **kwargs)


@register_model(key_idea=_PLAIN, depth=34, **_RESNET)
def plain_resnet34(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Plain-34 (He et al. 2015): trains worse than plain-18, the degradation problem (Figure 4)."""
    return _resnet(34, num_classes=num_classes, shortcut=False, **kwargs)


@register_model(key_idea=_PLAIN, depth=50, **_RESNET)
def plain_resnet50(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Plain-50: ResNet-50's bottlenecks with no shortcuts (the paper's plain recipe at depth 50)."""
    return _resnet(50, num_classes=num_classes, shortcut=False, **kwargs)


@register_model(key_idea=_PLAIN, depth=101, **_RESNET)
def plain_resnet101(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Plain-101: ResNet-101's bottlenecks with no shortcuts."""
    return _resnet(101, num_classes=num_classes, shortcut=False, **kwargs)


@register_model(key_idea=_PLAIN, depth=152, **_RESNET)
def plain_resnet152(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Plain-152: ResNet-152's bottlenecks with no shortcuts."""
    return _resnet(152, num_classes=num_classes, shortcut=False, **kwargs)


@register_model(
    key_idea="grouped 3x3 convolutions in the bottleneck: 32 paths of width 4",
    depth=50,
    torchvision="resnext50_32x4d",
    chapter=8,
    paper="Xie, Girshick, Dollar, Tu, He 2017, Aggregated Residual Transformations for Deep Neural Networks",
    year=2017,
    input_size=(3, 224, 224),
    small_kwargs=_SMALL,
)
def resnext50_32x4d(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d (Xie et al. 2017): ResNet-50 with cardinality 32 and 4 channels per group."""
    return _resnet(50, num_classes=num_classes, groups=32, width_per_group=4, **kwargs)


@register_model(
    key_idea="squeeze-and-excitation: per-channel weights from a global summary",
    depth=50,
    chapter=9,
    paper="Hu, Shen, Sun 2017, Squeeze-and-Excitation Networks",
    year=2017,
    input_size=(3, 224, 224),
    small_kwargs=_SMALL,
)
def se_resnet50(num_classes: int = 1000, reduction: int = 16, **kwargs: Any) -> ResNet:
    """SE-ResNet-50 (Hu et al. 2017): an SE block (ratio r = 16) on every bottleneck's residual branch.

    28,088,024 parameters: ResNet-50's 25,557,032 plus 2,530,992 in the 16 SE blocks. Hu et al. stride the
    first 1x1 convolution of a bottleneck; this follows torchvision's ResNet-50 and strides the 3x3.
    """
    check_positive("reduction", reduction, "the SE hidden layer has channels // reduction units")
    return _resnet(50, num_classes=num_classes, attn_layer=partial(SqueezeExcite, reduction=reduction), **kwargs)


@register_model(
    key_idea="pre-activation blocks: BN-ReLU-conv, nothing after the addition",
    depth=18,
    chapter=8,
    paper="He, Zhang, Ren, Sun 2016, Identity Mappings in Deep Residual Networks",
    year=2016,
    input_size=(3, 224, 224),
    small_kwargs=_SMALL,
)
def preact_resnet18(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Pre-activation ResNet-18 (He et al. 2016): ResNet-18's layers in BN-ReLU-conv order."""
    return _resnet(18, preact=True, num_classes=num_classes, **kwargs)


_CIFAR = dict(chapter=8, paper=_HE2015, year=2015, input_size=(3, 32, 32), depth=20, small_input_size=(3, 32, 32))


@register_model(key_idea="6n+2-layer CIFAR ResNet (n = 3), 16-32-64 channels", **_CIFAR)
def resnet20_cifar(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet-20 for CIFAR-10 (He et al. 2015, Section 4.2): 3 stages of 3 basic blocks, ~0.27M parameters."""
    return cifar_resnet(20, num_classes=num_classes, **kwargs)


@register_model(key_idea="plain-20 for CIFAR: ResNet-20 without shortcuts", **_CIFAR)
def plain_resnet20_cifar(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """Plain-20 for CIFAR-10 (He et al. 2015, Figure 6): ResNet-20 without shortcuts."""
    return cifar_resnet(20, shortcut=False, num_classes=num_classes, **kwargs)
