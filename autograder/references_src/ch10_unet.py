"""Reference items of the ch10_unet assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._common import case, f32, f64, rand, randn, registry, state

ITEMS, item = registry("ch10_unet")


@item("ch10_unet/center_crop")
def _() -> dict[str, Any]:
    from cnnbook.layers import center_crop

    cases = []
    for shape, h, w in [((1, 2, 6, 6), 2, 2), ((2, 3, 9, 8), 4, 5), ((1, 1, 7, 7), 7, 7), ((2, 4, 64, 64), 56, 56),
                        ((1, 2, 10, 5), 3, 2)]:
        x = randn(*shape)
        cases.append(case(f"input {shape} to {h}x{w}", args=[x, h, w], expected=center_crop(x, h, w).clone()))
    return {"title": "center_crop", "cases": cases}


def _up_stage_cases(configs: list[tuple[int, int, int, int, int]]) -> list[dict[str, Any]]:
    from cnnbook.layers import UNetUp

    cases = []
    for c_in, c_out, pad, hw, skip_hw in configs:
        stage = f64(UNetUp(c_in, c_out, padding=pad)).eval()
        x, skip = randn(2, c_in, hw, hw), randn(2, c_out, skip_hw, skip_hw)
        cases.append(case(f"UpStage({c_in}, {c_out}, padding={pad}), x {(2, c_in, hw, hw)}, skip "
                          f"{(2, c_out, skip_hw, skip_hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "padding": pad},
                          state_dict=state(stage), steps=[{"mode": "eval", "args": [x, skip], "expected": stage(x, skip)}]))
    return cases


@item("ch10_unet/up_stage_visible")
def _() -> dict[str, Any]:
    return {"title": "UpStage (visible)", "forbidden": ["cnnbook.layers"],
            "cases": _up_stage_cases([(8, 4, 1, 3, 6), (8, 4, 0, 4, 12)])}


@item("ch10_unet/up_stage")
def _() -> dict[str, Any]:
    return {"title": "UpStage", "forbidden": ["cnnbook.layers"],
            "cases": _up_stage_cases([(16, 8, 1, 4, 8), (16, 8, 0, 5, 14), (12, 4, 1, 3, 6), (6, 5, 0, 4, 13)])}


def _weighted_pixel_loss(logits: Tensor, masks: Tensor, weight_map: Tensor) -> Tensor:
    """The U-Net paper's weighted pixel-wise cross-entropy, as a weighted mean (weights sum to the divisor)."""
    terms = nn.functional.cross_entropy(logits, masks, reduction="none")  # N x H x W
    return (weight_map * terms).sum() / weight_map.sum()


_LOSS_BANS = ["torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss", "torch.nn.functional.nll_loss",
              "torch.nn.NLLLoss"]


@item("ch10_unet/weighted_pixel_loss")
def _() -> dict[str, Any]:
    cases = []
    for n, k, h, w, scale in [(2, 3, 5, 6, 1.0), (1, 2, 8, 8, 5.0), (3, 5, 4, 4, 60.0), (2, 4, 7, 3, 0.1)]:
        logits = f32(randn(n, k, h, w) * scale)
        masks = torch.randint(0, k, (n, h, w))
        weight_map = f32(rand(n, h, w) * 5)
        weight_map[0, 0, :2] = 0.0  # pixels that do not count
        cases.append(case(f"logits {(n, k, h, w)} x {scale}, {k} classes", args=[logits, masks, weight_map],
                          expected=_weighted_pixel_loss(logits, masks, weight_map)))
    return {"title": "weighted_pixel_loss", "cases": cases, "forbidden": _LOSS_BANS}


def _segmentation_case(c_in: int, k: int, n: int, hw: int, lr: float, steps: int) -> dict[str, Any]:
    model = f64(nn.Conv2d(c_in, k, 3, padding=1))
    spec = {"__module__": "torch.nn:Conv2d", "kwargs": {"in_channels": c_in, "out_channels": k, "kernel_size": 3,
                                                       "padding": 1}, "state_dict": state(model)}
    images, masks, weight_map = randn(n, c_in, hw, hw), torch.randint(0, k, (n, hw, hw)), f32(rand(n, hw, hw) * 3 + 0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            loss = _weighted_pixel_loss(model(images), masks, weight_map)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    expected = {"losses": torch.tensor(losses, dtype=torch.float64),
                "weights": {name: p.detach().clone() for name, p in model.named_parameters()}}
    return case(f"Conv2d({c_in}, {k}, 3) per-pixel classifier, {n} images {hw}x{hw}, lr={lr}, {steps} steps",
                args=[spec, images, masks, weight_map, lr, steps], expected=expected)


@item("ch10_unet/segmentation_step_visible")
def _() -> dict[str, Any]:
    return {"title": "segmentation_step (visible)", "cases": [_segmentation_case(3, 2, 2, 6, 0.5, 3)]}


@item("ch10_unet/segmentation_step")
def _() -> dict[str, Any]:
    return {"title": "segmentation_step",
            "cases": [_segmentation_case(1, 3, 3, 8, 0.3, 3), _segmentation_case(4, 5, 2, 5, 1.0, 2)]}
