"""Squeeze-and-excitation (Hu, Shen, Sun 2017, Squeeze-and-Excitation Networks).

A convolution only sees a small neighbourhood. The SE block gives every channel a weight computed from a
summary of the *whole* image, cheaply:

- squeeze: global average pooling, ``z_c = mean over H, W of u_c`` (one number per channel, no weights);
- excitation: ``s = sigmoid(W2 relu(W1 z))``, with ``W1`` reducing C channels to C/r and ``W2`` restoring C;
- scale: ``x~_c = s_c * u_c``, each channel multiplied by its weight in (0, 1).

The two fully connected layers are written as 1x1 convolutions on the ``N x C x 1 x 1`` squeezed tensor:
on a 1x1 map a 1x1 convolution *is* a fully connected layer (same weights, ``C/r x C`` plus a bias), and it
saves two reshapes. The attribute names are those of ``torchvision.ops.SqueezeExcitation``.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

__all__ = ["SqueezeExcite", "se_num_params"]


def se_num_params(channels: int, reduction: int = 16) -> int:
    """Parameters of one :class:`SqueezeExcite` block: two FC layers with biases, ``2 C (C/r) + C/r + C``."""
    squeeze = max(1, channels // reduction)
    return channels * squeeze + squeeze + squeeze * channels + channels


class SqueezeExcite(nn.Module):
    """Re-weight the channels of ``N x C x H x W`` features by ``sigmoid(fc2(relu(fc1(avgpool(x)))))``.

    Args:
        channels: C, channels of the input (and of the output).
        reduction: r, the squeeze ratio; the hidden layer has ``max(1, C // r)`` units. Hu et al. use 16.
        activation: delta in the paper, ``nn.ReLU`` (EfficientNet uses ``nn.SiLU``).
        scale_activation: sigma in the paper, ``nn.Sigmoid``, so every channel weight lies in (0, 1)
            (MobileNet v3 uses the cheaper ``nn.Hardsigmoid``).
        squeeze_channels: the hidden width itself, overriding ``reduction``. Later networks size it from
            another width than C: MobileNet v3 uses ``make_divisible(C / 4)``, EfficientNet a quarter of
            the block's *input* channels, RegNetY a quarter of the stage's input width.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        activation: Callable[..., nn.Module] = nn.ReLU,
        scale_activation: Callable[..., nn.Module] = nn.Sigmoid,
        squeeze_channels: int | None = None,
    ) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"channels must be > 0; got {channels!r}.")
        if reduction <= 0:
            raise ValueError(
                f"reduction must be > 0 (the hidden layer has channels // reduction units); got {reduction!r}."
            )
        if squeeze_channels is not None and squeeze_channels <= 0:
            raise ValueError(f"squeeze_channels must be > 0 (the hidden width); got {squeeze_channels!r}.")
        self.channels = channels
        # C/r; at least one unit for tiny C
        self.squeeze_channels = max(1, channels // reduction) if squeeze_channels is None else squeeze_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, self.squeeze_channels, kernel_size=1)  # W1: C -> C/r
        self.fc2 = nn.Conv2d(self.squeeze_channels, channels, kernel_size=1)  # W2: C/r -> C
        self.activation = activation()
        self.scale_activation = scale_activation()

    def channel_weights(self, u: Tensor) -> Tensor:
        """The excitation ``s``: one weight in (0, 1) per sample and channel, shape ``N x C x 1 x 1``."""
        z = self.avgpool(u)                                    # squeeze: N x C x 1 x 1
        s = self.fc2(self.activation(self.fc1(z)))             # excitation: N x C/r x 1 x 1 -> N x C x 1 x 1
        return self.scale_activation(s)

    def forward(self, u: Tensor) -> Tensor:
        return self.channel_weights(u) * u                     # scale: N x C x H x W
