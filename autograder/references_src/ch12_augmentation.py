"""Reference items of the ch12_augmentation assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._common import case, rand, registry

ITEMS, item = registry("ch12_augmentation")


def _image(*shape: int) -> Tensor:
    return rand(*shape)


@item("ch12_augmentation/hflip")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = [case(f"input {shape}", args=[x], expected=TF.hflip(x))
             for shape in [(3, 5, 7), (1, 4, 4), (2, 3, 6, 5)] for x in [_image(*shape)]]
    return {"title": "hflip", "cases": cases}


@item("ch12_augmentation/hflip_where")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for n in (4, 5, 1):
        x = _image(n, 3, 6, 6)
        flip = torch.rand(n) < 0.5
        flip[0] = True
        expected = torch.stack([TF.hflip(img) if f else img for img, f in zip(x, flip)])
        cases.append(case(f"batch of {n}, flip={flip.tolist()}", args=[x, flip], expected=expected))
    return {"title": "hflip_where", "cases": cases}


@item("ch12_augmentation/pad_and_crop")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for shape, pad, top, left, size in [((3, 32, 32), 4, 0, 8, 32), ((3, 32, 32), 4, 7, 2, 32),
                                        ((1, 10, 12), 2, 3, 1, 8), ((2, 3, 8, 8), 1, 2, 0, 8)]:
        x = _image(*shape)
        expected = TF.crop(TF.pad(x, [pad]), top, left, size, size)
        cases.append(case(f"input {shape}, padding={pad}, top={top}, left={left}, size={size}",
                          args=[x, pad, top, left, size], expected=expected))
    return {"title": "pad_and_crop", "cases": cases}


@item("ch12_augmentation/adjust_brightness")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for shape, factor in [((3, 6, 6), 0.5), ((3, 6, 6), 1.7), ((2, 3, 4, 5), 1.2), ((3, 5, 5), 0.0)]:
        x = _image(*shape)
        cases.append(case(f"input {shape}, factor={factor}", args=[x, factor], expected=TF.adjust_brightness(x, factor)))
    return {"title": "adjust_brightness", "cases": cases}


@item("ch12_augmentation/adjust_contrast")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for shape, factor in [((3, 6, 6), 0.5), ((3, 6, 6), 1.8), ((2, 3, 4, 5), 0.3), ((3, 7, 5), 2.5)]:
        x = _image(*shape)
        cases.append(case(f"input {shape}, factor={factor}", args=[x, factor], expected=TF.adjust_contrast(x, factor)))
    return {"title": "adjust_contrast", "cases": cases}
