"""Reference items of the ch04_nin_gap assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import case, count_parameters, f32, f64, randn, registry, state

ITEMS, item = registry("ch04_nin_gap")


@item("ch04_nin_gap/conv1x1")
def _() -> dict[str, Any]:
    cases = []
    for n, c_in, c_out, h, w in [(2, 3, 8, 5, 5), (1, 1, 1, 4, 4), (3, 16, 4, 7, 6), (2, 8, 8, 1, 1)]:
        conv = f64(nn.Conv2d(c_in, c_out, 1))
        x = randn(n, c_in, h, w)
        cases.append(case(f"{c_in} -> {c_out} channels, input {(n, c_in, h, w)}",
                          args=[x, conv.weight.detach().clone(), conv.bias.detach().clone()], expected=conv(x)))
    return {"title": "conv1x1", "cases": cases}


@item("ch04_nin_gap/global_avg_pool")
def _() -> dict[str, Any]:
    cases = []
    for shape in [(2, 3, 5, 5), (4, 64, 7, 7), (1, 2, 3, 8), (2, 5, 1, 1)]:
        x = f32(randn(*shape) + 1.0)
        cases.append(case(f"input {shape}", args=[x],
                          expected=torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))
    return {"title": "global_avg_pool", "cases": cases}



@item("ch04_nin_gap/fc_head_parameters")
def _() -> dict[str, Any]:
    cases = []
    for c, h, w, k in [(64, 7, 7, 10), (512, 7, 7, 1000), (256, 6, 6, 1000), (16, 5, 3, 2)]:
        head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k))
        cases.append(case(f"channels={c}, height={h}, width={w}, num_classes={k}", args=[c, h, w, k],
                          expected=count_parameters(head)))
    return {"title": "fc_head_parameters", "cases": cases}


@item("ch04_nin_gap/gap_head_parameters")
def _() -> dict[str, Any]:
    cases = []
    for c, k in [(64, 10), (512, 1000), (2048, 1000), (3, 2)]:
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, k))
        cases.append(case(f"channels={c}, num_classes={k}", args=[c, k], expected=count_parameters(head)))
    return {"title": "gap_head_parameters", "cases": cases}


@item("ch04_nin_gap/mlpconv")
def _() -> dict[str, Any]:
    from cnnbook.models.nin import MLPConv

    cases = []
    for c_in, c_out, k, s, p, hw in [(3, 16, 5, 2, 2, 16), (8, 8, 3, 1, 1, 9), (4, 6, 1, 1, 0, 5)]:
        block = f64(MLPConv(c_in, (c_out, c_out, c_out), k, stride=s, padding=p)).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"MLPConv({c_in}, {c_out}, kernel_size={k}, stride={s}, padding={p})",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "kernel_size": k,
                                       "stride": s, "padding": p},
                          state_dict=state(block, {"0": "conv", "2": "mlp1", "4": "mlp2"}),
                          steps=[{"mode": "eval", "args": [x], "expected": block(x)}]))
    return {"title": "MLPConv", "cases": cases}
