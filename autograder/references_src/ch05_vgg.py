"""Reference items of the ch05_vgg assignment (see ``autograder/make_references.py``).

The receptive field comes from the package's recurrence (``cnnbook.calc.receptive_field``), checked here
against what a stack of all-ones layers actually reaches; the parameter count from the modules themselves
(and the package's VGG-16 for the paper's case); the body from the package's ``make_layers``; the update
rule from ``torch.optim.SGD``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._common import case, count_parameters, f32, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch05_vgg")

_FORBIDDEN = ["cnnbook.models", "cnnbook.layers", "cnnbook.calc", "torchvision"]


def _reached(layers: list[tuple[int, int]]) -> int:
    """Side of the input region one output unit depends on, measured with all-ones weights and a gradient."""
    side = 160
    with torch.enable_grad():
        return _reached_grad(layers, side)


def _reached_grad(layers: list[tuple[int, int]], side: int) -> int:
    x = torch.zeros(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    y = x
    for k, s in layers:
        conv = nn.Conv2d(1, 1, k, stride=s, bias=False).double()
        nn.init.ones_(conv.weight)
        y = conv(y)
    y[0, 0, 0, 0].backward()
    rows = (x.grad[0, 0] != 0).any(dim=1).nonzero()
    return int(rows.max() - rows.min() + 1) if len(layers) else 1


@item("ch05_vgg/receptive_field")
def _() -> dict[str, Any]:
    from cnnbook.calc.receptive_field import stack_receptive_field

    stacks = [
        [],
        [(3, 1)] * 4,
        [(5, 1), (5, 1)],
        [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (3, 1), (2, 2)],
        [(11, 4), (3, 2), (5, 1), (3, 2)],
        [(7, 2), (3, 2), (1, 1), (3, 1)],
        [(2, 2), (2, 2), (3, 1)],
        [(1, 1), (1, 1)],
    ]
    cases = []
    for layers in stacks:
        expected = int(stack_receptive_field([(k, s, 0) for k, s in layers])[-1][0]) if layers else 1
        assert expected == _reached(layers), (layers, expected)
        cases.append(case(f"layers={layers}", args=[[list(layer) for layer in layers]], expected=expected))
    return {"title": "receptive_field", "cases": cases, "forbidden": _FORBIDDEN}


def _vgg(cfg: list, in_channels: int, image_size: int, num_classes: int, hidden: int) -> nn.Module:
    from cnnbook.models.vgg import make_layers

    body = make_layers(cfg, in_channels=in_channels)
    side = image_size
    for v in cfg:
        side = side // 2 if v == "M" else side
    channels = [v for v in cfg if v != "M"][-1]
    head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU(), nn.Dropout(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, num_classes))
    return nn.Sequential(body, head)


@item("ch05_vgg/vgg_parameters")
def _() -> dict[str, Any]:
    import cnnbook
    from cnnbook.models.vgg import cfgs

    specs = [
        ("VGG-19, 224 x 224, 1000 classes", cfgs["E"], 3, 224, 1000, 4096),
        ("VGG-13 for CIFAR: 32 x 32, 10 classes, hidden 512", cfgs["B"], 3, 32, 10, 512),
        ("a small table on grey 28 x 28 images (floors: 28 -> 14 -> 7 -> 3)", [8, "M", 16, "M", 32, "M"], 1, 28, 10, 64),
        ("VGG-16 on 100 x 100 (100 -> 50 -> 25 -> 12 -> 6 -> 3)", cfgs["D"], 3, 100, 200, 1024),
    ]
    cases = []
    for label, cfg, c_in, size, classes, hidden in specs:
        expected = count_parameters(_vgg(cfg, c_in, size, classes, hidden))
        cases.append(case(label, args=[list(cfg)], kwargs={"in_channels": c_in, "image_size": size,
                                                           "num_classes": classes, "hidden": hidden},
                          expected=expected))
    assert count_parameters(cnnbook.get_model("vgg16")) == count_parameters(_vgg(cfgs["D"], 3, 224, 1000, 4096))
    return {"title": "vgg_parameters", "cases": cases, "forbidden": _FORBIDDEN}


@item("ch05_vgg/vgg_features")
def _() -> dict[str, Any]:
    from cnnbook.models.vgg import cfgs

    quarter = [v if v == "M" else v // 16 for v in cfgs["A"]]
    return {"title": "vgg_features", "forbidden": _FORBIDDEN, "cases": _features_cases([
        ("VGG-11 at 1/16 width", quarter, 3, False, 32),
        ("VGG-11 at 1/16 width, with batch norm", quarter, 3, True, 32),
        ("a small table, batch norm", [8, 8, "M", 16, "M", 16], 1, True, 12),
        ("a table ending without pooling", [4, "M", "M", 6, 6], 2, False, 8)])}


@item("ch05_vgg/vgg_features_visible")
def _() -> dict[str, Any]:
    return {"title": "vgg_features (visible)", "forbidden": _FORBIDDEN,
            "cases": _features_cases([("a public table with batch norm", [4, "M", 6], 1, True, 8)])}


def _features_cases(specs: list[tuple[str, list, int, bool, int]]) -> list[dict[str, Any]]:
    from cnnbook.models.vgg import make_layers

    cases = []
    for label, cfg, c_in, bn, hw in specs:
        body = f64(make_layers(cfg, batch_norm=bn, in_channels=c_in)).eval()
        randomise_bn(body)
        x = randn(2, c_in, hw, hw)
        with torch.no_grad():
            y = body(x)
        cases.append(case(f"{label}: {cfg}, in_channels={c_in}, batch_norm={bn}", args=[cfg],
                          kwargs={"in_channels": c_in, "batch_norm": bn}, measure="num_parameters",
                          expected=count_parameters(body), probe=[x], probe_state=state(body), expected_probe=y))
    return cases


def _torch_sgd(weight: Tensor, grad: Tensor, velocity: Tensor, lr: float, momentum: float,
               weight_decay: float) -> tuple[Tensor, Tensor]:
    w = weight.clone().requires_grad_(True)
    optimiser = torch.optim.SGD([w], lr=lr, momentum=momentum, weight_decay=weight_decay)
    w.grad = grad.clone()
    if momentum:
        optimiser.state[w]["momentum_buffer"] = velocity.clone()
    optimiser.step()
    new_velocity = optimiser.state[w]["momentum_buffer"] if momentum else grad + weight_decay * weight
    return w.detach().clone(), new_velocity.detach().clone()


@item("ch05_vgg/sgd_update")
def _() -> dict[str, Any]:
    cases = []
    for shape, lr, momentum, wd, zero_velocity in [((5, 4), 0.01, 0.9, 5e-4, False), ((3, 2, 3, 3), 0.1, 0.9, 0.0, True),
                                                   ((7,), 0.05, 0.0, 0.01, True), ((6, 6), 0.2, 0.5, 0.1, False),
                                                   ((2, 3, 4), 1e-3, 0.99, 5e-4, False)]:
        weight, grad = f32(randn(*shape)), f32(randn(*shape) * 0.5)
        velocity = torch.zeros(shape, dtype=torch.float64) if zero_velocity else f32(randn(*shape) * 0.3)
        expected = _torch_sgd(weight, grad, velocity, lr, momentum, wd)
        cases.append(case(f"shape {shape}, lr={lr}, momentum={momentum}, weight_decay={wd}"
                          + (", zero velocity" if zero_velocity else ""),
                          args=[weight, grad, velocity, lr, momentum, wd], expected=expected,
                          output_names=["new_weight", "new_velocity"]))
    return {"title": "sgd_update", "cases": cases, "forbidden": _FORBIDDEN + ["torch.optim"]}
