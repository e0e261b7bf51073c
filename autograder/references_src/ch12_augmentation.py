"""Reference items of the ch12_augmentation assignment (see ``autograder/make_references.py``).

The batched crop-and-flip is referenced by torchvision's functional transforms, one image at a time; Cutout by
its definition (a square of zeros, clipped to the image), one image at a time; the experiment by a band.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._common import case, f32, rand, registry

ITEMS, item = registry("ch12_augmentation")

_FORBIDDEN = ["torchvision"]


@item("ch12_augmentation/crop_flip")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for n, c, h, w, pad in [(5, 3, 8, 8, 2), (3, 1, 28, 28, 3), (4, 2, 7, 9, 4), (2, 3, 5, 5, 0), (6, 1, 6, 4, 1)]:
        images = rand(n, c, h, w)
        flips = torch.rand(n) < 0.5
        flips[0], flips[-1] = True, False
        tops, lefts = torch.randint(0, 2 * pad + 1, (n,)), torch.randint(0, 2 * pad + 1, (n,))
        expected = torch.stack([TF.crop(TF.pad(TF.hflip(img) if f else img, [pad]), int(t), int(l), h, w)
                                for img, f, t, l in zip(images, flips, tops, lefts)])
        cases.append(case(f"{n} images {c}x{h}x{w}, padding {pad}", args=[images, pad, flips, tops, lefts],
                          expected=expected))
    return {"title": "crop_flip", "cases": cases, "forbidden": _FORBIDDEN}


def _cutout_one(img: Tensor, size: int, row: int, col: int) -> Tensor:
    out = img.clone()
    top, left = row - size // 2, col - size // 2
    out[:, max(top, 0):max(top + size, 0), max(left, 0):max(left + size, 0)] = 0.0
    return out


@item("ch12_augmentation/cutout")
def _() -> dict[str, Any]:
    cases = []
    for n, c, h, w, size in [(4, 3, 8, 8, 3), (3, 1, 10, 7, 4), (5, 2, 6, 6, 1), (2, 3, 5, 9, 6)]:
        images = f32(rand(n, c, h, w) + 0.1)  # no zeros of its own
        rows, cols = torch.randint(0, h, (n,)), torch.randint(0, w, (n,))
        rows[0], cols[0] = 0, w - 1  # a hole that sticks out of a corner
        expected = torch.stack([_cutout_one(img, size, int(r), int(col)) for img, r, col in zip(images, rows, cols)])
        cases.append(case(f"{n} images {c}x{h}x{w}, size {size}", args=[images, size, rows, cols], expected=expected))
    return {"title": "cutout", "cases": cases, "forbidden": _FORBIDDEN}


# gap_reduction = (train - test accuracy without augmentation) - (the same with flips and crops), 256 real
# Fashion-MNIST training images, 1,000 test images, 15 epochs of Adam (the notebook's train_and_evaluate).
# Measured with the reference solution while writing the exercise: see _GAP_MEASURED; the band's lower end
# sits well below it and above 0, so an augmentation that does nothing (gap_reduction ~ 0) fails.
_GAP_BAND = [0.05, 1.0]


@item("ch12_augmentation/gap_experiment")
def _() -> dict[str, Any]:
    return {"title": "gap_reduction (the experiment)", "band": _GAP_BAND, "forbidden": _FORBIDDEN,
            "cases": [case("gap reduction with flips and crops, 256 training images")]}
