"""DenseNet (Huang, Liu, van der Maaten, Weinberger 2016, Densely Connected Convolutional Networks).

DenseNet-BC as torchvision builds it: a stem, dense blocks separated by transition layers (1x1 conv halving
the channels, 2x2 average pooling halving H and W), a final BatchNorm, ReLU, global average pooling and one
fully connected layer. The variants differ by data: growth rate ``k``, layers per block (``block_config``)
and the stem's width.

Attribute names are torchvision's (``features.conv0, norm0, relu0, pool0, denseblock1, transition1, ...,
norm5``; ``classifier``), so a torchvision ``state_dict`` loads with ``strict=True``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.dense import DenseBlock, Transition
from ..registry import register_model
from .._checks import check_stem
from ..calc.shapes import smallest_input_side
from ._base import ImageClassifier, StageInfo, check_positive

__all__ = ["DenseNet", "densenet121", "densenet169", "densenet201", "densenet_small"]

class DenseNet(ImageClassifier):
    """Stem, dense blocks and transitions, final BN, ReLU, global average pooling, classifier.

    Args:
        growth_rate: k, channels each dense layer adds (32 for the ImageNet models).
        block_config: dense layers per block, e.g. ``(6, 12, 24, 16)`` for DenseNet-121.
        num_init_features: channels of the stem (64 on ImageNet, 2k in DenseNet-BC on CIFAR).
        bn_size: bottleneck width of a dense layer in units of k (4).
        drop_rate: dropout after each dense layer.
        num_classes: outputs of ``classifier``.
        in_channels: image channels.
        compression: theta, the fraction of channels a transition keeps (0.5 in DenseNet-BC).
        stem: ``"imagenet"`` (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool) or ``"cifar"``
            (3x3 stride-1 conv, BN, ReLU, no pooling; Huang et al.'s CIFAR stem is the convolution alone).
    """

    classifier_path = "classifier"

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        compression: float = 0.5,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        _check_config(growth_rate, block_config, num_init_features, num_classes, in_channels, compression, stem)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.growth_rate = growth_rate
        self.block_config = tuple(block_config)

        self.features, stride = _stem(stem, in_channels, num_init_features)
        self.feature_info = [StageInfo("features.relu0", num_init_features, stride)]
        if stem == "imagenet":
            stride *= 2  # pool0

        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            channels = block.out_channels                                # k0 + L * k
            if i == len(block_config) - 1:
                break
            self.feature_info.append(StageInfo(f"features.denseblock{i + 1}", channels, stride))
            transition = Transition(channels, int(channels * compression))
            self.features.add_module(f"transition{i + 1}", transition)  # H/2, W/2, theta * channels
            channels = transition.out_channels
            stride *= 2

        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.feature_info.append(StageInfo("features.norm5", channels, stride))
        self.classifier = nn.Linear(channels, num_classes)
        self.min_input_size = smallest_input_side(self.features)  # 29 for the ImageNet stem with 3 transitions
        self._init_weights()

    def _init_weights(self) -> None:
        """As torchvision: He (Kaiming) normal convolutions, BN gamma = 1 and beta = 0, zero classifier bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        # DenseNet-121 on N x 3 x 224 x 224: stem N x 64 x 56 x 56, denseblock1 N x 256 x 56 x 56,
        # transition1 N x 128 x 28 x 28, ..., denseblock4 and norm5 N x 1024 x 7 x 7.
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = F.relu(x, inplace=True)              # norm5 is followed by a ReLU (as in torchvision's forward)
        x = F.adaptive_avg_pool2d(x, (1, 1))     # N x 1024 x 1 x 1
        x = torch.flatten(x, 1)                  # N x 1024
        if pre_logits:
            return x
        return self.classifier(x)                # N x num_classes


def _stem(stem: str, in_channels: int, channels: int) -> tuple[nn.Sequential, int]:
    """The stem and its stride at ``relu0``."""
    if stem == "imagenet":
        layers = OrderedDict([
            ("conv0", nn.Conv2d(in_channels, channels, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(channels)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ])
        return nn.Sequential(layers), 2
    layers = OrderedDict([
        ("conv0", nn.Conv2d(in_channels, channels, kernel_size=3, stride=1, padding=1, bias=False)),
        ("norm0", nn.BatchNorm2d(channels)),
        ("relu0", nn.ReLU(inplace=True)),
    ])
    return nn.Sequential(layers), 1


def _check_config(
    growth_rate: int,
    block_config: Sequence[int],
    num_init_features: int,
    num_classes: int,
    in_channels: int,
    compression: float,
    stem: str,
) -> None:
    check_positive("growth_rate", growth_rate, "each dense layer adds growth_rate channels")
    if len(block_config) == 0:
        raise ValueError("block_config must list at least one dense block; got ().")
    for i, n in enumerate(block_config):
        check_positive(f"block_config[{i}]", n, "dense layers in a block")
    check_positive("num_init_features", num_init_features)
    check_positive("num_classes", num_classes)
    check_positive("in_channels", in_channels)
    if not 0.0 < compression <= 1.0:
        raise ValueError(f"compression must be in (0, 1] (the fraction of channels a transition keeps); "
                         f"got {compression!r}.")
    check_stem(stem)


_HUANG = "Huang, Liu, van der Maaten, Weinberger 2016, Densely Connected Convolutional Networks"
_DENSENET = dict(
    chapter=9,
    paper=_HUANG,
    year=2016,
    input_size=(3, 224, 224),
    # Small configuration: CIFAR stem and k = 8 (the depth, and so the block_config, stays).
    small_kwargs=dict(num_classes=10, growth_rate=8, num_init_features=16, stem="cifar"),
)


@register_model(key_idea="dense connectivity: each layer reads all preceding maps, concatenated", depth=121,
                torchvision="densenet121", **_DENSENET)
def densenet121(num_classes: int = 1000, growth_rate: int = 32, num_init_features: int = 64, **kwargs: Any) -> DenseNet:
    """DenseNet-121 (Huang et al. 2016): k = 32, blocks (6, 12, 24, 16), 7,978,856 parameters."""
    return DenseNet(growth_rate, (6, 12, 24, 16), num_init_features, num_classes=num_classes, **kwargs)


@register_model(key_idea="dense connectivity, deeper", depth=169, torchvision="densenet169", **_DENSENET)
def densenet169(num_classes: int = 1000, growth_rate: int = 32, num_init_features: int = 64, **kwargs: Any) -> DenseNet:
    """DenseNet-169 (Huang et al. 2016): k = 32, blocks (6, 12, 32, 32), 14,149,480 parameters."""
    return DenseNet(growth_rate, (6, 12, 32, 32), num_init_features, num_classes=num_classes, **kwargs)


@register_model(key_idea="dense connectivity, deeper still", depth=201, torchvision="densenet201", **_DENSENET)
def densenet201(num_classes: int = 1000, growth_rate: int = 32, num_init_features: int = 64, **kwargs: Any) -> DenseNet:
    """DenseNet-201 (Huang et al. 2016): k = 32, blocks (6, 12, 48, 32), 20,013,928 parameters."""
    return DenseNet(growth_rate, (6, 12, 48, 32), num_init_features, num_classes=num_classes, **kwargs)


@register_model(
    key_idea="a small DenseNet-BC for 32x32 images: k = 12, three blocks of 4 layers",
    depth=28,
    chapter=9,
    paper=_HUANG,
    year=2016,
    input_size=(3, 32, 32),
)
def densenet_small(
    num_classes: int = 10,
    growth_rate: int = 12,
    block_config: Sequence[int] = (4, 4, 4),
    num_init_features: int = 24,
    **kwargs: Any,
) -> DenseNet:
    """A small DenseNet-BC after Huang et al. 2016's CIFAR networks, for training on a CPU in seconds.

    CIFAR stem with 2k channels, three dense blocks on 32x32, 16x16 and 8x8 maps, compression 0.5. With the
    defaults: 1 + 2 * 12 + 2 + 1 = 28 weight layers, 102,778 parameters, 24 -> 72 -> 36 -> 84 -> 42 -> 90
    channels.
    """
    return DenseNet(growth_rate, block_config, num_init_features, num_classes=num_classes, stem="cifar", **kwargs)
