"""Residual blocks (He, Zhang, Ren, Sun 2015, Deep Residual Learning for Image Recognition).

A residual block adds its input back after two weight layers:

    z[l+1] = W[l+1] a[l] + b[l+1],     a[l+1] = g(z[l+1])
    z[l+2] = W[l+2] a[l+1] + b[l+2],   a[l+2] = g(z[l+2] + a[l])

If ``W[l+2] = 0`` and ``b[l+2] = 0`` then ``a[l+2] = g(a[l]) = a[l]`` for a ReLU ``g`` and a non-negative
``a[l]`` (the output of an earlier ReLU): a block can always fall back to the identity, so adding one does
not shrink the set of functions the network can represent. Here each ``W z + b`` is a convolution followed
by BatchNorm, whose ``beta`` plays the role of ``b`` (the convolutions have no bias).

- ``BasicBlock``: two 3x3 convolutions (ResNet-18/34), ``expansion = 1``.
- ``Bottleneck``: 1x1 reduce, 3x3, 1x1 restore to 4x the width (ResNet-50/101/152), ``expansion = 4``.
  The stride sits on the 3x3 convolution as in torchvision ("ResNet v1.5"); the paper put it on the first
  1x1. ``groups`` and ``base_width`` turn it into a ResNeXt block (Xie et al. 2017).
- ``shortcut=False`` gives the *plain* twin of either block, for the degradation experiment: the same
  convolutions and BatchNorms and no shortcut at all, so no ``a[l]`` is added and no 1x1 projection exists
  (He et al.'s plain networks have no shortcuts). A plain block has exactly the parameters of its residual
  twin minus the projection, when the twin has one.
- ``PreActBasicBlock``, ``PreActBottleneck``: the pre-activation ordering of He et al. 2016
  (Identity Mappings in Deep Residual Networks): BN -> ReLU -> conv, and nothing after the addition, so the
  shortcut path is a pure identity from block to block: ``a[l+2] = a[l] + F(a[l])``.
- ``attn_layer`` (e.g. ``cnnbook.layers.SqueezeExcite``) is applied to the residual branch just
  before the addition, as in SE-ResNet (Hu et al. 2017) and timm.

Attribute names are torchvision's (``conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample``), so
torchvision's ResNet state dicts load unchanged.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

# conv3x3 and conv1x1 stay importable from this module but are not re-exported flat (generic names).
__all__ = ["ResidualBlock", "BasicBlock", "Bottleneck", "PreActBasicBlock", "PreActBottleneck"]

NormLayer = Callable[[int], nn.Module]
AttnLayer = Callable[[int], nn.Module]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 "same" convolution without bias (BatchNorm follows): H, W are kept at stride 1, halved at stride 2."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias: changes the channel count (and H, W when strided)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ResidualBlock(nn.Module):
    """What every block of this module shares: the shortcut, the optional attention, the channel arithmetic.

    Subclasses declare ``expansion`` (output channels = ``channels * expansion``) and ``preact``, build
    their convolutions, call ``_set_shortcut`` and write ``forward`` as the paper's equations.
    """

    expansion: int = 1
    preact: bool = False  # BN -> ReLU -> conv ordering (He et al. 2016)

    def _set_shortcut(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        downsample: nn.Module | None,
        shortcut: bool,
        attn_layer: AttnLayer | None,
    ) -> None:
        """Record the shortcut; a residual block needs a projection exactly when the shape changes."""
        name = type(self).__name__
        if not shortcut and downsample is not None:
            raise ValueError(f"A plain {name} (shortcut=False) has no shortcut, so it takes no downsample module.")
        if shortcut and downsample is None and (stride != 1 or in_channels != out_channels):
            raise ValueError(
                f"{name}({in_channels} -> {out_channels} channels, stride {stride}) changes the shape, so the "
                f"identity a[l] cannot be added to z[l+2]: pass a 1x1 projection as downsample "
                f"({name}.projection(...), which ResNet._make_layer builds), or use shortcut=False for a plain block."
            )
        self.attn = attn_layer(out_channels) if attn_layer is not None else None
        self.downsample = downsample
        self.shortcut = shortcut
        self.stride = stride
        self.out_channels = out_channels

    @classmethod
    def projection(cls, in_channels: int, out_channels: int, stride: int, norm_layer: NormLayer) -> nn.Sequential:
        """The projection shortcut ``W_s a[l]``: a strided 1x1 convolution, then BN (He et al.'s option B).

        Pre-activation blocks apply it to the already normalised input, so there it is the bare convolution.
        """
        conv = conv1x1(in_channels, out_channels, stride)
        if cls.preact:
            return nn.Sequential(conv)
        return nn.Sequential(conv, norm_layer(out_channels))

    def zero_init_last(self) -> None:
        """Zero the last layer of the residual branch, so that the block starts as the identity."""
        raise NotImplementedError


def _check_stride(stride: int) -> None:
    if stride <= 0:
        raise ValueError(f"stride must be > 0; got {stride!r}.")


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut: ``a[l+2] = g(z[l+2] + a[l])``.

    Args:
        in_channels: channels of ``a[l]``.
        channels: channels of both convolutions; the block outputs ``channels * expansion`` (= ``channels``).
        stride: stride of the first 3x3 convolution (2 at the start of a stage halves H and W).
        downsample: the projection shortcut ``W_s a[l]`` (1x1 conv with stride + BN) when shapes change.
        groups, base_width: only 1 and 64 (ResNeXt widths apply to bottlenecks), as in torchvision.
        norm_layer: normalisation after each convolution, ``nn.BatchNorm2d``.
        shortcut: ``False`` for the plain twin (no addition, no projection).
        attn_layer: optional module class applied to ``z[l+2]`` before the addition, e.g. ``SqueezeExcite``.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
        shortcut: bool = True,
        attn_layer: AttnLayer | None = None,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(
                f"{type(self).__name__} supports only groups=1 and base_width=64; got groups={groups}, "
                f"base_width={base_width} (ResNeXt groups apply to Bottleneck)."
            )
        _check_stride(stride)
        out_channels = channels * self.expansion
        # Post-activation normalises each conv's output; pre-activation normalises each conv's input.
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = norm_layer(in_channels if self.preact else channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, out_channels)
        self.bn2 = norm_layer(channels if self.preact else out_channels)
        self._set_shortcut(in_channels, out_channels, stride, downsample, shortcut, attn_layer)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)  # gamma = 0: z[l+2] = beta = 0 at initialisation

    def forward(self, x: Tensor) -> Tensor:
        a = x                                   # a[l]:   N x C_in x H x W
        z = self.bn1(self.conv1(a))             # z[l+1]: N x C x H/s x W/s
        out = self.relu(z)                      # a[l+1] = g(z[l+1])
        out = self.bn2(self.conv2(out))         # z[l+2]: N x C x H/s x W/s
        if self.attn is not None:
            out = self.attn(out)                # channel re-weighting of the residual branch (SE)
        if self.shortcut:
            out += a if self.downsample is None else self.downsample(a)  # z[l+2] + a[l]  (or + W_s a[l])
        return self.relu(out)                   # a[l+2] = g(z[l+2] + a[l])


class Bottleneck(ResidualBlock):
    """1x1 reduce -> 3x3 -> 1x1 restore (x4), with an identity or projection shortcut (ResNet-50/101/152).

    The 1x1 convolutions make the expensive 3x3 work on ``width`` channels only: a ResNet-50 block with
    256 channels in and out runs its 3x3 on 64. ``width = channels * base_width / 64 * groups``: ResNet uses
    ``groups=1, base_width=64`` (width = channels); ResNeXt-50 32x4d uses 32 groups of 4 (width = 2 * channels,
    128 = 32 x 4 in stage 1) and a grouped 3x3 convolution in the middle (Xie et al. 2017).

    The stride is on the 3x3 convolution (torchvision's "v1.5"; He et al. 2015 stride the first 1x1).
    Other arguments as ``BasicBlock``.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
        shortcut: bool = True,
        attn_layer: AttnLayer | None = None,
    ) -> None:
        super().__init__()
        if groups <= 0 or base_width <= 0:
            raise ValueError(f"groups and base_width must be > 0; got groups={groups}, base_width={base_width}.")
        _check_stride(stride)
        width = int(channels * (base_width / 64.0)) * groups
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, width)                       # reduce
        self.bn1 = norm_layer(in_channels if self.preact else width)
        self.conv2 = conv3x3(width, width, stride, groups)             # 3x3 (grouped for ResNeXt)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, out_channels)                      # restore
        self.bn3 = norm_layer(width if self.preact else out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.width = width
        self._set_shortcut(in_channels, out_channels, stride, downsample, shortcut, attn_layer)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        a = x                                       # a[l]: N x 4C x H x W (N x C_in x H x W at a stage start)
        out = self.relu(self.bn1(self.conv1(a)))    # 1x1 reduce: N x width x H x W
        out = self.relu(self.bn2(self.conv2(out)))  # 3x3:        N x width x H/s x W/s
        out = self.bn3(self.conv3(out))             # 1x1 restore, z[l+2]: N x 4C x H/s x W/s
        if self.attn is not None:
            out = self.attn(out)
        if self.shortcut:
            out += a if self.downsample is None else self.downsample(a)  # z[l+2] + a[l]  (or + W_s a[l])
        return self.relu(out)                       # a[l+2] = g(z[l+2] + a[l])


class PreActBasicBlock(BasicBlock):
    """Pre-activation basic block (He et al. 2016): ``a[l+2] = a[l] + conv(g(BN(conv(g(BN(a[l]))))))``.

    Nothing follows the addition, so the signal (and its gradient) passes from block to block through
    pure identities. A network built from these needs one final BN-ReLU after its last block
    (``ResNet`` adds it when ``block.preact`` is true). A projection shortcut is a bare 1x1 convolution
    applied to the pre-activated input, as in He et al.'s code. Same arguments as ``BasicBlock``.
    """

    preact = True

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2.weight)  # the branch ends on a convolution here

    def forward(self, x: Tensor) -> Tensor:
        a = x                                       # a[l]: N x C_in x H x W
        pre = self.relu(self.bn1(a))                # g(BN(a[l])), shared with a projection shortcut
        out = self.conv1(pre)                       # N x C x H/s x W/s
        out = self.conv2(self.relu(self.bn2(out)))  # F(a[l]): N x C x H/s x W/s
        if self.attn is not None:
            out = self.attn(out)
        if self.shortcut:
            out += a if self.downsample is None else self.downsample(pre)
        return out                                  # a[l+2] = a[l] + F(a[l]), no activation after the sum


class PreActBottleneck(Bottleneck):
    """Pre-activation bottleneck (He et al. 2016): BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1, then ``+ a[l]``."""

    preact = True

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: Tensor) -> Tensor:
        a = x                                       # a[l]: N x C_in x H x W
        pre = self.relu(self.bn1(a))
        out = self.conv1(pre)                       # 1x1 reduce: N x width x H x W
        out = self.conv2(self.relu(self.bn2(out)))  # 3x3:        N x width x H/s x W/s
        out = self.conv3(self.relu(self.bn3(out)))  # 1x1 restore, F(a[l]): N x 4C x H/s x W/s
        if self.attn is not None:
            out = self.attn(out)
        if self.shortcut:
            out += a if self.downsample is None else self.downsample(pre)
        return out                                  # a[l+2] = a[l] + F(a[l])
