"""ZF-Net (Zeiler, Fergus 2013): AlexNet with smaller first-layer filters, found by looking at them.

Zeiler and Fergus projected feature maps back to pixel space with a deconvolutional network and saw
that AlexNet's 11 x 11 stride-4 first layer had dead filters and aliasing ("blocking") in the second
layer. Their fix, the network of their Figure 3 (ILSVRC 2013 winner as part of an ensemble):

- conv1: 7 x 7 with stride 2 (AlexNet: 11 x 11, stride 4), so finer detail reaches layer 2;
- conv2: 5 x 5 with stride 2, so the sizes still meet AlexNet's 13 x 13 at conv3;
- 3 x 3 max pooling with stride 2, followed by local contrast normalisation (after pooling, not
  before it as in AlexNet);
- one GPU, so no grouped convolutions; channels 96-256-384-384-256 as in AlexNet, dense 4096-4096.

The published sizes (224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6) come out with padding 1 on conv1
and pooling that rounds up (Caffe's arithmetic, ``ceil_mode=True``); with PyTorch's default rounding
the first pooling would give 54. The paper's larger variant (conv3-conv5 with 512-1024-512 maps) is
``AlexNet(layout=dataclasses.replace(ZFNET_LAYOUT, convs=...))``.

The network is :class:`~cnnbook.models.AlexNet` with a different layout: the variant is data.
"""

from __future__ import annotations

from typing import Any

from ..registry import register_model
from .alexnet import AlexNet, AlexNetLayout

__all__ = ["ZFNET_LAYOUT", "zfnet"]

ZFNET_LAYOUT = AlexNetLayout(
    convs=(
        # c, k, s, p, g               output at 224 x 224 (Figure 3 of the paper)
        (96, 7, 2, 1, 1),     # conv1: N x 96 x 110 x 110, pooled to 55 x 55
        (256, 5, 2, 0, 1),    # conv2: N x 256 x 26 x 26, pooled to 13 x 13
        (384, 3, 1, 1, 1),    # conv3: N x 384 x 13 x 13
        (384, 3, 1, 1, 1),    # conv4: N x 384 x 13 x 13
        (256, 3, 1, 1, 1),    # conv5: N x 256 x 13 x 13, pooled to 6 x 6
    ),
    ceil_mode=True,
    lrn_after_pool=True,
)


@register_model(
    chapter=3,
    paper="Zeiler, Fergus 2013, Visualizing and Understanding Convolutional Networks",
    year=2013,
    input_size=(3, 224, 224),
    key_idea="AlexNet with 7x7 stride-2 first filters, chosen by visualising what layers learn",
    depth=8,
    # 64 -> 30 -> 15 -> 6 -> 3 -> 3 -> 1: the stem is kept, the channels are divided by 4.
    small_kwargs=dict(num_classes=10, width_divisor=4, hidden=256, avgpool_size=1),
    small_input_size=(3, 64, 64),
)
def zfnet(num_classes: int = 1000, dropout: float = 0.5, *, use_lrn: bool = True, **kwargs: Any) -> AlexNet:
    """ZF-Net (Zeiler & Fergus 2013): 7x7 stride-2 conv1, 5x5 stride-2 conv2, 96-256-384-384-256, no groups.

    Further keyword arguments (``act_layer``, ``pool_kernel``, ``in_channels``, ...): see :class:`AlexNet`.
    """
    return AlexNet(num_classes, dropout, layout=ZFNET_LAYOUT, use_lrn=use_lrn, **kwargs)
