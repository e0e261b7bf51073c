"""Inception-v3's factorised blocks and auxiliary classifier.

Reference: Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision" (Inception-v3)::

    block (torchvision)  paper                                     grid at 299x299 input   channels
    InceptionA           figure 5: 5x5 -> two 3x3                  35x35 (stage 3)         192 -> 288
    InceptionB           figure 10: grid reduction                 35x35 -> 17x17          288 -> 768
    InceptionC           figure 6: n x n -> 1 x n, n x 1 (n = 7)   17x17 (stage 4)         768 -> 768
    InceptionD           figure 10: grid reduction                 17x17 -> 8x8            768 -> 1280
    InceptionE           figure 7: 3x3 -> 1x3 | 3x1 side by side   8x8 (stage 5)           1280 -> 2048
    InceptionV3Aux       figure 8: auxiliary classifier            reads the 17x17 grid    768 -> classes

Every convolution is :class:`~cnnbook.layers.inception.BasicConv2d` (conv -> BatchNorm(eps=0.001) -> ReLU,
shared with GoogLeNet), and every attribute name is torchvision's, so torchvision's Inception-v3 state dict
loads unchanged. Channel counts are arguments whose defaults are torchvision's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .inception import BasicConv2d

__all__ = ["InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionV3Aux"]


def _avg_pool_3x3(x: Tensor) -> Tensor:
    """The pooling path of figures 5-7: 3x3 average pooling, stride 1, padded so H and W stay."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """Inception-v3 block for the 35x35 grid (Szegedy et al. 2015, figure 5; Mixed_5b, 5c, 5d).

    Figure 5 replaces the 5x5 convolution of the original module by two stacked 3x3 convolutions: the
    same 5x5 receptive field for 2 * 9 / 25 = 72% of the cost, with an extra non-linearity. Torchvision
    (following Google's released model) keeps both: a 5x5 path and the factorised double-3x3 path::

        branch1x1:       1x1                                  -> ch1x1 (64)
        branch5x5:       1x1 (48) -> 5x5                      -> ch5x5 (64)
        branch3x3dbl:    1x1 (64) -> 3x3 (96) -> 3x3          -> ch3x3dbl (96)
        branch_pool:     3x3 avg-pool -> 1x1                  -> pool_features (32 or 64)

    35x35x192 -> 35x35x256 (Mixed_5b), then 35x35x288 (Mixed_5c, 5d).
    """

    def __init__(
        self,
        in_channels: int,
        pool_features: int,
        ch1x1: int = 64,
        ch5x5red: int = 48,
        ch5x5: int = 64,
        ch3x3dblred: int = 64,
        ch3x3dbl: int = 96,
    ) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)

        self.branch5x5_1 = BasicConv2d(in_channels, ch5x5red, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(ch5x5red, ch5x5, kernel_size=5, padding=2)

        self.branch3x3dbl_1 = BasicConv2d(in_channels, ch3x3dblred, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(ch3x3dblred, ch3x3dbl, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch3x3dbl, ch3x3dbl, kernel_size=3, padding=1)

        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)
        self.out_channels = ch1x1 + ch5x5 + ch3x3dbl + pool_features

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x 35 x 35
        branch1x1 = self.branch1x1(x)

        branch5x5 = self.branch5x5_1(x)
        branch5x5 = self.branch5x5_2(branch5x5)

        branch3x3dbl = self.branch3x3dbl_1(x)
        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        branch3x3dbl = self.branch3x3dbl_3(branch3x3dbl)

        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)  # N x out_channels x 35 x 35


class InceptionB(nn.Module):
    """Grid reduction 35x35 -> 17x17 (Szegedy et al. 2015, figure 10; Mixed_6a).

    Section 5 of the paper: pooling first loses information, convolving first costs too much; instead
    run stride-2 convolutions and a stride-2 pool side by side and concatenate them, so the grid
    halves while the channels grow::

        branch3x3:     3x3, stride 2                          -> ch3x3 (384)
        branch3x3dbl:  1x1 (64) -> 3x3 (96) -> 3x3, stride 2  -> ch3x3dbl (96)
        pool:          3x3 max-pool, stride 2                 -> in_channels (288)

    35x35x288 -> 17x17x768.
    """

    def __init__(self, in_channels: int, ch3x3: int = 384, ch3x3dblred: int = 64, ch3x3dbl: int = 96) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, ch3x3, kernel_size=3, stride=2)

        self.branch3x3dbl_1 = BasicConv2d(in_channels, ch3x3dblred, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(ch3x3dblred, ch3x3dbl, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch3x3dbl, ch3x3dbl, kernel_size=3, stride=2)
        self.out_channels = ch3x3 + ch3x3dbl + in_channels

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x 35 x 35
        branch3x3 = self.branch3x3(x)  # N x 384 x 17 x 17

        branch3x3dbl = self.branch3x3dbl_1(x)
        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        branch3x3dbl = self.branch3x3dbl_3(branch3x3dbl)  # N x 96 x 17 x 17

        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)  # N x C_in x 17 x 17
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)  # N x out_channels x 17 x 17


class InceptionC(nn.Module):
    """Inception-v3 block for the 17x17 grid (Szegedy et al. 2015, figure 6 with n = 7; Mixed_6b-6e).

    Figure 6 factorises an n x n convolution into a 1 x n followed by an n x 1 (asymmetric
    convolutions): for n = 7 that is 2 * 7 = 14 weights per channel pair instead of 49, 71% cheaper.
    The paper finds it works well on medium grids (12 to 20)::

        branch1x1:     1x1                                                    -> ch1x1 (192)
        branch7x7:     1x1 (c7) -> 1x7 (c7) -> 7x1                            -> ch7x7 (192)
        branch7x7dbl:  1x1 (c7) -> 7x1 (c7) -> 1x7 (c7) -> 7x1 (c7) -> 1x7    -> ch7x7dbl (192)
        branch_pool:   3x3 avg-pool -> 1x1                                    -> pool_proj (192)

    ``channels_7x7`` (c7) is 128 in Mixed_6b, 160 in 6c and 6d, 192 in 6e. 17x17x768 -> 17x17x768.
    """

    def __init__(
        self,
        in_channels: int,
        channels_7x7: int,
        ch1x1: int = 192,
        ch7x7: int = 192,
        ch7x7dbl: int = 192,
        pool_proj: int = 192,
    ) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)

        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, ch7x7, kernel_size=(7, 1), padding=(3, 0))

        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, ch7x7dbl, kernel_size=(1, 7), padding=(0, 3))

        self.branch_pool = BasicConv2d(in_channels, pool_proj, kernel_size=1)
        self.out_channels = ch1x1 + ch7x7 + ch7x7dbl + pool_proj

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x 17 x 17
        branch1x1 = self.branch1x1(x)

        branch7x7 = self.branch7x7_1(x)
        branch7x7 = self.branch7x7_2(branch7x7)
        branch7x7 = self.branch7x7_3(branch7x7)

        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_2(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_3(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_4(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_5(branch7x7dbl)

        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)  # N x out_channels x 17 x 17


class InceptionD(nn.Module):
    """Grid reduction 17x17 -> 8x8 (Szegedy et al. 2015, figure 10; Mixed_7a).

    The same idea as :class:`InceptionB`, with a factorised 7x7 before the stride-2 3x3::

        branch3x3:    1x1 (192) -> 3x3, stride 2                               -> ch3x3 (320)
        branch7x7x3:  1x1 (192) -> 1x7 (192) -> 7x1 (192) -> 3x3, stride 2     -> ch7x7x3 (192)
        pool:         3x3 max-pool, stride 2                                   -> in_channels (768)

    17x17x768 -> 8x8x1280.
    """

    def __init__(self, in_channels: int, ch3x3red: int = 192, ch3x3: int = 320, ch7x7x3: int = 192) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, ch3x3red, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(ch3x3red, ch3x3, kernel_size=3, stride=2)

        self.branch7x7x3_1 = BasicConv2d(in_channels, ch7x7x3, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(ch7x7x3, ch7x7x3, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(ch7x7x3, ch7x7x3, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(ch7x7x3, ch7x7x3, kernel_size=3, stride=2)
        self.out_channels = ch3x3 + ch7x7x3 + in_channels

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x 17 x 17
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = self.branch3x3_2(branch3x3)  # N x 320 x 8 x 8

        branch7x7x3 = self.branch7x7x3_1(x)
        branch7x7x3 = self.branch7x7x3_2(branch7x7x3)
        branch7x7x3 = self.branch7x7x3_3(branch7x7x3)
        branch7x7x3 = self.branch7x7x3_4(branch7x7x3)  # N x 192 x 8 x 8

        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)  # N x C_in x 8 x 8
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)  # N x out_channels x 8 x 8


class InceptionE(nn.Module):
    """Inception-v3 block for the 8x8 grid (Szegedy et al. 2015, figure 7; Mixed_7b, 7c).

    Figure 7 "expands the filter bank outputs": on the coarsest grid, a 3x3 is factorised into a 1x3 and
    a 3x1 placed side by side (not stacked), and both outputs are concatenated, so the block produces
    high-dimensional representations where the paper says they matter most::

        branch1x1:     1x1                                               -> ch1x1 (320)
        branch3x3:     1x1 (384) -> [1x3 | 3x1] (384 each)               -> 2 * ch3x3 (768)
        branch3x3dbl:  1x1 (448) -> 3x3 (384) -> [1x3 | 3x1] (384 each)  -> 2 * ch3x3dbl (768)
        branch_pool:   3x3 avg-pool -> 1x1                               -> pool_proj (192)

    8x8x1280 -> 8x8x2048 (Mixed_7b), then 8x8x2048 (Mixed_7c).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int = 320,
        ch3x3: int = 384,
        ch3x3dblred: int = 448,
        ch3x3dbl: int = 384,
        pool_proj: int = 192,
    ) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)

        self.branch3x3_1 = BasicConv2d(in_channels, ch3x3, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(ch3x3, ch3x3, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(ch3x3, ch3x3, kernel_size=(3, 1), padding=(1, 0))

        self.branch3x3dbl_1 = BasicConv2d(in_channels, ch3x3dblred, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(ch3x3dblred, ch3x3dbl, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(ch3x3dbl, ch3x3dbl, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(ch3x3dbl, ch3x3dbl, kernel_size=(3, 1), padding=(1, 0))

        self.branch_pool = BasicConv2d(in_channels, pool_proj, kernel_size=1)
        self.out_channels = ch1x1 + 2 * ch3x3 + 2 * ch3x3dbl + pool_proj

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x 8 x 8
        branch1x1 = self.branch1x1(x)

        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)

        branch3x3dbl = self.branch3x3dbl_1(x)
        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)

        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)  # N x out_channels x 8 x 8


class InceptionV3Aux(nn.Module):
    """Inception-v3's auxiliary classifier on the last 17x17 grid (Szegedy et al. 2015, figure 8).

    The paper found that the auxiliary classifier does not speed up early training as GoogLeNet hoped,
    but acts as a regulariser, more so with batch normalisation in it (BN-auxiliary)::

        5x5 avg-pool, stride 3 (17 -> 5) -> 1x1 conv (128) -> 5x5 conv (768) (5 -> 1) -> FC (classes)

    The fixed 5x5 windows need a 17x17 grid, so in training Inception-v3 needs a 299x299 input.
    Torchvision's ``InceptionAux``; its ``conv1.stddev`` of 0.01 sits on the wrapper, not on the
    ``nn.Conv2d``, so torchvision's initialisation never reads it (the convolution gets the default 0.1).

    Args:
        in_channels: channels of the 17x17 map (768).
        num_classes: outputs.
        conv0_channels: channels of the 1x1 convolution (128).
        conv1_channels: channels of the 5x5 convolution (768).
    """

    def __init__(
        self, in_channels: int, num_classes: int, conv0_channels: int = 128, conv1_channels: int = 768
    ) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, conv0_channels, kernel_size=1)
        self.conv1 = BasicConv2d(conv0_channels, conv1_channels, kernel_size=5)
        self.fc: nn.Module = nn.Linear(conv1_channels, num_classes)
        self.fc_stddev = 0.001  # initialisation scale of ``fc`` (torchvision's ``fc.stddev``)

    def forward(self, x: Tensor) -> Tensor:  # N x 768 x 17 x 17
        x = F.avg_pool2d(x, kernel_size=5, stride=3)  # N x 768 x 5 x 5
        x = self.conv0(x)  # N x 128 x 5 x 5
        x = self.conv1(x)  # N x 768 x 1 x 1
        x = F.adaptive_avg_pool2d(x, (1, 1))  # N x 768 x 1 x 1
        x = torch.flatten(x, 1)  # N x 768
        return self.fc(x)  # N x num_classes

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer (``nn.Identity`` for ``num_classes=0``), as the main classifier."""
        device = self.conv1.conv.weight.device
        width = self.conv1.out_channels
        self.fc = nn.Linear(width, num_classes).to(device) if num_classes else nn.Identity()
