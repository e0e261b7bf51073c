"""Reference items of the ch11_mobilenet assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

from ._common import case, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch11_mobilenet")


@item("ch11_mobilenet/separable_mult_adds")
def _() -> dict[str, Any]:
    from cnnbook.calc.costs import separable_conv_cost, standard_conv_cost

    cases = []
    for k, m, n, d in [(3, 3, 5, 4), (3, 512, 512, 14), (5, 32, 64, 7), (1, 8, 8, 2), (3, 1024, 1024, 7)]:
        cases.append(case(f"k={k}, m={m}, n={n}, d={d}", args=[k, m, n, d],
                          expected=(standard_conv_cost(k, m, n, d, d).mult_adds,
                                    separable_conv_cost(k, m, n, d, d).mult_adds),
                          output_names=["standard", "separable"]))
    return {"title": "separable_mult_adds", "cases": cases}


@item("ch11_mobilenet/separable_block")
def _() -> dict[str, Any]:
    from cnnbook.layers import DepthwiseSeparableConv

    cases = []
    for c_in, c_out, s, hw in [(8, 16, 2, 8), (6, 6, 1, 5), (4, 10, 2, 7)]:
        block = f64(DepthwiseSeparableConv(c_in, c_out, 3, s))
        randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"DepthwiseSeparableConv({c_in}, {c_out}, stride={s}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s},
                          state_dict=start, steps=steps))
    return {"title": "DepthwiseSeparableConv", "cases": cases}


@item("ch11_mobilenet/inverted_residual")
def _() -> dict[str, Any]:
    from cnnbook.layers import InvertedResidual

    cases = []
    for c_in, c_out, s, t, hw in [(8, 8, 1, 6, 6), (8, 12, 2, 6, 7), (6, 6, 1, 1, 5), (4, 4, 2, 3, 6)]:
        block = f64(InvertedResidual(c_in, c_out, s, t))
        randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw) * 2  # large enough for ReLU6 to clip
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"InvertedResidual({c_in}, {c_out}, stride={s}, expand_ratio={t}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s, "expand_ratio": t},
                          state_dict=start, steps=steps))
    return {"title": "InvertedResidual", "cases": cases}
