"""Reference items of the ch04_nin_gap assignment (see ``autograder/make_references.py``).

PyTorch's convolution and adaptive pooling (float64) are the references for the forward passes, autograd
through ``conv2d`` for the 1x1 convolution's backward pass, the package's ``MLPConv`` for the block. Every
item has a ``_visible`` twin on other inputs, which the notebook's test cells check in front of the student
with the same messages.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import case, count_parameters, f32, f64, randn, registry, state

ITEMS, item = registry("ch04_nin_gap")

# What the student's cells may not use: PyTorch's convolutions and pooling where the exercise rebuilds them,
# autograd for the backward pass, and the package's blocks.
_CONVOLUTIONS = ["torch.nn.functional.conv2d", "torch.conv2d", "torch.convolution", "torch.nn.functional.conv1d",
                 "torch.nn.grad", "cnnbook.layers", "cnnbook.models"]
_POOLING = ["torch.nn.functional.adaptive_avg_pool2d", "torch.nn.AdaptiveAvgPool2d", "torch.nn.functional.avg_pool2d",
            "torch.nn.AvgPool2d", "cnnbook.layers", "cnnbook.models"]
_AUTOGRAD = ["torch.autograd", "torch.func"]
_PACKAGE = ["cnnbook.layers", "cnnbook.models", "cnnbook.calc"]


def _conv1x1_cases(configs: list[tuple[int, int, int, int, int]]) -> list[dict[str, Any]]:
    cases = []
    for n, c_in, c_out, h, w in configs:
        conv = f64(nn.Conv2d(c_in, c_out, 1))
        x = randn(n, c_in, h, w)
        cases.append(case(f"{c_in} -> {c_out} channels, input {(n, c_in, h, w)}",
                          args=[x, conv.weight.detach().clone(), conv.bias.detach().clone()], expected=conv(x)))
    return cases


@item("ch04_nin_gap/conv1x1_visible")
def _() -> dict[str, Any]:
    return {"title": "conv1x1 (visible)", "forbidden": _CONVOLUTIONS,
            "cases": _conv1x1_cases([(2, 1, 1, 4, 4), (2, 3, 5, 3, 4)])}


@item("ch04_nin_gap/conv1x1")
def _() -> dict[str, Any]:
    return {"title": "conv1x1", "forbidden": _CONVOLUTIONS,
            "cases": _conv1x1_cases([(2, 3, 8, 5, 5), (1, 1, 1, 4, 4), (3, 16, 4, 7, 6), (2, 8, 8, 1, 1)])}


def _backward_cases(configs: list[tuple[int, int, int, int, int]]) -> list[dict[str, Any]]:
    cases = []
    for n, c_in, c_out, h, w in configs:
        x, weight, bias = randn(n, c_in, h, w), randn(c_out, c_in, 1, 1), randn(c_out)
        with torch.enable_grad():
            xg, wg, bg = (t.clone().requires_grad_() for t in (x, weight, bias))
            out = nn.functional.conv2d(xg, wg, bg)
            dout = randn(*out.shape)
            dx, dweight, dbias = torch.autograd.grad(out, (xg, wg, bg), dout)
        cases.append(case(f"{c_in} -> {c_out} channels, input {(n, c_in, h, w)}", args=[dout, x, weight, bias],
                          expected=(dx, dweight, dbias), output_names=["dx", "dweight", "dbias"]))
    return cases


@item("ch04_nin_gap/conv1x1_backward_visible")
def _() -> dict[str, Any]:
    return {"title": "conv1x1_backward (visible)", "forbidden": _CONVOLUTIONS + _AUTOGRAD,
            "cases": _backward_cases([(2, 3, 2, 3, 3), (1, 2, 4, 2, 5)])}


@item("ch04_nin_gap/conv1x1_backward")
def _() -> dict[str, Any]:
    return {"title": "conv1x1_backward", "forbidden": _CONVOLUTIONS + _AUTOGRAD,
            "cases": _backward_cases([(2, 3, 8, 5, 5), (1, 1, 1, 4, 4), (3, 16, 4, 7, 6), (4, 8, 8, 1, 1),
                                      (2, 5, 3, 6, 2)])}


def _gap_cases(shapes: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    cases = []
    for shape in shapes:
        x = f32(randn(*shape) + 1.0)
        cases.append(case(f"input {shape}", args=[x],
                          expected=torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))
    return cases


@item("ch04_nin_gap/global_avg_pool_visible")
def _() -> dict[str, Any]:
    return {"title": "global_avg_pool (visible)", "forbidden": _POOLING, "cases": _gap_cases([(1, 2, 2, 2), (3, 4, 3, 5)])}


@item("ch04_nin_gap/global_avg_pool")
def _() -> dict[str, Any]:
    return {"title": "global_avg_pool", "forbidden": _POOLING,
            "cases": _gap_cases([(2, 3, 5, 5), (4, 64, 7, 7), (1, 2, 3, 8), (2, 5, 1, 1)])}


def _fc_cases(configs: list[tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    cases = []
    for c, h, w, k in configs:
        head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k))
        cases.append(case(f"channels={c}, height={h}, width={w}, num_classes={k}", args=[c, h, w, k],
                          expected=count_parameters(head)))
    return cases


@item("ch04_nin_gap/fc_head_parameters_visible")
def _() -> dict[str, Any]:
    return {"title": "fc_head_parameters (visible)", "forbidden": _PACKAGE, "cases": _fc_cases([(64, 7, 7, 10)])}


@item("ch04_nin_gap/fc_head_parameters")
def _() -> dict[str, Any]:
    return {"title": "fc_head_parameters", "forbidden": _PACKAGE,
            "cases": _fc_cases([(512, 7, 7, 1000), (256, 6, 6, 1000), (16, 5, 3, 2)])}


def _gap_head_cases(configs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    cases = []
    for c, k in configs:
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, k))
        cases.append(case(f"channels={c}, num_classes={k}", args=[c, k], expected=count_parameters(head)))
    return cases


@item("ch04_nin_gap/gap_head_parameters_visible")
def _() -> dict[str, Any]:
    return {"title": "gap_head_parameters (visible)", "forbidden": _PACKAGE, "cases": _gap_head_cases([(64, 10)])}


@item("ch04_nin_gap/gap_head_parameters")
def _() -> dict[str, Any]:
    return {"title": "gap_head_parameters", "forbidden": _PACKAGE,
            "cases": _gap_head_cases([(512, 1000), (2048, 1000), (3, 2)])}


def _mlpconv_cases(configs: list[tuple[int, int, int, int, int, int]]) -> list[dict[str, Any]]:
    from cnnbook.models.nin import MLPConv

    cases = []
    for c_in, c_out, k, s, p, hw in configs:
        block = f64(MLPConv(c_in, (c_out, c_out, c_out), k, stride=s, padding=p)).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"MLPConv({c_in}, {c_out}, kernel_size={k}, stride={s}, padding={p})",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "kernel_size": k,
                                       "stride": s, "padding": p},
                          state_dict=state(block, {"0": "conv", "2": "mlp1", "4": "mlp2"}),
                          steps=[{"mode": "eval", "args": [x], "expected": block(x)}]))
    return cases


@item("ch04_nin_gap/mlpconv_visible")
def _() -> dict[str, Any]:
    return {"title": "MLPConv (visible)", "forbidden": _PACKAGE, "cases": _mlpconv_cases([(2, 4, 3, 2, 1, 7)])}


@item("ch04_nin_gap/mlpconv")
def _() -> dict[str, Any]:
    return {"title": "MLPConv", "forbidden": _PACKAGE,
            "cases": _mlpconv_cases([(3, 16, 5, 2, 2, 16), (8, 8, 3, 1, 1, 9), (4, 6, 1, 1, 0, 5)])}
