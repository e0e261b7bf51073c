"""Reference items of the ch11_mobilenet assignment (see ``autograder/make_references.py``).

The depthwise convolution's forward and backward passes are referenced by PyTorch's grouped convolution and
autograd (float64); the inverted residual by the package's ``cnnbook.layers.InvertedResidual``, whose
projection (a bare Conv2d and BatchNorm2d) the exercise asks to build as one ``conv_bn`` stage.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import case, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch11_mobilenet")

# What the student's cells may not use: the convolutions the exercise rebuilds, autograd for the backward
# pass, and the package's reference block.
_CONVOLUTIONS = ["torch.nn.functional.conv2d", "torch.conv2d", "torch.convolution", "torch.nn.Conv2d",
                 "torch.nn.functional.conv_transpose2d", "torch.nn.grad"]
_AUTOGRAD = ["torch.autograd", "torch.func"]


def _depthwise_cases() -> list[tuple[tuple[int, int, int, int], int, int, int]]:
    # (input shape, kernel size, stride, padding): overlapping windows (stride < K), gaps (stride > K), 5x5 kernels
    return [((2, 3, 7, 7), 3, 1, 1), ((4, 16, 15, 15), 3, 2, 1), ((1, 5, 9, 8), 5, 2, 2), ((3, 2, 6, 6), 2, 3, 0),
            ((2, 4, 5, 5), 3, 1, 0), ((1, 6, 11, 11), 3, 3, 1)]


@item("ch11_mobilenet/depthwise_conv2d")
def _() -> dict[str, Any]:
    cases = []
    for shape, k, s, p in _depthwise_cases():
        x, weight = randn(*shape), randn(shape[1], 1, k, k)
        out = nn.functional.conv2d(x, weight, stride=s, padding=p, groups=shape[1])
        cases.append(case(f"input {shape}, kernel {k}x{k}, stride={s}, padding={p}", args=[x, weight, s, p],
                          expected=out))
    return {"title": "depthwise_conv2d", "cases": cases, "forbidden": _CONVOLUTIONS}


@item("ch11_mobilenet/depthwise_conv2d_backward")
def _() -> dict[str, Any]:
    cases = []
    for shape, k, s, p in _depthwise_cases():
        x, weight = randn(*shape), randn(shape[1], 1, k, k)
        with torch.enable_grad():
            xg, wg = x.clone().requires_grad_(), weight.clone().requires_grad_()
            out = nn.functional.conv2d(xg, wg, stride=s, padding=p, groups=shape[1])
            dout = randn(*out.shape)
            dx, dweight = torch.autograd.grad(out, (xg, wg), dout)
        cases.append(case(f"input {shape}, kernel {k}x{k}, stride={s}, padding={p}", args=[dout, x, weight, s, p],
                          expected=(dx, dweight), output_names=["dx", "dweight"]))
    return {"title": "depthwise_conv2d_backward", "cases": cases, "forbidden": _CONVOLUTIONS + _AUTOGRAD}


def _inverted_residual_cases(configs: list[tuple[int, int, int, float, int]]) -> list[dict[str, Any]]:
    from cnnbook.layers import InvertedResidual

    cases = []
    for c_in, c_out, s, t, hw in configs:
        block = f64(InvertedResidual(c_in, c_out, s, t))
        randomise_bn(block)
        last = len(block.conv) - 2  # the projection: a bare Conv2d, then BatchNorm2d -> one conv_bn stage
        start = state(block, {f"conv.{last}": f"conv.{last}.0", f"conv.{last + 1}": f"conv.{last}.1"})
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw) * 2  # large enough for ReLU6 to clip
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"InvertedResidual({c_in}, {c_out}, stride={s}, expand_ratio={t}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s, "expand_ratio": t},
                          state_dict=start, optional_state=["num_batches_tracked"], steps=steps))
    return cases


@item("ch11_mobilenet/inverted_residual_visible")
def _() -> dict[str, Any]:
    return {"title": "InvertedResidual (visible)",
            "cases": _inverted_residual_cases([(4, 4, 1, 6, 5), (4, 6, 2, 1, 6)]),
            "forbidden": ["cnnbook.layers", "torchvision"]}


@item("ch11_mobilenet/inverted_residual")
def _() -> dict[str, Any]:
    return {"title": "InvertedResidual",
            "cases": _inverted_residual_cases([(8, 8, 1, 6, 6), (8, 12, 2, 6, 7), (6, 6, 1, 1, 5), (4, 4, 2, 3, 6),
                                               (5, 5, 1, 2.5, 4)]),
            "forbidden": ["cnnbook.layers", "torchvision"]}
