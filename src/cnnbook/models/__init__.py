"""Every network of the course. Importing this package registers them all (see :mod:`cnnbook.registry`)."""

from ._base import ImageClassifier, StageInfo
from .lenet import *  # noqa: F401,F403  chapter 2
from .alexnet import *  # noqa: F401,F403  chapter 3
from .zfnet import *  # noqa: F401,F403  chapter 3
from .nin import *  # noqa: F401,F403  chapter 4
from .vgg import *  # noqa: F401,F403  chapter 5
from .googlenet import *  # noqa: F401,F403  chapter 6
from .inception_v3 import *  # noqa: F401,F403  chapter 6
from .resnet import *  # noqa: F401,F403  chapters 8 and 9 (plain, ResNeXt, SE-ResNet)
from .densenet import *  # noqa: F401,F403  chapter 9
from .unet import *  # noqa: F401,F403  chapter 10
from .mobilenet import *  # noqa: F401,F403  chapter 11
from .mobilenet_v3 import *  # noqa: F401,F403  chapter 11
from .efficientnet import *  # noqa: F401,F403  chapter 13
from .regnet import *  # noqa: F401,F403  chapter 13
from .convnext import *  # noqa: F401,F403  chapter 15
