"""VGG (Simonyan, Zisserman 2014): deep and narrow, only 3x3 convolutions and 2x2 max pooling.

Every convolution is 3 x 3 with padding 1 ("same": height and width are kept); blocks of them end in a
2 x 2 max pooling with stride 2, which halves the size; channels double per block, 64-128-256-512-512.
Two stacked 3 x 3 convolutions see a 5 x 5 region and three see 7 x 7, with fewer weights than one
5 x 5 or 7 x 7 convolution (for C channels: 2 * 9 C^2 = 18 C^2 vs 25 C^2; 27 C^2 vs 49 C^2) and one
more ReLU per extra layer. Configurations A, B, D and E (11, 13, 16 and 19 weight layers) are rows of
one table, :data:`cfgs`, turned into layers by one function, :func:`make_layers`, as in torchvision,
whose attribute names we keep (torchvision's ``state_dict`` loads unchanged).

VGG-16 has 138,357,544 parameters, 102,764,544 of them in the first dense layer (25,088 x 4,096 +
4,096), while nearly all of its ~15.5 G mult-adds at 224 x 224 are in the convolutions.
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import Tensor, nn

from ..registry import register_model
from ..calc.shapes import smallest_input_side
from ._base import ImageClassifier, StageInfo, check_positive
from .._checks import check_dropout

__all__ = [
    "VGG", "cfgs", "make_layers",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
]

# Table 1 of the paper: output channels of each 3x3 convolution, "M" for a 2x2 max pooling.
cfgs: dict[str, list[Union[str, int]]] = {
    # VGG-11: 8 conv + 3 FC
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    # VGG-13: 10 conv + 3 FC
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    # VGG-16: 13 conv + 3 FC
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    # VGG-19: 16 conv + 3 FC
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(
    cfg: list[Union[str, int]], batch_norm: bool = False, in_channels: int = 3, width_divisor: int = 1
) -> nn.Sequential:
    """The convolutional body of one configuration: ``Conv3x3 [BN] ReLU`` per number, ``MaxPool2x2`` per "M".

    Args:
        cfg: a row of :data:`cfgs`, or your own list of channel counts and "M".
        batch_norm: add ``BatchNorm2d`` after every convolution (the ``_bn`` variants, chapter 7).
        in_channels: channels of the input images.
        width_divisor: divide every channel count by this (8 gives a CPU-sized network).
    """
    check_positive("in_channels", in_channels)
    check_positive("width_divisor", width_divisor)
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]  # halves H and W
        elif isinstance(v, int) and v > 0 and v % width_divisor == 0:
            channels = v // width_divisor
            conv2d = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)  # keeps H and W
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = channels
        else:
            raise ValueError(
                f'cfg entries are "M" or positive channel counts divisible by width_divisor={width_divisor}; got {v!r}.'
            )
    return nn.Sequential(*layers)


class VGG(ImageClassifier):
    """A body from :func:`make_layers`, ``AdaptiveAvgPool2d(7, 7)`` and the 25088-4096-4096-classes classifier.

    Args:
        features: the convolutional body (``make_layers(cfgs["D"])`` for VGG-16).
        num_classes: outputs of the last dense layer.
        init_weights: torchvision's initialisation (He for convolutions, N(0, 0.01) for dense layers).
        dropout: drop probability after the two hidden dense layers.
        hidden: width of the two hidden dense layers (4096).
        avgpool_size: side of the ``AdaptiveAvgPool2d`` output (7 at 224 x 224; 1 for 32 x 32 images,
            whose last map is 1 x 1 anyway).
    """

    classifier_path = "classifier.6"

    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int = 1000,
        init_weights: bool = True,
        dropout: float = 0.5,
        *,
        hidden: int = 4096,
        avgpool_size: int = 7,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("hidden", hidden)
        check_positive("avgpool_size", avgpool_size)
        check_dropout(dropout)
        convs = [m for m in features if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("features must contain at least one nn.Conv2d.")
        self.in_channels = convs[0].in_channels
        self.num_classes = num_classes
        self.feature_info = self._stages(features)
        self.min_input_size = smallest_input_side(features)  # each 2x2 pooling halves the side: 32 for 5 poolings
        last_channels = convs[-1].out_channels
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((avgpool_size, avgpool_size))
        self.classifier = nn.Sequential(
            nn.Linear(last_channels * avgpool_size * avgpool_size, hidden),  # fc6: 25,088 -> 4,096
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),  # fc7
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),  # fc8
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.constant_(m.bias, 0)

    @staticmethod
    def _stages(features: nn.Sequential) -> list[StageInfo]:
        """One stage per block: the max pooling that ends it, its channels and its total stride."""
        stages: list[StageInfo] = []
        channels = 0
        for i, m in enumerate(features):
            if isinstance(m, nn.Conv2d):
                channels = m.out_channels
            elif isinstance(m, nn.MaxPool2d):
                stages.append(StageInfo(f"features.{i}", channels, 2 ** (len(stages) + 1)))
        if not stages:
            raise ValueError('features must contain at least one max pooling ("M").')
        return stages

    def forward_features(self, x: Tensor) -> Tensor:
        # VGG-16 at 224 x 224: N x 64 x 112 x 112 -> 128 x 56 x 56 -> 256 x 28 x 28 -> 512 x 14 x 14
        return self.features(x)  # -> N x 512 x 7 x 7

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x)  # N x 512 x 7 x 7
        x = torch.flatten(x, 1)  # N x 25088
        if pre_logits:
            return self.classifier[:-1](x)  # N x 4096: the output of fc7
        return self.classifier(x)  # N x num_classes


def _vgg(
    cfg: str,
    batch_norm: bool,
    num_classes: int,
    dropout: float,
    *,
    in_channels: int = 3,
    width_divisor: int = 1,
    hidden: int = 4096,
    avgpool_size: int = 7,
    init_weights: bool = True,
) -> VGG:
    features = make_layers(cfgs[cfg], batch_norm, in_channels=in_channels, width_divisor=width_divisor)
    return VGG(features, num_classes, init_weights, dropout, hidden=hidden, avgpool_size=avgpool_size)


_VGG = dict(
    chapter=5,
    paper="Simonyan, Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition",
    year=2014,
    input_size=(3, 224, 224),
    # 32 x 32 ends in a 1 x 1 map after five poolings; channels 8-16-32-64-64, dense 128.
    small_kwargs=dict(num_classes=10, width_divisor=8, hidden=128, avgpool_size=1),
    small_input_size=(3, 32, 32),
)
_KEY = "only 3x3 convolutions and 2x2 max pooling, stacked deep"
_KEY_BN = "VGG with batch normalisation after every convolution"


@register_model(key_idea=f"{_KEY} (configuration A)", depth=11, torchvision="vgg11", **_VGG)
def vgg11(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-11, configuration A (Simonyan & Zisserman 2014): 8 conv + 3 FC.

    Keyword arguments ``in_channels``, ``width_divisor`` (:func:`make_layers`), ``hidden``, ``avgpool_size``
    and ``init_weights`` (:class:`VGG`) apply to every VGG builder.
    """
    return _vgg("A", False, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY} (configuration B)", depth=13, torchvision="vgg13", **_VGG)
def vgg13(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-13, configuration B (Simonyan & Zisserman 2014): 10 conv + 3 FC."""
    return _vgg("B", False, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY} (configuration D)", depth=16, torchvision="vgg16", **_VGG)
def vgg16(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-16, configuration D (Simonyan & Zisserman 2014): 13 conv + 3 FC, 138,357,544 parameters."""
    return _vgg("D", False, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY} (configuration E)", depth=19, torchvision="vgg19", **_VGG)
def vgg19(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-19, configuration E (Simonyan & Zisserman 2014): 16 conv + 3 FC."""
    return _vgg("E", False, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY_BN} (configuration A)", depth=11, torchvision="vgg11_bn", **_VGG)
def vgg11_bn(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-11 with batch normalisation (Simonyan & Zisserman 2014; BN: Ioffe & Szegedy 2015)."""
    return _vgg("A", True, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY_BN} (configuration B)", depth=13, torchvision="vgg13_bn", **_VGG)
def vgg13_bn(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-13 with batch normalisation (Simonyan & Zisserman 2014; BN: Ioffe & Szegedy 2015)."""
    return _vgg("B", True, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY_BN} (configuration D)", depth=16, torchvision="vgg16_bn", **_VGG)
def vgg16_bn(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-16 with batch normalisation (Simonyan & Zisserman 2014; BN: Ioffe & Szegedy 2015)."""
    return _vgg("D", True, num_classes, dropout, **kwargs)


@register_model(key_idea=f"{_KEY_BN} (configuration E)", depth=19, torchvision="vgg19_bn", **_VGG)
def vgg19_bn(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> VGG:
    """VGG-19 with batch normalisation (Simonyan & Zisserman 2014; BN: Ioffe & Szegedy 2015)."""
    return _vgg("E", True, num_classes, dropout, **kwargs)
