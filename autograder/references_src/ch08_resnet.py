"""Reference items of the ch08_resnet assignment (see ``autograder/make_references.py``).

The blocks are the package's ``cnnbook.layers.BasicBlock`` (residual, with He et al.'s projection option B, or
plain with ``shortcut=False``); the gradient spread is measured on the package's CIFAR ResNet-20 and its plain
twin; the experiment's band comes from the measurement described in ``_SPREAD_BAND``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import cnnbook

from ._common import case, count_parameters, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch08_resnet")

_FORBIDDEN = ["cnnbook.layers", "cnnbook.models", "torchvision"]


def _basic_block(c_in: int, c_out: int, stride: int, shortcut: bool = True) -> nn.Module:
    from cnnbook.layers import BasicBlock

    project = shortcut and (stride != 1 or c_in != c_out)
    downsample = BasicBlock.projection(c_in, c_out, stride, nn.BatchNorm2d) if project else None
    block = f64(BasicBlock(c_in, c_out, stride, downsample, shortcut=shortcut))
    randomise_bn(block)
    return block


def _block_cases(configs: list[tuple[int, int, int, bool, int]]) -> list[dict[str, Any]]:
    cases = []
    for c_in, c_out, s, shortcut, hw in configs:
        block = _basic_block(c_in, c_out, s, shortcut)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(3, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"ResidualBlock({c_in}, {c_out}, stride={s}, shortcut={shortcut}), input {(3, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s, "shortcut": shortcut},
                          state_dict=start, optional_state=["num_batches_tracked"], steps=steps))
    return cases


@item("ch08_resnet/residual_block_visible")
def _() -> dict[str, Any]:
    return {"title": "ResidualBlock (visible)", "forbidden": _FORBIDDEN,
            "cases": _block_cases([(4, 4, 1, True, 5), (4, 6, 2, True, 6), (4, 6, 2, False, 6)])}


@item("ch08_resnet/residual_block")
def _() -> dict[str, Any]:
    return {"title": "ResidualBlock", "forbidden": _FORBIDDEN,
            "cases": _block_cases([(8, 8, 1, True, 6), (8, 16, 2, True, 7), (6, 6, 2, True, 8), (4, 10, 1, True, 5),
                                   (6, 6, 1, False, 5), (4, 8, 2, False, 7)])}


@item("ch08_resnet/make_stage")
def _() -> dict[str, Any]:
    cases = []
    for c_in, c_out, n, s, shortcut, hw in [(8, 16, 3, 2, True, 9), (6, 6, 2, 1, True, 5), (4, 8, 1, 2, True, 6),
                                            (4, 8, 2, 2, False, 6)]:
        blocks = [_basic_block(c_in, c_out, s, shortcut)]
        blocks += [_basic_block(c_out, c_out, 1, shortcut) for _ in range(n - 1)]
        stage = nn.Sequential(*blocks).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"make_stage({c_in}, {c_out}, {n}, {s}, shortcut={shortcut}), input {(2, c_in, hw, hw)}",
                          args=[c_in, c_out, n, s], kwargs={"shortcut": shortcut}, measure="num_parameters",
                          expected=count_parameters(stage), probe=[x], probe_state=state(stage),
                          optional_state=["num_batches_tracked"], expected_probe=stage(x)))
    return {"title": "make_stage", "cases": cases}


def _spread(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    model.train()
    model.zero_grad()
    with torch.enable_grad():
        nn.functional.cross_entropy(model(images), labels).backward()
    convs = [m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in name]
    return (convs[0].weight.grad.norm() / convs[-1].weight.grad.norm()).detach()


@item("ch08_resnet/gradient_spread")
def _() -> dict[str, Any]:
    cases = []
    for name, batch in (("plain_resnet20_cifar", 6), ("resnet20_cifar", 5)):
        model = f64(cnnbook.get_model(name))
        randomise_bn(model)
        spec = {"__module__": f"cnnbook:{name}", "state_dict": state(model)}
        images, labels = randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
        cases.append(case(f"{name}, batch of {batch}", args=[spec, images, labels],
                          expected=_spread(model, images, labels)))
    return {"title": "gradient_spread", "cases": cases}


# log10(spread of the plain network / spread of the residual one) at 24 blocks of 16 channels, on 64 real
# Fashion-MNIST images at 16x16: 2.67, 2.64 and 1.50 for seeds 0, 1, 2 of the reference solution (measured
# while writing the exercise); a block built in another order draws other initial weights, hence the wide band.
# A residual block without its addition gives about 0, and so fails.
_SPREAD_BAND = [1.0, 6.0]


@item("ch08_resnet/spread_experiment")
def _() -> dict[str, Any]:
    return {"title": "log_ratio (the experiment)", "band": _SPREAD_BAND, "forbidden": ["cnnbook.models"],
            "cases": [case("log10(plain / residual spread) at 24 blocks")]}
