"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), in its 1998 form and in the common modern form.

Both keep the pattern every later network inherits: conv -> pool -> conv -> pool -> fully connected.
"5" counts the weight layers: 2 convolutions + 3 fully connected layers.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..registry import register_model
from ._base import ImageClassifier, StageInfo

__all__ = ["LeNet5", "lenet5", "lenet5_modern"]


class LeNet5(ImageClassifier):
    """Two conv/pool stages and a 120 -> 84 -> classes head on a 32x32 input.

    Args:
        num_classes: size of the output layer (10 digits).
        in_channels: 1 for grey digits, 3 for colour images.
        kernel_size: 5 in the 1998 design (32 -> 28 -> 14 -> 10 -> 5, so 16*5*5 features);
            3 in the modern PyTorch variant (32 -> 30 -> 15 -> 13 -> 6, so 16*6*6 features).
        act_layer: ``nn.Tanh`` in 1998, ``nn.ReLU`` today.
        pool_layer: ``nn.AvgPool2d`` in 1998 (subsampling), ``nn.MaxPool2d`` today.
    """

    classifier_path = "classifier.4"

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        kernel_size: int = 5,
        act_layer: Callable[[], nn.Module] = nn.Tanh,
        pool_layer: Callable[..., nn.Module] = nn.AvgPool2d,
    ) -> None:
        super().__init__()
        if kernel_size not in (3, 5):
            raise ValueError(f"kernel_size must be 3 (modern LeNet) or 5 (LeNet-5, 1998); got {kernel_size}.")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.fixed_input_size = (32, 32)
        # Shape arithmetic of a 32x32 input: conv k (no padding) gives 32-k+1, pooling halves (floor).
        side = ((32 - kernel_size + 1) // 2 - kernel_size + 1) // 2  # 5 for k=5, 6 for k=3
        self.flat_features = 16 * side * side  # 400 for k=5, 576 = 16*6*6 for k=3
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size),    # C1: N x 6 x (32-k+1) x (32-k+1)
            act_layer(),
            pool_layer(kernel_size=2, stride=2),        # S2: N x 6 x 14 x 14 (k=5)
            nn.Conv2d(6, 16, kernel_size),              # C3: N x 16 x 10 x 10 (k=5)
            act_layer(),
            pool_layer(kernel_size=2, stride=2),        # S4: N x 16 x 5 x 5 (k=5), 6 x 6 (k=3)
        )
        self.classifier = nn.Sequential(
            nn.Linear(self.flat_features, 120),         # C5 / F5
            act_layer(),
            nn.Linear(120, 84),                         # F6
            act_layer(),
            nn.Linear(84, num_classes),                 # output
        )
        self.feature_info = [StageInfo("features.2", 6, 2), StageInfo("features.5", 16, 4)]

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 16 x side x side

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(x, 1)  # N x 16*side*side; replaces the old hand-written num_flat_features()
        if pre_logits:
            return self.classifier[:-1](x)
        return self.classifier(x)  # N x num_classes


_LENET = dict(
    chapter=2,
    paper="LeCun, Bottou, Bengio, Haffner 1998, Gradient-Based Learning Applied to Document Recognition",
    year=1998,
    input_size=(1, 32, 32),
    depth=5,
    small_input_size=(1, 32, 32),
)


@register_model(key_idea="conv-pool-conv-pool-FC with tanh and average pooling", **_LENET)
def lenet5(num_classes: int = 10, **kwargs: Any) -> LeNet5:
    """LeNet-5 as published in 1998: 5x5 kernels, tanh, average pooling, 32x32 input, ~62K parameters.

    Further keyword arguments (``in_channels``, ...): see :class:`LeNet5`.
    """
    return LeNet5(num_classes, **{"kernel_size": 5, "act_layer": nn.Tanh, "pool_layer": nn.AvgPool2d, **kwargs})


@register_model(key_idea="the same pattern with ReLU, max pooling and 3x3 kernels", **_LENET)
def lenet5_modern(num_classes: int = 10, **kwargs: Any) -> LeNet5:
    """The common PyTorch variant: 3x3 kernels, ReLU, max pooling, 16*6*6 features into fc1.

    Further keyword arguments (``in_channels``, ...): see :class:`LeNet5`.
    """
    return LeNet5(num_classes, **{"kernel_size": 3, "act_layer": nn.ReLU, "pool_layer": nn.MaxPool2d, **kwargs})
