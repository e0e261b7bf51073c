"""Building blocks, one concept per module, re-exported flat (as timm's ``layers``)."""

from .conv_bn_act import *  # noqa: F401,F403  conv -> BN -> activation
from .lrn import *  # noqa: F401,F403  local response normalisation (AlexNet)
from .grouped_conv import *  # noqa: F401,F403  grouped convolution (AlexNet's two GPUs, ResNeXt)
from .inception import *  # noqa: F401,F403  GoogLeNet's inception module and auxiliary head, BasicConv2d
from .inception_v3 import *  # noqa: F401,F403  Inception-v3's factorised blocks and auxiliary head
from .residual import *  # noqa: F401,F403  basic / bottleneck blocks and their plain twins
from .dense import *  # noqa: F401,F403  dense layer, dense block, transition
from .squeeze_excite import *  # noqa: F401,F403  squeeze-and-excitation
from .separable import *  # noqa: F401,F403  depthwise-separable convolution
from .inverted_residual import *  # noqa: F401,F403  inverted residual with linear bottleneck
from .unet_stages import *  # noqa: F401,F403  U-Net down and up stages
from .widths import *  # noqa: F401,F403  make_divisible, the channel rounding of the efficient networks
from .stochastic_depth import *  # noqa: F401,F403  stochastic depth (EfficientNet, ConvNeXt)
from .regnet_block import *  # noqa: F401,F403  RegNet's residual bottleneck with group width (and SE)
from .convnext_block import *  # noqa: F401,F403  ConvNeXt's block, LayerNorm2d, Permute
