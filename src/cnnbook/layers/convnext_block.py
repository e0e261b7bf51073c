"""ConvNeXt's block (Liu et al. 2022, A ConvNet for the 2020s): a ResNet modernised step by step.

Starting from a ResNet-50, Liu et al. borrow the design choices of vision transformers one at a time:
a 7x7 *depthwise* convolution (the "token mixer"), LayerNorm instead of BatchNorm, an inverted
bottleneck of 4x width with GELU (the transformer's MLP), fewer normalisations and activations, and a
learned per-channel ``layer_scale`` on the residual branch. The 1x1 convolutions are written as
``nn.Linear`` on a channels-last tensor, which is why the block permutes N x C x H x W to N x H x W x C
and back. Attribute names follow torchvision's ``CNBlock`` so its state dicts load unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .stochastic_depth import StochasticDepth

__all__ = ["LayerNorm2d", "Permute", "ConvNeXtBlock"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``N x C x H x W`` tensor (each pixel normalised on its own)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # N x H x W x C
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # N x C x H x W


class Permute(nn.Module):
    """``x.permute(*dims)`` as a module, so it can sit in an ``nn.Sequential``."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class ConvNeXtBlock(nn.Module):
    """``x + drop_path(gamma * block(x))``, ``block = [dw 7x7, LayerNorm, Linear C->4C, GELU, Linear 4C->C]``.

    Args:
        dim: channels C of the stage.
        layer_scale: initial value of the per-channel scale gamma (1e-6: each block starts near identity).
        stochastic_depth_prob: probability of dropping the residual branch of a sample in training.
        norm_eps: LayerNorm epsilon (1e-6).
    """

    def __init__(self, dim: int, layer_scale: float = 1e-6, stochastic_depth_prob: float = 0.0,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"dim (the channels of the stage) must be > 0; got {dim!r}.")
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),  # N x C x H x W, depthwise
            Permute([0, 2, 3, 1]),                                                 # N x H x W x C
            nn.LayerNorm(dim, eps=norm_eps),
            nn.Linear(dim, 4 * dim),                                               # N x H x W x 4C
            nn.GELU(),
            nn.Linear(4 * dim, dim),                                               # N x H x W x C
            Permute([0, 3, 1, 2]),                                                 # N x C x H x W
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x: Tensor) -> Tensor:
        return self.stochastic_depth(self.layer_scale * self.block(x)) + x
