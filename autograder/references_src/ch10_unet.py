"""Reference items of the ch10_unet assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch

from ._common import case, f64, randn, registry, state

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


@item("ch10_unet/skip_concat")
def _() -> dict[str, Any]:
    from cnnbook.layers import center_crop

    cases = []
    for skip_shape, x_shape in [((1, 8, 12, 12), (1, 8, 8, 8)), ((2, 3, 9, 9), (2, 5, 9, 9)),
                                ((2, 4, 11, 10), (2, 2, 6, 7))]:
        skip, x = randn(*skip_shape), randn(*x_shape)
        joined = torch.cat([center_crop(skip, x.shape[-2], x.shape[-1]), x], 1)
        cases.append(case(f"skip {skip_shape}, x {x_shape}", args=[skip, x], expected=joined))
    return {"title": "skip_concat", "cases": cases}


@item("ch10_unet/up_stage")
def _() -> dict[str, Any]:
    from cnnbook.layers import UNetUp

    cases = []
    for c_in, c_out, pad, hw, skip_hw in [(16, 8, 1, 4, 8), (16, 8, 0, 5, 14), (12, 4, 1, 3, 6)]:
        stage = f64(UNetUp(c_in, c_out, padding=pad)).eval()
        x, skip = randn(2, c_in, hw, hw), randn(2, c_out, skip_hw, skip_hw)
        cases.append(case(f"UpStage({c_in}, {c_out}, padding={pad}), x {(2, c_in, hw, hw)}, skip "
                          f"{(2, c_out, skip_hw, skip_hw)}", init_kwargs={"in_channels": c_in, "out_channels": c_out,
                                                                         "padding": pad},
                          state_dict=state(stage), steps=[{"mode": "eval", "args": [x, skip], "expected": stage(x, skip)}]))
    return {"title": "UpStage", "cases": cases}
