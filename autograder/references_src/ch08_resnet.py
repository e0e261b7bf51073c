"""Reference items of the ch08_resnet assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ._common import case, count_parameters, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch08_resnet")


@item("ch08_resnet/needs_projection")
def _() -> dict[str, Any]:
    from cnnbook.layers import BasicBlock

    cases = []
    for c_in, c_out, s in [(64, 64, 1), (64, 128, 2), (64, 64, 2), (32, 64, 1), (128, 128, 1), (3, 3, 3)]:
        try:  # the package's block refuses an identity shortcut exactly when the shapes differ
            BasicBlock(c_in, c_out, s)
            needed = False
        except ValueError:
            needed = True
        cases.append(case(f"in_channels={c_in}, out_channels={c_out}, stride={s}", args=[c_in, c_out, s],
                          expected=needed))
    return {"title": "needs_projection", "cases": cases}


def _basic_block(c_in: int, c_out: int, stride: int) -> nn.Module:
    from cnnbook.layers import BasicBlock

    project = stride != 1 or c_in != c_out
    downsample = BasicBlock.projection(c_in, c_out, stride, nn.BatchNorm2d) if project else None
    block = f64(BasicBlock(c_in, c_out, stride, downsample))
    randomise_bn(block)
    return block


@item("ch08_resnet/residual_block")
def _() -> dict[str, Any]:
    cases = []
    for c_in, c_out, s, hw in [(8, 8, 1, 6), (8, 16, 2, 7), (6, 6, 2, 8), (4, 10, 1, 5)]:
        block = _basic_block(c_in, c_out, s)
        start = {k: v for k, v in state(block).items()}
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(3, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"ResidualBlock({c_in}, {c_out}, stride={s}), input {(3, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s},
                          state_dict=start, steps=steps))
    return {"title": "ResidualBlock", "cases": cases}


@item("ch08_resnet/make_stage")
def _() -> dict[str, Any]:
    cases = []
    for c_in, c_out, n, s, hw in [(8, 16, 3, 2, 9), (6, 6, 2, 1, 5), (4, 8, 1, 2, 6)]:
        blocks = [_basic_block(c_in, c_out, s)] + [_basic_block(c_out, c_out, 1) for _ in range(n - 1)]
        stage = nn.Sequential(*blocks).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"make_stage({c_in}, {c_out}, {n}, {s}), input {(2, c_in, hw, hw)}", args=[c_in, c_out, n, s],
                          measure="num_parameters", expected=count_parameters(stage), probe=[x], probe_state=state(stage),
                          expected_probe=stage(x)))
    return {"title": "make_stage", "cases": cases}
