"""Depthwise-separable convolution, the building block of MobileNet v1 (Howard et al. 2017).

A standard K x K convolution from M to N channels filters and combines channels in one step:
K*K*M*N weights and K*K*M*N*D*D mult-adds on a D x D output. MobileNet splits it in two:

- depthwise: one K x K filter per input channel (``groups = M``), M channels out; K*K*M weights,
  K*K*M*D*D mult-adds;
- pointwise: a 1 x 1 convolution that mixes the M channels into N; M*N weights, M*N*D*D mult-adds.

The cost ratio separable / standard is 1/N + 1/K^2, about 1/9 for 3 x 3 kernels and many channels.
Each half is followed by BatchNorm and ReLU, as in Figure 3 of the paper.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .conv_bn_act import ConvBNAct

__all__ = ["DepthwiseSeparableConv"]


class DepthwiseSeparableConv(nn.Module):
    """``depthwise`` (K x K, groups = in_channels) + BN + ReLU, then ``pointwise`` (1 x 1) + BN + ReLU.

    Args:
        in_channels: M, channels in (and out of the depthwise half).
        out_channels: N, channels out of the pointwise half.
        kernel_size: K of the depthwise filters (3 in MobileNet).
        stride: stride of the depthwise half (MobileNet down-samples there, never in the 1 x 1).
        padding: of the depthwise half; ``None`` gives "same" padding ``(K - 1) // 2``, 0 gives the
            unpadded convolution of the lecture's worked example (6 x 6 in, 4 x 4 out).
        act_layer: activation after each half (``nn.ReLU`` in the paper).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        act_layer: Callable[..., nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.depthwise = ConvBNAct(
            in_channels, in_channels, kernel_size, stride, padding, groups=in_channels, act_layer=act_layer
        )
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, act_layer=act_layer)

    def forward(self, x: Tensor) -> Tensor:
        x = self.depthwise(x)  # N x M x D x D: each channel filtered on its own
        return self.pointwise(x)  # N x N_out x D x D: channels mixed per pixel
