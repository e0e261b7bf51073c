"""The data of the book: real data sets through torchvision, and offline data that needs no download.

>>> from cnnbook.data import load_mnist
>>> data = load_mnist(image_size=32)   # prints one line: which data, and why
>>> train_loader, test_loader = data.loaders()
>>> data.name                          # "MNIST", or "scikit-learn digits" when MNIST cannot be had

Sizes (subsets, batch size) come from the mode: see ``cnnbook.config``.
"""

from .bundle import DataBundle, ImageTensorDataset, channel_stats
from .loaders import (
    DIGIT_CLASSES, load_cifar10, load_dataset, load_digits, load_fashion_mnist, load_mnist, load_segmentation,
    load_shapes,
)
from .shapes import SEGMENTATION_CLASSES, SHAPE_CLASSES, make_segmentation, make_shapes, shape_masks

__all__ = [
    "DataBundle", "ImageTensorDataset", "channel_stats", "DIGIT_CLASSES", "SHAPE_CLASSES", "SEGMENTATION_CLASSES",
    "load_mnist", "load_fashion_mnist", "load_cifar10", "load_digits", "load_shapes", "load_segmentation",
    "load_dataset", "make_shapes", "make_segmentation", "shape_masks",
]
