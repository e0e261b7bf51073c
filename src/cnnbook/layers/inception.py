"""GoogLeNet's (Inception v1) four-path block and auxiliary head, and the conv -> BN -> ReLU unit of both Inceptions.

Reference: Szegedy et al. 2014, "Going Deeper with Convolutions" (GoogLeNet, Inception v1):
:class:`InceptionModule` (figure 2b of the paper) and :class:`InceptionAux` (the auxiliary classifiers of
section 5). Inception-v3's factorised blocks are in ``cnnbook.layers.inception_v3``.

Every convolution is torchvision's :class:`BasicConv2d` (conv -> BatchNorm(eps=0.001) -> ReLU), and every
attribute name is torchvision's, so torchvision's GoogLeNet state dict loads unchanged. Channel counts are
arguments whose defaults are torchvision's, so the models can build narrow copies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BasicConv2d", "InceptionModule", "InceptionAux"]


class BasicConv2d(nn.Module):
    """Torchvision's Inception unit: ``Conv2d(bias=False) -> BatchNorm2d(eps=0.001) -> ReLU``.

    It computes the same thing as :class:`cnnbook.layers.ConvBNAct` with ``bn_eps=0.001``, but names its
    children ``conv`` and ``bn`` (ConvBNAct numbers them 0, 1, 2) as torchvision's GoogLeNet and
    Inception-v3 do, so their state dicts load with ``strict=True`` and no key renaming. Batch
    normalisation arrived after GoogLeNet (Inception-BN, v2); torchvision's GoogLeNet has it too.

    Args:
        in_channels: channels in.
        out_channels: channels out.
        kernel_size: square kernel, or ``(kh, kw)`` for the factorised 1x7, 7x1, 1x3, 3x1 kernels.
        stride: convolution stride.
        padding: zero padding, ``(ph, pw)`` for rectangular kernels; 0 ("valid") by default, as torchvision.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        x = self.bn(x)
        return F.relu(x, inplace=True)


# ---- Inception v1 (GoogLeNet) ---------------------------------------------------------------------


class InceptionModule(nn.Module):
    """The Inception module with dimension reductions (Szegedy et al. 2014, figure 2b).

    Four parallel paths see the same input and keep its height and width; their outputs are
    concatenated along the channels::

        branch1: 1x1                                     -> ch1x1
        branch2: 1x1 reduce (ch3x3red) -> 3x3            -> ch3x3
        branch3: 1x1 reduce (ch5x5red) -> 5x5            -> ch5x5
        branch4: 3x3 max-pool, stride 1 -> 1x1 projection -> pool_proj

    out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj. The first block of GoogLeNet (inception3a) is
    ``InceptionModule(192, 64, 96, 128, 16, 32, 32)``: 192 channels in, 64 + 128 + 32 + 32 = 256 out.
    The 1x1 reductions are what make it affordable: 163K weights here, against 442K for one plain 3x3
    convolution from 192 to 256 channels.

    **Torchvision's "5x5" branch is a 3x3.** Torchvision's ``Inception`` uses a 3x3 kernel in branch3, a
    known bug (pytorch/vision issue #906) kept so that its ImageNet weights still load. ``branch3_kernel``
    chooses: 5 (the default here) is the paper's module; :class:`cnnbook.models.GoogLeNet` passes 3
    unless asked otherwise, to match torchvision.

    Args:
        in_channels: channels in.
        ch1x1: output channels of the 1x1 path.
        ch3x3red, ch3x3: reduction and output channels of the 3x3 path.
        ch5x5red, ch5x5: reduction and output channels of the "5x5" path.
        pool_proj: output channels of the 1x1 projection after the max-pool.
        branch3_kernel: kernel size of the "5x5" path: 5 as in the paper, 3 as in torchvision.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel: int = 5,
    ) -> None:
        super().__init__()
        if branch3_kernel < 1 or branch3_kernel % 2 == 0:
            raise ValueError(
                f"branch3_kernel must be a positive odd number (5 in the paper, 3 in torchvision) so that "
                f"'same' padding keeps H and W; got {branch3_kernel!r}."
            )
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:  # N x C_in x H x W
        branch1 = self.branch1(x)  # N x ch1x1 x H x W
        branch2 = self.branch2(x)  # N x ch3x3 x H x W
        branch3 = self.branch3(x)  # N x ch5x5 x H x W
        branch4 = self.branch4(x)  # N x pool_proj x H x W
        return torch.cat([branch1, branch2, branch3, branch4], 1)  # N x out_channels x H x W


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier (Szegedy et al. 2014, section 5), as torchvision builds it.

    Attached to the outputs of inception4a (512 channels) and inception4d (528 channels); its loss is
    added to the main loss with weight 0.3 during training, and it is discarded at inference::

        average pool to 4x4 -> 1x1 conv (128) -> FC (1024) + ReLU -> dropout (0.7) -> FC (classes)

    The paper pools with a 5x5 window and stride 3 (14x14 -> 4x4); torchvision pools adaptively to 4x4,
    which is the same at 224x224 input and works at any input size.

    Args:
        in_channels: channels of the feature map it reads.
        num_classes: outputs.
        conv_channels: channels of the 1x1 convolution (128).
        hidden_features: width of the hidden fully connected layer (1024).
        dropout: dropout probability before the last layer (0.7).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        conv_channels: int = 128,
        hidden_features: int = 1024,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, conv_channels, kernel_size=1)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, hidden_features)  # 128 * 4 * 4 = 2048 -> 1024
        self.fc2: nn.Module = nn.Linear(hidden_features, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:  # N x 512 (or 528) x 14 x 14
        x = F.adaptive_avg_pool2d(x, (4, 4))  # N x 512 x 4 x 4
        x = self.conv(x)  # N x 128 x 4 x 4
        x = torch.flatten(x, 1)  # N x 2048
        x = F.relu(self.fc1(x), inplace=True)  # N x 1024
        x = self.dropout(x)
        return self.fc2(x)  # N x num_classes

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer (``nn.Identity`` for ``num_classes=0``), as the main classifier."""
        device = self.fc1.weight.device
        self.fc2 = nn.Linear(self.fc1.out_features, num_classes).to(device) if num_classes else nn.Identity()
