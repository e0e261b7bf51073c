"""Reference items of the ch14_transfer assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

from torch import nn

import cnnbook
from cnnbook import grading

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


@item("ch14_transfer/train_only")
def _() -> dict[str, Any]:
    model = cnnbook.get_model("resnet20_cifar")
    names = [n for n, _ in model.named_parameters()]
    cases = []
    for prefixes in (["layer3", "fc"], ["fc"], ["layer2.2", "layer3", "fc"], ["bn1", "conv1"]):
        spec = {"__module__": "cnnbook:resnet20_cifar", "frozen": ["layer1"]}  # some already frozen
        cases.append(case(f"prefixes={prefixes}", args=[spec, prefixes], measure="trainable_parameters",
                          expected=sorted(n for n in names if n.startswith(tuple(prefixes)))))
    return {"title": "train_only", "cases": cases}


def _trainable_cases() -> list[tuple[str, dict[str, Any], int, int]]:
    out = []
    for label, spec in [("resnet20_cifar, layer1 and layer2 frozen",
                         {"__module__": "cnnbook:resnet20_cifar", "frozen": ["layer1", "layer2"]}),
                        ("resnet20_cifar, all but fc frozen",
                         {"__module__": "cnnbook:resnet20_cifar", "frozen": ["conv1", "bn1", "layer"]}),
                        ("LeNet-5, nothing frozen", {"__module__": "cnnbook:lenet5"})]:
        model = grading.build_module_spec(spec)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        out.append((label, spec, trainable, sum(p.numel() for p in model.parameters())))
    return out


@item("ch14_transfer/count_trainable")
def _() -> dict[str, Any]:
    return {"title": "count_trainable",
            "cases": [case(label, args=[spec], expected=n) for label, spec, n, _ in _trainable_cases()]}


@item("ch14_transfer/trainable_fraction")
def _() -> dict[str, Any]:
    return {"title": "trainable_fraction",
            "cases": [case(label, args=[spec], expected=n / total) for label, spec, n, total in _trainable_cases()]}
