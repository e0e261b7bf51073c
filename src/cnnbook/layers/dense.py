"""Dense blocks (Huang, Liu, van der Maaten, Weinberger 2016, Densely Connected Convolutional Networks).

Inside a dense block every layer receives the feature maps of *all* preceding layers, concatenated along
the channels (not added, as in ResNet):

    x_1 = [x_0, f_0(x_0)],   x_2 = [x_1, f_1(x_1)],   ...   x_{i+1} = [x_i, f_i(x_i)]

Each ``f_i`` adds ``k`` new channels (the growth rate), so a block of ``L`` layers on ``k0`` input channels
outputs ``k0 + L * k`` channels, and layer ``l`` reads ``k0 + (l - 1) * k``. Counting the block input as a
node, layer ``l`` has ``l`` incoming connections, so the block has ``1 + 2 + ... + L = L(L+1)/2`` direct
connections (15 for the worked example: L = 5, k = 4).

- :class:`DenseLayer`: DenseNet-B's ``BN-ReLU-1x1 conv (bn_size * k) - BN-ReLU-3x3 conv (k)``.
- :class:`DenseBlock`: ``L`` dense layers and their concatenations.
- :class:`Transition`: ``BN-ReLU-1x1 conv-2x2 average pool`` between blocks: halves H and W, and with
  compression (DenseNet-C, theta = 0.5) halves the channels.

Attribute names are torchvision's (``norm1, relu1, conv1, norm2, relu2, conv2``; ``denselayer1, ...``;
``norm, relu, conv, pool``), so torchvision's DenseNet state dicts load unchanged. torchvision's
``memory_efficient`` option (gradient checkpointing of the concatenation and 1x1 convolution) saves memory
and changes nothing in the result; it is left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive as _check

__all__ = ["DenseLayer", "DenseBlock", "Transition", "dense_connections", "dense_block_channels"]



def dense_connections(num_layers: int) -> int:
    """Direct connections in a dense block of ``L`` layers: ``L(L+1)/2`` (layer ``l`` reads ``l`` inputs)."""
    _check("num_layers", num_layers)
    return num_layers * (num_layers + 1) // 2


def dense_block_channels(in_channels: int, num_layers: int, growth_rate: int) -> int:
    """Channels after a dense block: ``k0 + L * k``."""
    _check("in_channels", in_channels)
    _check("num_layers", num_layers)
    _check("growth_rate", growth_rate, "each layer adds growth_rate channels")
    return in_channels + num_layers * growth_rate


class DenseLayer(nn.Module):
    """One ``f_i``: concatenate the inputs, BN-ReLU-1x1 conv to ``bn_size * k``, BN-ReLU-3x3 conv to ``k``.

    Args:
        in_channels: channels of the concatenated inputs, ``k0 + (l - 1) * k`` for layer ``l``.
        growth_rate: k, the channels this layer adds.
        bn_size: width of the 1x1 bottleneck in units of k (4 in DenseNet-B).
        drop_rate: dropout after the 3x3 convolution (0 for the ImageNet models).
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0) -> None:
        super().__init__()
        _check("in_channels", in_channels)
        _check("growth_rate", growth_rate, "each layer adds growth_rate channels")
        _check("bn_size", bn_size, "the bottleneck has bn_size * growth_rate channels")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1); got {drop_rate!r}.")
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features: Tensor | list[Tensor]) -> Tensor:
        """``features`` is ``[x_0, f_0, ..., f_{l-1}]`` (or one tensor); returns the ``k`` new channels."""
        inputs = [features] if isinstance(features, Tensor) else features
        x = torch.cat(inputs, 1)                             # [x_0, f_0, ...]: N x (k0 + (l-1) k) x H x W
        x = self.conv1(self.relu1(self.norm1(x)))            # bottleneck:      N x bn_size*k x H x W
        x = self.conv2(self.relu2(self.norm2(x)))            # new features:    N x k x H x W
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; each reads all preceding feature maps, the block returns them all.

    Layers are named ``denselayer1 ... denselayerL`` as in torchvision. The concatenation is done once per
    layer on a list of the maps, which is what torchvision does and avoids re-concatenating ``x_i`` itself.
    """

    def __init__(
        self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.out_channels = dense_block_channels(in_channels, num_layers, growth_rate)  # k0 + L * k
        self.num_connections = dense_connections(num_layers)                             # L(L+1)/2
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]                              # x_0: N x k0 x H x W
        for layer in self.values():
            features.append(layer(features))        # f_i([x_0, f_0, ..., f_{i-1}]): N x k x H x W
        return torch.cat(features, 1)               # x_L: N x (k0 + L k) x H x W


class Transition(nn.Sequential):
    """Between dense blocks: BN-ReLU-1x1 conv (``in_channels -> out_channels``) and 2x2 average pooling.

    The pooling halves H and W (floor), which a dense block cannot do since it concatenates maps of equal
    size; the 1x1 convolution compresses the channels (DenseNet-BC: ``out_channels = in_channels // 2``).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        _check("in_channels", in_channels)
        _check("out_channels", out_channels)
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.relu(self.norm(x)))      # N x C_out x H x W
        return self.pool(x)                         # N x C_out x H/2 x W/2
