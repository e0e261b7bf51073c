"""Reference items of the ch09_densenet_se assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

from ._common import case, f32, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch09_densenet_se")


@item("ch09_densenet_se/dense_block_channels")
def _() -> dict[str, Any]:
    from cnnbook.layers import DenseBlock, dense_block_channels

    cases = []
    for c_in, n, k in [(3, 5, 4), (64, 6, 32), (128, 12, 32), (16, 1, 8)]:
        assert DenseBlock(n, c_in, k).out_channels == dense_block_channels(c_in, n, k)
        cases.append(case(f"in_channels={c_in}, num_layers={n}, growth_rate={k}", args=[c_in, n, k],
                          expected=dense_block_channels(c_in, n, k)))
    return {"title": "dense_block_channels", "cases": cases}


@item("ch09_densenet_se/dense_connections")
def _() -> dict[str, Any]:
    from cnnbook.layers import dense_connections

    return {"title": "dense_connections",
            "cases": [case(f"num_layers={n}", args=[n], expected=dense_connections(n)) for n in (1, 5, 6, 24)]}


@item("ch09_densenet_se/dense_block")
def _() -> dict[str, Any]:
    from cnnbook.layers import DenseBlock

    cases = []
    for n, c_in, k, hw in [(5, 3, 4, 6), (2, 8, 6, 5), (3, 4, 2, 4)]:
        block = f64(DenseBlock(n, c_in, k))
        randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"DenseBlock({n}, {c_in}, {k}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"num_layers": n, "in_channels": c_in, "growth_rate": k},
                          state_dict=start, steps=steps))
    return {"title": "DenseBlock", "cases": cases}


@item("ch09_densenet_se/squeeze_excite")
def _() -> dict[str, Any]:
    from cnnbook.layers import SqueezeExcite

    cases = []
    for c, r, hw in [(32, 8, 5), (16, 16, 3), (12, 4, 7)]:
        se = f64(SqueezeExcite(c, r)).eval()
        for conv in (se.fc1, se.fc2):
            conv.weight.data.copy_(f32(conv.weight * 3.0))  # larger weights: the sigmoid leaves its linear region
        x = randn(2, c, hw, hw)
        cases.append(case(f"SqueezeExcite({c}, reduction={r}), input {(2, c, hw, hw)}",
                          init_kwargs={"channels": c, "reduction": r}, state_dict=state(se),
                          steps=[{"mode": "eval", "args": [x], "expected": se(x)}]))
    return {"title": "SqueezeExcite", "cases": cases}
