"""Reference items of the ch09_densenet_se assignment (see ``autograder/make_references.py``).

The dense block is the package's ``cnnbook.layers.DenseBlock``; the SE block's forward and backward passes are
referenced by the package's ``SqueezeExcite`` (its 1x1 convolutions are the exercise's fully connected layers)
and by autograd through it, in float64.
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import case, f32, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch09_densenet_se")


def _dense_cases(configs: list[tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    from cnnbook.layers import DenseBlock

    cases = []
    for n, c_in, k, hw in configs:
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
                          state_dict=start, optional_state=["num_batches_tracked"], steps=steps))
    return cases


@item("ch09_densenet_se/dense_block_visible")
def _() -> dict[str, Any]:
    return {"title": "DenseBlock (visible)", "forbidden": ["cnnbook.layers", "torchvision"],
            "cases": _dense_cases([(3, 2, 2, 4)])}


@item("ch09_densenet_se/dense_block")
def _() -> dict[str, Any]:
    return {"title": "DenseBlock", "forbidden": ["cnnbook.layers", "torchvision"],
            "cases": _dense_cases([(5, 3, 4, 6), (2, 8, 6, 5), (4, 4, 2, 4), (1, 5, 3, 3)])}


def _se_inputs(c: int, r: int, n: int, h: int, w: int) -> tuple[Any, list[torch.Tensor]]:
    from cnnbook.layers import SqueezeExcite

    se = f64(SqueezeExcite(c, r)).eval()
    for conv in (se.fc1, se.fc2):
        conv.weight.data.copy_(f32(conv.weight * 3.0))  # larger weights: the sigmoid leaves its linear region
        conv.bias.data.copy_(f32(randn(*conv.bias.shape) * 0.5))
    params = [se.fc1.weight[:, :, 0, 0], se.fc1.bias, se.fc2.weight[:, :, 0, 0], se.fc2.bias]
    return se, [randn(n, c, h, w)] + [p.detach().clone() for p in params]


_SE_CONFIGS = [(32, 8, 2, 5, 5), (16, 16, 3, 3, 4), (12, 4, 2, 7, 6), (6, 3, 1, 2, 2)]


@item("ch09_densenet_se/se_forward")
def _() -> dict[str, Any]:
    cases = []
    for c, r, n, h, w in _SE_CONFIGS:
        se, args = _se_inputs(c, r, n, h, w)
        cases.append(case(f"C={c}, r={r}, input {(n, c, h, w)}", args=args, expected=se(args[0])))
    return {"title": "se_forward", "cases": cases, "forbidden": ["cnnbook.layers"]}


@item("ch09_densenet_se/se_backward")
def _() -> dict[str, Any]:
    cases = []
    for c, r, n, h, w in _SE_CONFIGS:
        se, args = _se_inputs(c, r, n, h, w)
        with torch.enable_grad():
            u = args[0].clone().requires_grad_()
            out = se(u)
            dout = randn(*out.shape)
            grads = torch.autograd.grad(out, [u, se.fc1.weight, se.fc1.bias, se.fc2.weight, se.fc2.bias], dout)
        du, dw1, db1, dw2, db2 = grads
        cases.append(case(f"C={c}, r={r}, input {(n, c, h, w)}", args=[dout] + args,
                          expected=(du, dw1[:, :, 0, 0], db1, dw2[:, :, 0, 0], db2),
                          output_names=["du", "dw1", "db1", "dw2", "db2"]))
    return {"title": "se_backward", "cases": cases,
            "forbidden": ["torch.autograd", "torch.func", "cnnbook.layers"]}
