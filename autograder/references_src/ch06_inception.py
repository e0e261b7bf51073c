"""Reference items of the ch06_inception assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

from ._common import case, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch06_inception")


@item("ch06_inception/conv_mult_adds")
def _() -> dict[str, Any]:
    from cnnbook.calc.costs import conv_cost

    cases = []
    for k, c_in, c_out, h, w in [(3, 192, 256, 28, 28), (5, 192, 256, 28, 28), (1, 64, 32, 7, 9), (7, 3, 64, 112, 112)]:
        cases.append(case(f"kernel_size={k}, {c_in} -> {c_out} channels, output {h}x{w}", args=[k, c_in, c_out, h, w],
                          expected=conv_cost(k, c_in, c_out, h, w).mult_adds))
    return {"title": "conv_mult_adds", "cases": cases}


@item("ch06_inception/inception_mult_adds")
def _() -> dict[str, Any]:
    from cnnbook.calc.costs import inception_cost

    cases = []
    for c_in, h, w, ch in [(192, 28, 28, (64, 96, 128, 16, 32, 32)), (256, 28, 28, (128, 128, 192, 32, 96, 64)),
                           (832, 7, 7, (384, 192, 384, 48, 128, 128)), (10, 5, 6, (1, 2, 3, 4, 5, 6))]:
        c1, r3, c3, r5, c5, pp = ch
        branches = [[(1, c1)], [(1, r3), (3, c3)], [(1, r5), (5, c5)], ["pool", (1, pp)]]
        cases.append(case(f"in_channels={c_in}, {h}x{w}, channels {ch}", args=[c_in, h, w, *ch],
                          expected=inception_cost(c_in, h, w, branches).mult_adds))
    return {"title": "inception_mult_adds", "cases": cases}



@item("ch06_inception/inception_module")
def _() -> dict[str, Any]:
    from cnnbook.layers import InceptionModule

    cases = []
    for c_in, ch, hw in [(192, (64, 96, 128, 16, 32, 32), 8), (12, (4, 6, 8, 2, 4, 3), 7), (5, (1, 2, 3, 1, 2, 4), 3)]:
        block = f64(InceptionModule(c_in, *ch, branch3_kernel=5))
        randomise_bn(block)
        block.eval()
        x = randn(2, c_in, hw, hw)
        names = ["in_channels", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"]
        cases.append(case(f"Inception{(c_in, *ch)}, input {(2, c_in, hw, hw)}",
                          init_kwargs=dict(zip(names, (c_in, *ch))), state_dict=state(block),
                          steps=[{"mode": "eval", "args": [x], "expected": block(x)}]))
    return {"title": "Inception", "cases": cases}
