"""Reference items of the ch03_pooling assignment (see ``autograder/make_references.py``).

PyTorch's pooling (float64) is the reference for the forward passes, and autograd through ``max_pool2d``
for the backward pass. Every item has a ``_visible`` twin on other inputs, which the notebook's test cells
check in front of the student with the same messages.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._common import case, f32, randn, registry

ITEMS, item = registry("ch03_pooling")

# What the student's cells may not use: PyTorch's pooling in any form, the package's pooling calculators,
# and autograd for the backward pass.
_POOLING = ["torch.nn.functional.max_pool1d", "torch.nn.functional.max_pool2d", "torch.nn.functional.avg_pool1d",
            "torch.nn.functional.avg_pool2d", "torch.nn.functional.max_pool1d_with_indices",
            "torch.nn.functional.max_pool2d_with_indices", "torch.nn.functional.adaptive_max_pool1d",
            "torch.nn.functional.adaptive_max_pool2d", "torch.nn.functional.adaptive_avg_pool2d",
            "torch.nn.functional.max_unpool2d", "torch.max_pool1d", "torch.max_pool2d", "torch.avg_pool1d",
            "torch.nn.modules.pooling", "torch.nn.MaxPool1d", "torch.nn.MaxPool2d", "torch.nn.AvgPool2d",
            "cnnbook.calc"]
_AUTOGRAD = ["torch.autograd", "torch.func"]
LECTURE_SIGNAL = [0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0]


def _max_pool1d_cases(inputs: list[tuple[str, Tensor, int, int, bool]]) -> list[dict[str, Any]]:
    cases = []
    for label, x, z, s, ceil in inputs:
        y = nn.functional.max_pool1d(x[None, None], z, s, ceil_mode=ceil)[0, 0]
        cases.append(case(f"{label}, kernel_size={z}, stride={s}, ceil_mode={ceil}",
                          args=[x, z, s], kwargs={"ceil_mode": ceil}, expected=y))
    return cases


@item("ch03_pooling/max_pool1d_visible")
def _() -> dict[str, Any]:
    from cnnbook.calc import pooling

    signal = torch.tensor(LECTURE_SIGNAL, dtype=torch.float64)
    inputs = [("the lecture's signal", signal, 3, 2, True), ("the lecture's signal", signal, 2, 2, False),
              ("the lecture's signal", signal, 3, 2, False), ("10 random values", f32(randn(10) - 1.0), 4, 3, True)]
    for label, x, z, s, ceil in inputs[:3]:  # the package's calculator agrees with torch
        assert pooling.pool1d(x.tolist(), z, s, ceil_mode=ceil) == \
            nn.functional.max_pool1d(x[None, None], z, s, ceil_mode=ceil)[0, 0].tolist()
    return {"title": "max_pool1d (visible)", "cases": _max_pool1d_cases(inputs), "forbidden": _POOLING}


@item("ch03_pooling/max_pool1d")
def _() -> dict[str, Any]:
    inputs = [(f"{n} random values", f32(randn(n) - 1.0), z, s, ceil)  # mostly negative
              for n, z, s, ceil in [(15, 3, 2, False), (15, 3, 2, True), (9, 2, 3, False), (8, 8, 1, False),
                                    (12, 5, 2, True), (20, 3, 1, False), (11, 3, 3, True)]]
    return {"title": "max_pool1d", "cases": _max_pool1d_cases(inputs), "forbidden": _POOLING}


def _pool2d_cases(configs: list[tuple[tuple[int, ...], int, int]]) -> list[dict[str, Any]]:
    cases = []
    for shape, z, s in configs:
        x = randn(*shape)
        for mode in ("max", "avg"):
            pool = nn.functional.max_pool2d if mode == "max" else nn.functional.avg_pool2d
            cases.append(case(f"input {shape}, kernel_size={z}, stride={s}, mode={mode!r}",
                              args=[x, z, s], kwargs={"mode": mode}, expected=pool(x, z, s)))
    return cases


@item("ch03_pooling/pool2d_visible")
def _() -> dict[str, Any]:
    return {"title": "pool2d (visible)", "cases": _pool2d_cases([((1, 2, 5, 5), 3, 2), ((2, 1, 4, 6), 2, 2)]),
            "forbidden": _POOLING}


@item("ch03_pooling/pool2d")
def _() -> dict[str, Any]:
    return {"title": "pool2d", "forbidden": _POOLING,
            "cases": _pool2d_cases([((2, 3, 13, 13), 3, 2), ((1, 4, 8, 8), 2, 2), ((2, 2, 7, 9), 3, 3),
                                    ((1, 2, 6, 6), 1, 2), ((1, 3, 11, 10), 4, 1)])}


def _backward_cases(configs: list[tuple[tuple[int, ...], int, int]]) -> list[dict[str, Any]]:
    cases = []
    for shape, z, s in configs:
        x = randn(*shape)  # continuous values: no ties inside a window
        with torch.enable_grad():
            xg = x.clone().requires_grad_()
            out = nn.functional.max_pool2d(xg, z, s)
            dout = randn(*out.shape)
            (dx,) = torch.autograd.grad(out, (xg,), dout)
        cases.append(case(f"input {shape}, kernel_size={z}, stride={s}", args=[dout, x, z, s], expected=dx))
    return cases


@item("ch03_pooling/max_pool2d_backward_visible")
def _() -> dict[str, Any]:
    return {"title": "max_pool2d_backward (visible)", "forbidden": _POOLING + _AUTOGRAD,
            "cases": _backward_cases([((1, 1, 5, 5), 3, 2), ((2, 2, 4, 4), 2, 2)])}


@item("ch03_pooling/max_pool2d_backward")
def _() -> dict[str, Any]:
    return {"title": "max_pool2d_backward", "forbidden": _POOLING + _AUTOGRAD,
            "cases": _backward_cases([((2, 3, 13, 13), 3, 2), ((1, 4, 8, 8), 2, 2), ((2, 2, 7, 9), 3, 1),
                                      ((1, 2, 10, 10), 2, 3), ((3, 2, 9, 11), 4, 2)])}


def _coverage_cases(configs: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    from cnnbook.calc import pooling

    cases = []
    for n, z, s in configs:
        ones = torch.ones(1, 1, n, dtype=torch.float64, requires_grad=True)
        with torch.enable_grad():  # how many windows take each input: the gradient of an average pool's sum * z
            (grad,) = torch.autograd.grad(nn.functional.avg_pool1d(ones, z, s).sum() * z, (ones,))
        counts = [int(round(v)) for v in grad[0, 0].tolist()]
        assert pooling.coverage(n, z, s, ceil_mode=False) == counts
        cases.append(case(f"length={n}, kernel_size={z}, stride={s}", args=[n, z, s], expected=counts))
    return cases


@item("ch03_pooling/coverage_visible")
def _() -> dict[str, Any]:
    return {"title": "coverage (visible)", "cases": _coverage_cases([(6, 2, 2), (7, 3, 2)]), "forbidden": _POOLING}


@item("ch03_pooling/coverage")
def _() -> dict[str, Any]:
    return {"title": "coverage", "forbidden": _POOLING,
            "cases": _coverage_cases([(14, 3, 2), (14, 2, 2), (10, 3, 3), (9, 2, 3), (8, 4, 1), (5, 5, 2), (13, 3, 2)])}
