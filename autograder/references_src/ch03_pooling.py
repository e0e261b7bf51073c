"""Reference items of the ch03_pooling assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import case, f32, randn, registry

ITEMS, item = registry("ch03_pooling")


LECTURE_SIGNAL = [0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0]


@item("ch03_pooling/max_pool1d")
def _() -> dict[str, Any]:
    from cnnbook.calc import pooling

    signal = torch.tensor(LECTURE_SIGNAL, dtype=torch.float64)
    inputs = [("the lecture's signal", signal, 3, 2, True), ("the lecture's signal", signal, 2, 2, False)]
    for n, z, s, ceil in [(15, 3, 2, False), (15, 3, 2, True), (10, 4, 3, True), (9, 2, 3, False),
                          (8, 8, 1, False), (12, 5, 2, True), (20, 3, 1, False)]:
        inputs.append((f"{n} random values", f32(randn(n) - 1.0), z, s, ceil))  # mostly negative
    cases = []
    for label, x, z, s, ceil in inputs:
        y = nn.functional.max_pool1d(x[None, None], z, s, ceil_mode=ceil)[0, 0]
        if label.startswith("the lecture"):  # the package's calculator agrees with torch
            assert pooling.pool1d(x.tolist(), z, s, ceil_mode=ceil) == y.tolist()
        cases.append(case(f"{label}, kernel_size={z}, stride={s}, ceil_mode={ceil}",
                          args=[x, z, s], kwargs={"ceil_mode": ceil}, expected=y))
    return {"title": "max_pool1d", "cases": cases}


@item("ch03_pooling/pool2d")
def _() -> dict[str, Any]:
    cases = []
    for shape, z, s in [((2, 3, 13, 13), 3, 2), ((1, 4, 8, 8), 2, 2), ((2, 2, 7, 9), 3, 3),
                        ((1, 2, 6, 6), 1, 2), ((1, 3, 11, 10), 4, 1)]:
        x = randn(*shape)
        for mode in ("max", "avg"):
            pool = nn.functional.max_pool2d if mode == "max" else nn.functional.avg_pool2d
            cases.append(case(f"input {shape}, kernel_size={z}, stride={s}, mode={mode!r}",
                              args=[x, z, s], kwargs={"mode": mode}, expected=pool(x, z, s)))
    return {"title": "pool2d", "cases": cases}


@item("ch03_pooling/coverage")
def _() -> dict[str, Any]:
    from cnnbook.calc import pooling

    cases = []
    for n, z, s in [(14, 3, 2), (14, 2, 2), (10, 3, 3), (9, 2, 3), (8, 4, 1), (5, 5, 2), (13, 3, 2)]:
        counts = [0] * n
        for start in range(0, n - z + 1, s):
            for i in range(start, start + z):
                counts[i] += 1
        assert pooling.coverage(n, z, s, ceil_mode=False) == counts
        cases.append(case(f"length={n}, kernel_size={z}, stride={s}", args=[n, z, s], expected=counts))
    return {"title": "coverage", "cases": cases}
