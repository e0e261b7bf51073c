"""What every loader of ``cnnbook.data`` returns: the data, plus a record of which data it is.

Images are stored as uint8 tensors (N x C x H x W: a quarter of the memory of float32) and turned into
normalised float tensors one sample at a time, so a few thousand images cost a few megabytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from ..config import get_config

__all__ = ["ImageTensorDataset", "DataBundle", "channel_stats"]


def channel_stats(images: Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units (computed in chunks)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].double().div_(255)
        total += part.sum(dim=(0, 2, 3))
        total_sq += part.pow(2).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


class ImageTensorDataset(Dataset):
    """uint8 images and their targets; ``dataset[i]`` is ``(normalised float image, target)``.

    Args:
        images: uint8 tensor N x C x H x W.
        targets: int64 labels (N) or per-pixel masks (N x H x W).
        mean, std: per-channel statistics in [0, 1] units, used to normalise.
        image_size: resize every image to this side (bilinear) when it differs from the stored size.
        transform: optional augmentation applied to the float image in [0, 1], before normalisation
            (for example a ``torchvision.transforms.v2`` pipeline).
    """

    def __init__(
        self, images: Tensor, targets: Tensor, mean: list[float], std: list[float],
        image_size: int | None = None, transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor N x C x H x W; got {images.dtype} {tuple(images.shape)}.")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets.")
        self.images = images
        self.targets = targets
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def raw(self, index: int) -> Tensor:
        """Image ``index`` as floats in [0, 1] (resized, not normalised): what a plot should show."""
        x = self.images[index].float().div_(255)  # C x H x W
        if self.image_size is not None and x.shape[-1] != self.image_size:
            x = F.interpolate(x[None], size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True)[0].clamp_(0, 1)
        return x

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = self.raw(index)
        if self.transform is not None:
            x = self.transform(x)
        return (x - self.mean) / self.std, self.targets[index]


@dataclass
class DataBundle:
    """A training and a test set, and a record of which data they are and why.

    ``name`` is the data actually used (e.g. ``"scikit-learn digits"``), ``requested`` the data set that
    was asked for (e.g. ``"MNIST"``); chapters glue ``name`` beside their figures.
    """

    name: str
    requested: str
    reason: str                    # why this data: "found in ...", "downloaded to ...", "offline fallback: ..."
    train: ImageTensorDataset
    test: ImageTensorDataset
    classes: list[str]
    task: str = "classification"  # or "segmentation"
    fallback: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) of one image as the model receives it."""
        return tuple(self.train[0][0].shape)  # type: ignore[return-value]

    def summary(self) -> str:
        """The one line every loader prints."""
        c, h, w = self.input_size
        return (f"data: {self.name}, {len(self.train):,} training / {len(self.test):,} test images "
                f"of {c}x{h}x{w} ({self.reason})")

    def with_distorted_copies(self, copies: int, seed: int = 0, **distortion: float) -> DataBundle:
        """A copy of this bundle whose training set also holds ``copies`` distorted copies of each image.

        See ``cnnbook.data.distort.distorted_copies``; the test set is unchanged.
        """
        from .distort import distorted_copies

        images, targets = distorted_copies(self.train.images, self.train.targets, copies, seed, **distortion)
        train = ImageTensorDataset(images, targets, self.train.mean.flatten().tolist(), self.train.std.flatten().tolist(),
                                   self.train.image_size, self.train.transform)
        return replace(self, train=train, extra={**self.extra, "distorted_copies": copies})

    def loaders(
        self, batch_size: int | None = None, shuffle: bool = True, seed: int = 0,
    ) -> tuple[DataLoader, DataLoader]:
        """(train_loader, test_loader); the training order is shuffled reproducibly from ``seed``."""
        config = get_config()
        batch_size = batch_size or config.batch_size
        generator = torch.Generator().manual_seed(seed)
        common = dict(num_workers=config.num_workers, pin_memory=config.device == "cuda",
                      persistent_workers=config.num_workers > 0)
        train = DataLoader(self.train, batch_size=batch_size, shuffle=shuffle, generator=generator, **common)
        test = DataLoader(self.test, batch_size=max(batch_size, 256), shuffle=False, **common)
        return train, test
