"""Reference items of the ch05_vgg assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import case, count_parameters, f64, randn, registry, state

ITEMS, item = registry("ch05_vgg")


@item("ch05_vgg/receptive_field")
def _() -> dict[str, Any]:
    cases = []
    for layers, k in [(1, 3), (2, 3), (3, 3), (4, 3), (2, 5), (3, 1), (5, 7)]:
        x = torch.zeros(1, 1, 41, 41)
        x[0, 0, 20, 20] = 1.0  # which outputs does one input reach? as far as one output sees
        body = nn.Sequential(*[nn.Conv2d(1, 1, k, padding=k // 2, bias=False) for _ in range(layers)])
        for conv in body:
            nn.init.ones_(conv.weight)
        reached = (body(x)[0, 0] != 0).any(dim=0).sum()
        cases.append(case(f"num_layers={layers}, kernel_size={k}", args=[layers], kwargs={"kernel_size": k},
                          expected=int(reached)))
    return {"title": "receptive_field", "cases": cases}


@item("ch05_vgg/stack_vs_single")
def _() -> dict[str, Any]:
    cases = []
    for c, layers in [(1, 2), (64, 2), (256, 3), (512, 3), (8, 1)]:
        stack = nn.Sequential(*[nn.Conv2d(c, c, 3, bias=False) for _ in range(layers)])
        single = nn.Conv2d(c, c, 2 * layers + 1, bias=False)
        cases.append(case(f"channels={c}, num_layers={layers}", args=[c, layers],
                          expected=(count_parameters(stack), count_parameters(single))))
    return {"title": "stack_vs_single", "cases": cases}


@item("ch05_vgg/vgg_block")
def _() -> dict[str, Any]:
    from cnnbook.models.vgg import make_layers

    cases = []
    for n, c_in, c_out, hw in [(2, 3, 16, 16), (3, 8, 8, 10), (1, 4, 6, 9)]:
        block = f64(make_layers([c_out] * n + ["M"], in_channels=c_in)).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"vgg_block({n}, {c_in}, {c_out}), input {(2, c_in, hw, hw)}", args=[n, c_in, c_out],
                          measure="num_parameters", expected=count_parameters(block), probe=[x], probe_state=state(block),
                          expected_probe=block(x)))
    return {"title": "vgg_block", "cases": cases}


@item("ch05_vgg/vgg_features")
def _() -> dict[str, Any]:
    from cnnbook.models.vgg import cfgs, make_layers

    cases = []
    for label, cfg, c_in, hw in [("VGG-11 / 16 channels", cfgs["A"], 3, 32),
                                 ("a small table", [8, 8, "M", 16, "M", 16], 1, 12),
                                 ("a table ending without pooling", [4, "M", "M", 6, 6], 2, 8)]:
        if label.startswith("VGG"):
            cfg = [v if v == "M" else v // 16 for v in cfg]
        body = f64(make_layers(cfg, in_channels=c_in)).eval()
        x = randn(1, c_in, hw, hw)
        cases.append(case(f"{label}: {cfg}, in_channels={c_in}", args=[cfg], kwargs={"in_channels": c_in},
                          measure="num_parameters", expected=count_parameters(body), probe=[x], probe_state=state(body),
                          expected_probe=body(x)))
    return {"title": "vgg_features", "cases": cases}
