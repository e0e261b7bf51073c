"""Network in Network (Lin, Chen, Yan 2013): 1x1 convolutions and global average pooling.

Two ideas that every later network of the course reuses:

- **mlpconv**: a convolution followed by two 1 x 1 convolutions, each with a ReLU. A 1 x 1 convolution
  applies the same small fully connected layer to the channel vector of every pixel, so the block is
  a tiny MLP slid over the image ("a network in the network"). With one channel a 1 x 1 convolution is
  just scaling; with many it mixes channels, and it can shrink or grow their number cheaply.
- **global average pooling** instead of fully connected layers: the last mlpconv outputs one map per
  class, and each class score is the average of its map. The head has no weights at all (AlexNet's
  dense layers hold ~58M of its 61M parameters) and each map is forced to be a "confidence map" of its
  class; the price is less capacity in the head.

The layout here is the authors' ImageNet model (released with the paper as a Caffe model; the paper
itself reports CIFAR-10/100, SVHN and MNIST networks): AlexNet-like sizes with 96-256-384 channels and
11/5/3 kernels, max pooling 3/2, dropout before the last block, whose 3 x 3 convolution has 1024 maps
and whose last 1 x 1 convolution has one map per class. Dive into Deep Learning's NiN is the same
network with the 1024 replaced by the number of classes; we keep the original so that the features
before the classifier do not depend on ``num_classes`` (which transfer learning needs). The original
pools with Caffe's rounding (224 -> 54 -> 27 -> 13 -> 6), hence ``ceil_mode=True``; d2l's rounding down
gives 54 -> 26 -> 12 -> 5, which global average pooling does not mind.

``classifier`` is the last 1 x 1 convolution of the fourth mlpconv, kept apart from ``features`` so that
``reset_classifier`` can replace it (with another 1 x 1 convolution). Its ReLU follows it, as in the
original, and the global average pool comes last.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..registry import register_model
from .._checks import check_dropout, check_positive
from ._base import ImageClassifier, StageInfo
from ..calc.shapes import smallest_input_side

__all__ = ["MLPConv", "NiN", "nin"]


class MLPConv(nn.Sequential):
    """An mlpconv block: a ``kernel_size`` convolution, then 1 x 1 convolutions, each followed by ReLU.

    Args:
        in_channels: channels in.
        channels: output channels of the k x k convolution and of each following 1 x 1 convolution;
            NiN's blocks have three entries, e.g. ``(96, 96, 96)``.
        kernel_size: kernel of the first convolution.
        stride: stride of the first convolution.
        padding: padding of the first convolution.
    """

    def __init__(
        self, in_channels: int, channels: Sequence[int], kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        if not channels or min(channels) <= 0:
            raise ValueError(f"channels must be a non-empty sequence of positive channel counts; got {channels!r}.")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, channels[0], kernel_size, stride=stride, padding=padding),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=1), nn.ReLU(inplace=True)]  # an MLP on every pixel
        super().__init__(*layers)
        self.out_channels = channels[-1]


class NiN(ImageClassifier):
    """Four mlpconv blocks with max pooling between them, a 1 x 1 class convolution and global average pooling.

    Args:
        num_classes: maps of the last 1 x 1 convolution, one per class.
        dropout: drop probability before the fourth mlpconv (0.5 in the original).
        in_channels: channels of the input images.
        width_divisor: divide every channel count (96, 256, 384, 1024) by this (4 for a CPU-sized network).
    """

    classifier_path = "classifier"

    def __init__(
        self, num_classes: int = 1000, dropout: float = 0.5, *, in_channels: int = 3, width_divisor: int = 1
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("in_channels", in_channels)
        check_positive("width_divisor", width_divisor)
        check_dropout(dropout)
        if any(c % width_divisor for c in (96, 256, 384, 1024)):
            raise ValueError(f"width_divisor={width_divisor} must divide the channel counts 96, 256, 384 and 1024.")
        c1, c2, c3, c4 = (c // width_divisor for c in (96, 256, 384, 1024))
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.features = nn.Sequential(
            MLPConv(in_channels, (c1, c1, c1), kernel_size=11, stride=4),  # 0: N x 96 x 54 x 54
            nn.MaxPool2d(3, stride=2, ceil_mode=True),                    # 1: N x 96 x 27 x 27
            MLPConv(c1, (c2, c2, c2), kernel_size=5, padding=2),           # 2: N x 256 x 27 x 27
            nn.MaxPool2d(3, stride=2, ceil_mode=True),                    # 3: N x 256 x 13 x 13
            MLPConv(c2, (c3, c3, c3), kernel_size=3, padding=1),           # 4: N x 384 x 13 x 13
            nn.MaxPool2d(3, stride=2, ceil_mode=True),                    # 5: N x 384 x 6 x 6
            nn.Dropout(p=dropout),                                        # 6
            MLPConv(c3, (c4, c4), kernel_size=3, padding=1),               # 7: N x 1024 x 6 x 6 (4th mlpconv, part 1)
        )
        self.classifier = nn.Conv2d(c4, num_classes, kernel_size=1)  # 4th mlpconv, last 1x1: one map per class
        self.relu = nn.ReLU()  # not in place: after reset_classifier(0) it sees the features themselves
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.feature_info = [
            StageInfo("features.1", c1, 8),
            StageInfo("features.3", c2, 16),
            StageInfo("features.5", c3, 32),
            StageInfo("features.7", c4, 32),
        ]
        self.min_input_size = smallest_input_side(self.features)
        for m in self.modules():  # He initialisation: twelve ReLU layers without normalisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1024 x 6 x 6 at 224 x 224

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if pre_logits:
            # The globally averaged input of the class convolution, N x 1024. A 1 x 1 convolution and an
            # average commute, so without the ReLU on the class maps the logits would be exactly
            # classifier(pooled): a GAP head is a linear classifier on globally pooled features.
            return torch.flatten(self.global_pool(x), 1)
        x = self.relu(self.classifier(x))  # N x num_classes x 6 x 6: one confidence map per class
        x = self.global_pool(x)  # N x num_classes x 1 x 1: the average of each map
        return torch.flatten(x, 1)  # N x num_classes


@register_model(
    chapter=4,
    paper="Lin, Chen, Yan 2013, Network In Network",
    year=2013,
    input_size=(3, 224, 224),
    key_idea="mlpconv (1x1 convolutions as a per-pixel MLP) and global average pooling instead of FC layers",
    depth=12,
    # 64 -> 14 -> 7 -> 3 -> 1: the stem is kept, the channels are divided by 4.
    small_kwargs=dict(num_classes=10, width_divisor=4),
    small_input_size=(3, 64, 64),
)
def nin(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> NiN:
    """Network in Network (Lin et al. 2013), the authors' ImageNet model: 96-256-384-1024 channels, GAP head.

    Further keyword arguments (``in_channels``, ``width_divisor``): see :class:`NiN`.
    """
    return NiN(num_classes, dropout, **kwargs)
