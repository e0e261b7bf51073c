"""U-Net (Ronneberger, Fischer, Brox 2015): an encoder-decoder for segmentation with long skip connections.

The contracting path (encoder) halves H and W four times and doubles the channels, 64 -> 128 -> 256 ->
512 -> 1024: it learns *what* is in the image but loses *where*. The expanding path (decoder) doubles
H and W back with up-convolutions; at each level it concatenates the encoder map of the same size
(the long skip connection), which brings back the spatial detail that down-sampling threw away. A
final 1x1 convolution gives one score map per class: the output is an image of class scores.

Differences from the paper, and why:

- Padding. The paper uses unpadded 3x3 convolutions: a 572x572 input gives a 388x388 output
  (32x32 at the lowest resolution, 28x28 after its two convolutions), and each encoder map is
  centre-cropped before it is joined. Here ``padding=1`` ("same") is the default, so the output has
  the input's H and W and no cropping is needed; H and W must then be divisible by ``2**depth``.
  ``padding=0`` rebuilds the paper's version (572 -> 388, with cropping).
- Input size. The registry's native input is 1x512x512, so the lowest resolution is 32x32 as in the
  paper's example. The full 64 ... 1024 network costs about 192 G mult-adds there (150 G for the
  paper's unpadded 572x572), about 5 s per forward pass on a 2-core CPU; the book trains the small
  configuration (``base_channels=8, depth=3``) instead.
- BatchNorm. The paper (2015) has none; ``batch_norm=False`` is the default. The book's small U-Net
  trained on a CPU uses ``batch_norm=True``, which makes it converge in far fewer steps.
- The paper's dropout at the end of the contracting path is left out.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..layers.unet_stages import DoubleConv, UNetDown, UNetUp
from ..registry import register_model
from ._base import StageInfo, check_image_batch, check_positive

__all__ = ["UNet", "unet"]


class UNet(nn.Module):
    """U-Net: ``encoder`` (DoubleConv + ``depth`` UNetDown), ``decoder`` (``depth`` UNetUp), ``head`` (1x1).

    Not an :class:`~cnnbook.models.ImageClassifier` (there is no classifier head), but it checks its
    input the same way and describes its levels: ``feature_info`` lists the encoder levels
    (channels and reduction 1, 2, ..., 2**depth), ``decoder_info`` the decoder levels.

    Args:
        num_classes: score maps out (2 in the paper: cell / background).
        in_channels: channels of the input images (1 in the paper: grey microscopy).
        base_channels: channels of the first level (64); level i has ``base_channels * 2**i``.
        depth: number of 2x2 max-poolings (4 in the paper, so 5 levels, 64 ... 1024 channels).
        batch_norm: BatchNorm after every 3x3 convolution (not in the paper).
        long_skips: concatenate encoder maps into the decoder (U-Net); ``False`` gives a plain
            encoder-decoder, the ablation that shows what the skips carry.
        padding: 1 for "same" convolutions (output H, W = input H, W); 0 as in the paper.
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_channels: int = 1,
        base_channels: int = 64,
        depth: int = 4,
        batch_norm: bool = False,
        long_skips: bool = True,
        padding: int = 1,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("in_channels", in_channels)
        check_positive("base_channels", base_channels)
        check_positive("depth", depth, "the number of 2x2 max-poolings")
        if padding not in (0, 1):
            raise ValueError(
                f"padding must be 1 ('same' convolutions) or 0 (the paper's, with cropping); got {padding}."
            )
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.depth = depth
        self.long_skips = long_skips
        self.padding = padding
        widths = [base_channels * 2**i for i in range(depth + 1)]  # 64, 128, 256, 512, 1024

        encoder: list[nn.Module] = [DoubleConv(in_channels, widths[0], padding, batch_norm)]
        encoder += [UNetDown(widths[i], widths[i + 1], padding, batch_norm) for i in range(depth)]
        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(
            UNetUp(widths[i + 1], widths[i], padding, batch_norm, long_skips) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)  # one score map per class

        self.feature_info = [StageInfo(f"encoder.{i}", widths[i], 2**i) for i in range(depth + 1)]
        self.decoder_info = [
            StageInfo(f"decoder.{j}", widths[i], 2**i) for j, i in enumerate(reversed(range(depth)))
        ]
        self.min_input_size = next(s for s in range(1, 2**depth * 64) if self.output_side(s) is not None)
        self._init_weights()

    def _init_weights(self) -> None:
        """The paper's initialisation: Gaussian weights with std sqrt(2 / fan-in) (He et al.)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    # ---- shape arithmetic and input checking -----------------------------------------------------
    def output_side(self, side: int) -> int | None:
        """Output height (or width) for an input of ``side`` pixels; ``None`` if that size does not fit.

        With padding 1: ``side`` itself when divisible by ``2**depth``. With padding 0 each DoubleConv
        trims 4 pixels and every map before a 2x2 pooling must have an even size: 572 -> 388 for depth 4.
        """
        trim = 4 * (1 - self.padding)  # two 3x3 convolutions without padding: 2 pixels per side
        s = side - trim
        for _ in range(self.depth):  # contracting path: DoubleConv then pool
            if s < 2 or s % 2:
                return None
            s = s // 2 - trim
        if s < 1:
            return None
        for _ in range(self.depth):  # expanding path: up-conv doubles, DoubleConv trims
            s = 2 * s - trim
            if s < 1:
                return None
        return s

    def expected_shape(self) -> str:
        if self.padding == 1:
            return f"(N, {self.in_channels}, H, W) with H and W divisible by 2**depth = {2**self.depth}"
        scale, offset = 2**self.depth, 4 * (2**self.depth - 1)  # valid sides: scale * k + offset
        k_min = (self.min_input_size - offset) // scale
        return (
            f"(N, {self.in_channels}, H, W) with H, W = {scale} * k + {offset} for a whole k >= {k_min} "
            f"(e.g. {scale * 32 + offset} with 32 x 32 at the lowest resolution)"
        )

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` naming the expected shape when ``x`` does not fit this network."""
        name = type(self).__name__
        h, w = check_image_batch(x, name, self.in_channels, self.expected_shape())
        for side in (h, w):
            if self.output_side(side) is None:
                reason = (
                    f"each of the {self.depth} 2x2 max-poolings halves H and W, and the decoder doubles "
                    f"them back, so both must be divisible by {2**self.depth}"
                    if self.padding == 1
                    else "every map before a 2x2 max-pooling must have an even size and no map may vanish"
                )
                raise ValueError(
                    f"{name} expects inputs of shape {self.expected_shape()}; got {tuple(x.shape)}: "
                    f"{reason}. Resize, pad or crop the images."
                )

    # ---- forward ---------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        skips: list[Tensor] = []
        for stage in self.encoder:  # N x 64 x H x W, N x 128 x H/2 x W/2, ..., N x 1024 x H/16 x W/16
            x = stage(x)
            skips.append(x)
        skips.pop()  # the bottom map is the decoder's input, not a skip
        for stage in self.decoder:  # N x 512 x H/8 x W/8, ..., N x 64 x H x W
            skip = skips.pop()
            x = stage(x, skip if self.long_skips else None)
        return self.head(x)  # N x num_classes x H x W


@register_model(
    chapter=10,
    paper="Ronneberger, Fischer, Brox 2015, U-Net: Convolutional Networks for Biomedical Image Segmentation",
    year=2015,
    input_size=(1, 512, 512),
    key_idea="encoder-decoder whose long skip connections carry spatial detail to the decoder",
    depth=23,
    task="segmentation",
    small_kwargs={"base_channels": 8, "depth": 3, "batch_norm": True},
    small_input_size=(1, 64, 64),
)
def unet(num_classes: int = 2, **kwargs: Any) -> UNet:
    """U-Net (Ronneberger et al. 2015): 23 convolutional layers, 64 ... 1024 channels, "same" padding.

    Further keyword arguments (``in_channels``, ``base_channels``, ``depth``, ``batch_norm``, ``long_skips``,
    ``padding``): see :class:`UNet`.
    """
    return UNet(num_classes, **kwargs)
