"""Reference items of the ch14_transfer assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import cnnbook

from ._common import case, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch14_transfer")


def _pretrained(name: str = "resnet20_cifar") -> tuple[nn.Module, dict[str, Any]]:
    """A network with stored "pre-trained" weights (random here), and the spec that rebuilds it."""
    model = f64(cnnbook.get_model(name))
    randomise_bn(model)
    sd = state(model)
    return model.eval(), {"__module__": f"cnnbook:{name}", "state_dict": sd}


@item("ch14_transfer/prepare_for_fine_tuning")
def _() -> dict[str, Any]:
    cases = []
    for k in (5,):  # (one case: the stored network is the largest reference file)
        model, spec = _pretrained()
        model.fc = f64(nn.Linear(model.fc.in_features, k))
        x = randn(2, 3, 32, 32)
        cases.append(case(f"resnet20_cifar, num_classes={k}", args=[spec, k], measure="trainable_parameters",
                          expected=["fc.bias", "fc.weight"], probe=[x], partial_state=True,
                          probe_state={"fc.weight": model.fc.weight.detach().clone(),
                                       "fc.bias": model.fc.bias.detach().clone()},
                          expected_probe=model(x)))
    return {"title": "prepare_for_fine_tuning", "cases": cases}


def _group_names(names: list[str], lrs: dict[str, float]) -> dict[str, Any]:
    """The exercise's rule: a parameter joins the first prefix it starts with; the others are frozen."""
    groups = {prefix: [n for n in names if n.startswith(prefix) and
                       next(p for p in lrs if n.startswith(p)) == prefix] for prefix in lrs}
    return {"groups": [[float(lrs[p]), groups[p]] for p in lrs],
            "frozen": [n for n in names if not n.startswith(tuple(lrs))]}


@item("ch14_transfer/param_groups")
def _() -> dict[str, Any]:
    names = [n for n, _ in cnnbook.get_model("resnet20_cifar").named_parameters()]
    cases = []
    for lrs in ({"layer3": 0.01, "fc": 0.1}, {"layer3.2": 0.02, "layer3": 0.005, "fc": 0.1}, {"fc": 0.1},
                {"fc": 0.05, "conv1": 0.001, "bn1": 0.001, "layer1": 0.002}, {"layer": 0.01, "fc": 0.1}):
        cases.append(case(f"resnet20_cifar, lrs={lrs}", args=[{"__module__": "cnnbook:resnet20_cifar"}, lrs],
                          expected=_group_names(names, lrs)))
    return {"title": "param_groups", "cases": cases}


def _fine_tune(model: nn.Module, images: Tensor, labels: Tensor, lrs: dict[str, float], steps: int) -> dict[str, Any]:
    """Parameter groups, SGD with momentum 0.9, ``steps`` cross-entropy steps on one batch (float64)."""
    params = dict(model.named_parameters())
    groups = _group_names(list(params), lrs)["groups"]
    for name, p in params.items():
        p.requires_grad_(name.startswith(tuple(lrs)))
    optimizer = torch.optim.SGD([{"params": [params[n] for n in names], "lr": lr} for lr, names in groups],
                                lr=0.0, momentum=0.9)
    losses = []
    model.train()
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return {"losses": torch.tensor(losses, dtype=torch.float64),
            "trained": {n: p.detach().clone() for n, p in params.items() if p.requires_grad}}


def _fine_tune_case(name: str, channels: int, num_classes: int, batch: int, lrs: dict[str, float],
                    steps: int) -> dict[str, Any]:
    model, spec = _pretrained(name)
    images = randn(batch, channels, 32, 32)
    labels = torch.randint(0, num_classes, (batch,))
    expected = _fine_tune(model, images, labels, lrs, steps)
    return case(f"{name}, batch of {batch}, lrs={lrs}, {steps} steps", args=[spec, images, labels, lrs, steps],
                expected=expected)


@item("ch14_transfer/fine_tune_visible")
def _() -> dict[str, Any]:
    return {"title": "fine_tune (visible)", "forbidden": ["cnnbook.train"],
            "cases": [_fine_tune_case("lenet5", 1, 10, 8, {"classifier.4": 0.1, "classifier": 0.02}, 3)]}


@item("ch14_transfer/fine_tune")
def _() -> dict[str, Any]:
    return {"title": "fine_tune", "forbidden": ["cnnbook.train"],
            "cases": [_fine_tune_case("resnet20_cifar", 3, 10, 6, {"fc": 0.1, "layer3.2": 0.02, "layer3": 0.005}, 3),
                      _fine_tune_case("lenet5", 1, 10, 5, {"features.3": 0.01, "classifier": 0.05}, 2)]}
