"""AlexNet (Krizhevsky, Sutskever, Hinton 2012): a deeper, bigger LeNet that won ILSVRC 2012.

Five convolutions and three fully connected layers ("8 layers"), about 60M parameters, 224 x 224 x 3
input. What changed from LeNet: ReLU instead of tanh/sigmoid, dropout in the two hidden dense layers,
overlapping max pooling (window z = 3, stride s = 2), local response normalisation
(:class:`~cnnbook.layers.LocalResponseNorm`), heavy data augmentation, ensembles, and training split
over two GPUs (grouped convolutions, :mod:`cnnbook.layers.grouped_conv`).

One class, :class:`AlexNet`, builds every layout; a layout is data (:class:`AlexNetLayout`):

- ``alexnet``: torchvision's layout (from Krizhevsky's 2014 "one weird trick" single-GPU network):
  64-192-384-256-256 channels, no LRN, no groups, ``AdaptiveAvgPool2d(6, 6)``; 61,100,840 parameters.
  Attribute names are torchvision's, so torchvision's ``state_dict`` loads unchanged.
- ``alexnet_paper``: the 2012 paper's layout: 96-256-384-384-256 channels, LRN after conv1 and conv2,
  ``groups=2`` on conv2, conv4 and conv5 (conv3 and the dense layers see both GPUs' maps);
  60,965,224 parameters.
- ``zfnet`` (:mod:`cnnbook.models.zfnet`): the same class with ZF-Net's layout.

The 224 vs 227 puzzle. The paper says the input is 224 x 224 x 3 (150,528 values) and that conv1 has
96 kernels of 11 x 11 with stride 4, and lists the neurons per layer as
253,440-186,624-64,896-64,896-43,264-4096-4096-1000. Without padding a 224 input gives
(224 - 11) / 4 + 1 = 54.25, not a whole number; 227 (Caffe's crop) or 224 with 2 pixels of padding
per side (torchvision's choice, and ours) gives 55 x 55. Then every count after conv1 comes out:
27 x 27 x 256 = 186,624; 13 x 13 x 384 = 64,896 (twice); 13 x 13 x 256 = 43,264; 6 x 6 x 256 = 9,216
into fc6. conv1 itself has 55 x 55 x 96 = 290,400 neurons. No square map of 96 channels has 253,440
(253,440 / 96 = 2,640 is not a square; it does equal 55 x 48 x 96, but the paper does not say how it
was counted), so we keep 224 + padding 2, which agrees with the input size and with five of the six
convolutional counts, and record the paper's number in :data:`PAPER_NEURON_COUNTS` for comparison.

One simplification of the two-GPU layout: in the paper each GPU normalised (LRN) across its own half
of the maps; here one :class:`~cnnbook.layers.LocalResponseNorm` runs across all of them, which
differs only for the two channels on either side of the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..calc.shapes import smallest_input_side
from ..layers.lrn import LocalResponseNorm
from ..registry import register_model
from .._checks import check_dropout, check_positive
from ._base import ImageClassifier, StageInfo

__all__ = [
    "AlexNet",
    "AlexNetLayout",
    "ALEXNET_TORCHVISION_LAYOUT",
    "ALEXNET_PAPER_LAYOUT",
    "PAPER_NEURON_COUNTS",
    "PAPER_INPUT_DIMENSION",
    "alexnet",
    "alexnet_paper",
]

ActLayer = Callable[..., nn.Module]

# The neurons per layer the paper lists (conv1..conv5, fc6, fc7, fc8) and its input dimension.
# With a 224 x 224 input and padding 2, conv1 has 55 * 55 * 96 = 290,400; the others agree.
PAPER_NEURON_COUNTS: tuple[int, ...] = (253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000)
PAPER_INPUT_DIMENSION = 224 * 224 * 3  # 150,528


@dataclass(frozen=True)
class AlexNetLayout:
    """The five convolutions of an AlexNet-style body, as data.

    Max pooling follows conv1, conv2 and conv5; local response normalisation (when switched on)
    accompanies the first two poolings.
    """

    # One row per convolution, conv1 ... conv5: (out_channels, kernel, stride, padding, groups).
    convs: tuple[tuple[int, int, int, int, int], ...]
    ceil_mode: bool = False       # round pooled sizes up (Caffe's arithmetic, needed for ZF-Net's published sizes)
    lrn_after_pool: bool = False  # ZF-Net normalises after pooling; AlexNet normalises, then pools

    def __post_init__(self) -> None:
        if len(self.convs) != 5:
            raise ValueError(f"An AlexNet layout has 5 convolutions; got {len(self.convs)} rows.")
        for i, row in enumerate(self.convs, start=1):
            if len(row) != 5 or min(row[:3]) <= 0 or row[3] < 0 or row[4] <= 0:
                raise ValueError(
                    f"conv{i} row must be (out_channels > 0, kernel > 0, stride > 0, padding >= 0, groups > 0); "
                    f"got {row}."
                )


ALEXNET_TORCHVISION_LAYOUT = AlexNetLayout(
    convs=(
        # c, k, s, p, g               output at 224 x 224
        (64, 11, 4, 2, 1),    # conv1: N x 64 x 55 x 55, pooled to 27 x 27
        (192, 5, 1, 2, 1),    # conv2: N x 192 x 27 x 27, pooled to 13 x 13
        (384, 3, 1, 1, 1),    # conv3: N x 384 x 13 x 13
        (256, 3, 1, 1, 1),    # conv4: N x 256 x 13 x 13
        (256, 3, 1, 1, 1),    # conv5: N x 256 x 13 x 13, pooled to 6 x 6
    ),
)

ALEXNET_PAPER_LAYOUT = AlexNetLayout(
    convs=(
        # c, k, s, p, g               output at 224 x 224 (the paper's neuron counts)
        (96, 11, 4, 2, 1),    # conv1: N x 96 x 55 x 55 = 290,400, pooled to 27 x 27 (each GPU sees all 3 colours)
        (256, 5, 1, 2, 2),    # conv2: N x 256 x 27 x 27 = 186,624, pooled to 13 x 13 (each GPU: its 48 maps)
        (384, 3, 1, 1, 1),    # conv3: N x 384 x 13 x 13 = 64,896 (the GPUs communicate)
        (384, 3, 1, 1, 2),    # conv4: N x 384 x 13 x 13 = 64,896
        (256, 3, 1, 1, 2),    # conv5: N x 256 x 13 x 13 = 43,264, pooled to 6 x 6
    ),
)


def _activation(act_layer: ActLayer) -> nn.Module:
    """ReLU runs in place, as in torchvision (saves memory); other activations cannot."""
    return act_layer(inplace=True) if act_layer is nn.ReLU else act_layer()


def _make_features(
    layout: AlexNetLayout,
    in_channels: int,
    width_divisor: int,
    act_layer: ActLayer,
    pool_kernel: int,
    pool_stride: int,
    use_lrn: bool,
) -> tuple[nn.Sequential, list[StageInfo]]:
    """conv1 act [lrn] pool conv2 act [lrn] pool conv3 act conv4 act conv5 act pool, and its stages."""
    layers: list[nn.Module] = []
    stages: list[StageInfo] = []
    reduction = 1
    c_in = in_channels
    for i, (channels, kernel, stride, padding, groups) in enumerate(layout.convs):
        if channels % (width_divisor * groups):
            raise ValueError(
                f"conv{i + 1} has {channels} channels, which width_divisor={width_divisor} times "
                f"groups={groups} does not divide."
            )
        c_out = channels // width_divisor
        if c_in % groups:
            raise ValueError(f"conv{i + 1} has groups={groups}, which does not divide its {c_in} input channels.")
        layers += [nn.Conv2d(c_in, c_out, kernel_size=kernel, stride=stride, padding=padding, groups=groups)]
        layers += [_activation(act_layer)]
        reduction *= stride
        if i in (0, 1, 4):  # max pooling follows conv1, conv2 and conv5
            pool: list[nn.Module] = [nn.MaxPool2d(pool_kernel, pool_stride, ceil_mode=layout.ceil_mode)]
            norm: list[nn.Module] = []
            if use_lrn and i < 2:  # the paper's k = 2, n = 5, alpha = 1e-4, beta = 0.75
                norm = [LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)]
            layers += pool + norm if layout.lrn_after_pool else norm + pool
            reduction *= pool_stride
            stages.append(StageInfo(f"features.{len(layers) - 1}", c_out, reduction))
        c_in = c_out
    return nn.Sequential(*layers), stages


class AlexNet(ImageClassifier):
    """Five convolutions (``features``), adaptive average pooling, three dense layers (``classifier``).

    With the defaults this is torchvision's AlexNet, module for module. Everything the chapter
    varies is an argument:

    Args:
        num_classes: outputs of fc8.
        dropout: drop probability before fc6 and fc7 (the paper: 0.5).
        in_channels: channels of the input images.
        layout: the convolutions as data (:data:`ALEXNET_TORCHVISION_LAYOUT`,
            :data:`ALEXNET_PAPER_LAYOUT`, :data:`~cnnbook.models.ZFNET_LAYOUT`).
        act_layer: activation class after every convolution and hidden dense layer:
            ``nn.ReLU`` (the paper), ``nn.Tanh`` or ``nn.Sigmoid`` for the ablation.
        pool_kernel: pooling window z (3: overlapping; 2: the traditional non-overlapping pooling).
        pool_stride: pooling stride s (2); ``s < z`` overlaps, ``s = z`` does not, ``s > z`` is refused
            because it would skip inputs.
        use_lrn: local response normalisation after conv1 and conv2 (the paper: on; torchvision: off).
        width_divisor: divide every convolution's channel count (4 gives a CPU-sized network).
        hidden: width of fc6 and fc7 (4096).
        avgpool_size: side of the ``AdaptiveAvgPool2d`` output that feeds fc6 (6: 6 x 6 x 256 = 9,216
            inputs; 1 for small images whose last map is 1 x 1 anyway).
    """

    classifier_path = "classifier.6"

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.5,
        *,
        in_channels: int = 3,
        layout: AlexNetLayout = ALEXNET_TORCHVISION_LAYOUT,
        act_layer: ActLayer = nn.ReLU,
        pool_kernel: int = 3,
        pool_stride: int = 2,
        use_lrn: bool = False,
        width_divisor: int = 1,
        hidden: int = 4096,
        avgpool_size: int = 6,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_classes", num_classes), ("in_channels", in_channels), ("pool_kernel", pool_kernel),
            ("pool_stride", pool_stride), ("width_divisor", width_divisor), ("hidden", hidden),
            ("avgpool_size", avgpool_size),
        ):
            check_positive(name, value)
        check_dropout(dropout)
        if pool_stride > pool_kernel:
            raise ValueError(
                f"pool_stride={pool_stride} > pool_kernel={pool_kernel} would skip inputs between windows; "
                f"use s = z (non-overlapping) or s < z (overlapping)."
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.layout = layout
        self.features, self.feature_info = _make_features(
            layout, in_channels, width_divisor, act_layer, pool_kernel, pool_stride, use_lrn
        )
        last_channels = self.feature_info[-1].channels
        self.avgpool = nn.AdaptiveAvgPool2d((avgpool_size, avgpool_size))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(last_channels * avgpool_size * avgpool_size, hidden),  # fc6: 9,216 -> 4,096
            _activation(act_layer),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),  # fc7: 4,096 -> 4,096
            _activation(act_layer),
            nn.Linear(hidden, num_classes),  # fc8: 4,096 -> classes
        )
        self.min_input_size = smallest_input_side(self.features)  # 63 for both AlexNet layouts

    def forward_features(self, x: Tensor) -> Tensor:
        # N x 3 x 224 x 224 -> conv1 N x C1 x 55 x 55 -> pool N x C1 x 27 x 27 -> conv2, pool N x C2 x 13 x 13
        # -> conv3, conv4, conv5 N x C5 x 13 x 13 -> pool N x C5 x 6 x 6 (C1..C5 from the layout)
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x)  # N x 256 x 6 x 6
        x = torch.flatten(x, 1)  # N x 9216
        if pre_logits:
            return self.classifier[:-1](x)  # N x 4096: the output of fc7
        return self.classifier(x)  # N x num_classes


_ALEXNET = dict(
    chapter=3,
    paper="Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks",
    year=2012,
    input_size=(3, 224, 224),
    depth=8,
    # 64 x 64 keeps the 11 x 11 stride-4 stem (64 -> 15 -> 7 -> 3 -> 1); a quarter of the channels.
    small_kwargs=dict(num_classes=10, width_divisor=4, hidden=256, avgpool_size=1),
    small_input_size=(3, 64, 64),
)


@register_model(
    key_idea="ReLU, dropout, overlapping max pooling, data augmentation: a deeper, bigger LeNet",
    torchvision="alexnet",
    **_ALEXNET,
)
def alexnet(num_classes: int = 1000, dropout: float = 0.5, **kwargs: Any) -> AlexNet:
    """AlexNet (Krizhevsky et al. 2012) in torchvision's single-GPU layout: 64-192-384-256-256, no LRN.

    61,100,840 parameters. Further keyword arguments (``act_layer``, ``pool_kernel``, ``pool_stride``,
    ``use_lrn``, ``in_channels``, ``width_divisor``, ``hidden``, ``avgpool_size``): see :class:`AlexNet`.
    """
    return AlexNet(num_classes, dropout, layout=ALEXNET_TORCHVISION_LAYOUT, **kwargs)


@register_model(
    key_idea="the 2012 two-GPU layout: 96-256-384-384-256, LRN, grouped conv2/4/5",
    **_ALEXNET,
)
def alexnet_paper(num_classes: int = 1000, dropout: float = 0.5, *, use_lrn: bool = True, **kwargs: Any) -> AlexNet:
    """AlexNet as in Krizhevsky et al. 2012: 96-256-384-384-256 channels, LRN, two GPU groups.

    60,965,224 parameters (the paper: "60 million"). Further keyword arguments: see :class:`AlexNet`.
    """
    return AlexNet(num_classes, dropout, layout=ALEXNET_PAPER_LAYOUT, use_lrn=use_lrn, **kwargs)
