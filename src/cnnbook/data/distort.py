"""Distorted copies of training images, the way LeCun et al. (1998) enlarged the MNIST training set.

Each copy applies a random planar affine map (rotation, scaling, squeezing, shearing, translation) to
every image, all at once with ``affine_grid`` and ``grid_sample``, so enlarging a few thousand images
takes a fraction of a second. Chapter 12 treats data augmentation in general.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["random_affine", "distorted_copies"]


def random_affine(
    images: Tensor, generator: torch.Generator, rotation: float = 10.0, scale: tuple[float, float] = (0.85, 1.1),
    squeeze: float = 0.1, shear: float = 0.15, translate: float = 0.06,
) -> Tensor:
    """One random affine distortion per image of a uint8 batch N x C x H x W; returns uint8.

    Args:
        rotation: largest rotation, degrees.
        scale: range of the overall scale factor.
        squeeze: largest relative change of the aspect ratio (compress one axis, stretch the other).
        shear: largest horizontal shear.
        translate: largest shift, as a fraction of the image side.
    """
    n = len(images)

    def uniform(low: float, high: float) -> Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    angle = uniform(-rotation, rotation) * math.pi / 180
    s = uniform(*scale)
    q = uniform(-squeeze, squeeze)
    sh = uniform(-shear, shear)
    tx, ty = uniform(-translate, translate) * 2, uniform(-translate, translate) * 2  # grid units span 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map A = R(angle) @ Shear(sh) @ diag(s(1+q), s(1-q)); grid_sample needs the inverse map.
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    a = a @ torch.stack([torch.stack([torch.ones(n), sh], -1), torch.stack([torch.zeros(n), torch.ones(n)], -1)], -2)
    a = a @ torch.diag_embed(torch.stack([s * (1 + q), s * (1 - q)], -1))
    inverse = torch.linalg.inv(a)
    offset = -(inverse @ torch.stack([tx, ty], -1)[..., None])
    theta = torch.cat([inverse, offset], dim=-1)  # N x 2 x 3
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round().clamp_(0, 255).to(torch.uint8)


def distorted_copies(images: Tensor, targets: Tensor, copies: int, seed: int = 0, **distortion: float) -> tuple[Tensor, Tensor]:
    """The original uint8 images followed by ``copies`` randomly distorted copies of each, and their targets.

    The background is assumed black (zero), as in MNIST; ``distortion`` is passed to ``random_affine``.
    """
    if copies < 0:
        raise ValueError(f"copies must be >= 0; got {copies}.")
    generator = torch.Generator().manual_seed(seed)
    parts = [images] + [random_affine(images, generator, **distortion) for _ in range(copies)]
    return torch.cat(parts), targets.repeat(copies + 1)
