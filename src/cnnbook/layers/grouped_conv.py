"""Grouped convolution: split the channels into groups and convolve each group on its own.

AlexNet (Krizhevsky et al. 2012) was trained on two GPUs of 3 GB each. Half of the kernels of every
layer lived on each GPU, and "the kernels of the second, fourth, and fifth convolutional layers are
connected only to those kernel maps in the previous layer which reside on the same GPU": each half of
those layers sees only its half of the input channels. Written for one device this is a convolution
with ``groups=2``: ``nn.Conv2d(96, 256, 5, groups=2)`` is two independent ``Conv2d(48, 128, 5)``
applied to channels 0-47 and 48-95, their outputs concatenated. conv3 and the fully connected layers
are not grouped: that is where the two GPUs communicate.

Each output channel sees ``C_in / groups`` input channels, so a grouped convolution has ``1 / groups``
of the weights and mult-adds of the dense one: ``k * k * (C_in / groups) * C_out`` weights. Later
networks use groups on purpose, not for lack of memory: ResNeXt (Xie et al. 2017) calls the number of
groups the *cardinality* (32 groups of 4 channels in ``resnext50_32x4d``), and a depthwise convolution
(MobileNet) is the extreme case ``groups = C_in``.

:class:`GroupedConv2d` writes the split out (for reading and for checking); the networks use
``nn.Conv2d(..., groups=g)``, which computes the same in one call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GroupedConv2d"]


class GroupedConv2d(nn.Module):
    """``groups`` independent convolutions, one per slice of ``in_channels / groups`` input channels.

    The same function as ``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
    groups=groups)``; :meth:`from_conv2d` and :meth:`to_conv2d` convert between the two.

    Args:
        in_channels: channels in; divisible by ``groups``.
        out_channels: channels out; divisible by ``groups``.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: zero padding on each side.
        groups: number of independent branches (2 in AlexNet, one per GPU).
        bias: whether each branch has a bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 2,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if not (isinstance(groups, int) and groups > 0):
            raise ValueError(f"groups must be a positive integer; got {groups!r}.")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels <= 0 or channels % groups:
                raise ValueError(f"{name}={channels} must be a positive multiple of groups={groups}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels // groups, out_channels // groups, kernel_size, stride, padding, bias=bias)
            for _ in range(groups)
        )

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x H x W -> N x C_out x H' x W'
        slices = torch.chunk(x, self.groups, dim=1)  # groups tensors of N x C_in/groups x H x W
        outputs = [branch(part) for branch, part in zip(self.branches, slices)]  # each N x C_out/groups x H' x W'
        return torch.cat(outputs, dim=1)

    @classmethod
    def from_conv2d(cls, conv: nn.Conv2d) -> GroupedConv2d:
        """The branches of a grouped ``nn.Conv2d``, sharing its weights (copied, not tied)."""
        if isinstance(conv.padding, str):
            raise ValueError(f"from_conv2d needs a numeric padding; got padding={conv.padding!r}.")
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        out = cls(conv.in_channels, conv.out_channels, k, s, p, conv.groups, bias=conv.bias is not None)
        per_group = conv.out_channels // conv.groups
        with torch.no_grad():
            for g, branch in enumerate(out.branches):
                # Output channels g*per_group ... (g+1)*per_group - 1 of the fused conv belong to group g.
                branch.weight.copy_(conv.weight[g * per_group : (g + 1) * per_group])
                if conv.bias is not None:
                    branch.bias.copy_(conv.bias[g * per_group : (g + 1) * per_group])
        return out.to(conv.weight.device)

    def to_conv2d(self) -> nn.Conv2d:
        """One ``nn.Conv2d(groups=self.groups)`` computing the same function (the fast form)."""
        first = self.branches[0]
        fused = nn.Conv2d(
            self.in_channels, self.out_channels, first.kernel_size, first.stride, first.padding,
            groups=self.groups, bias=first.bias is not None,
        )
        with torch.no_grad():
            # The fused weight is out_channels x (in_channels / groups) x k x k: the branches stacked.
            fused.weight.copy_(torch.cat([b.weight for b in self.branches], dim=0))
            if fused.bias is not None:
                fused.bias.copy_(torch.cat([b.bias for b in self.branches], dim=0))
        return fused.to(first.weight.device)
