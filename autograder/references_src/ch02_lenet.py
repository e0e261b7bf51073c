"""Reference items of the ch02_lenet assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import cnnbook
from cnnbook import grading

from ._common import case, f64, randn, registry, state

ITEMS, item = registry("ch02_lenet")


@item("ch02_lenet/conv_output_size")
def _() -> dict[str, Any]:
    cases = []
    for size, k, s, p in [(32, 5, 1, 0), (32, 3, 1, 0), (224, 11, 4, 2), (55, 3, 2, 0), (13, 2, 2, 0),
                          (7, 7, 1, 3), (227, 11, 4, 0), (6, 3, 3, 1), (1, 1, 1, 0), (31, 4, 3, 2)]:
        out = nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p)
        cases.append(case(f"size={size}, kernel_size={k}, stride={s}, padding={p}",
                          args=[size, k], kwargs={"stride": s, "padding": p}, expected=int(out.shape[-1])))
    return {"title": "conv_output_size", "cases": cases}


@item("ch02_lenet/lenet_flat_features")
def _() -> dict[str, Any]:
    cases = []
    for k in (3, 5, 1, 7):
        body = nn.Sequential(nn.Conv2d(1, 6, k), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, k), nn.MaxPool2d(2, 2))
        flat = torch.flatten(body(torch.zeros(1, 1, 32, 32)), 1).shape[1]
        if k in (3, 5):  # the package's LeNet agrees
            assert cnnbook.get_model("lenet5_modern" if k == 3 else "lenet5").flat_features == flat
        cases.append(case(f"kernel_size={k}", args=[k], expected=int(flat)))
    return {"title": "lenet_flat_features", "cases": cases}


_LENET_NAMES = {"features.0": "conv1", "features.3": "conv2", "classifier.0": "fc1",
                "classifier.2": "fc2", "classifier.4": "fc3"}


@item("ch02_lenet/lenet")
def _() -> dict[str, Any]:
    cases = []
    for num_classes, batch in ((10, 4), (5, 3)):
        model = f64(cnnbook.get_model("lenet5_modern", num_classes=num_classes)).eval()
        x = randn(batch, 1, 32, 32)
        with torch.no_grad():
            y = model(x)
        cases.append(case(f"num_classes={num_classes}, batch of {batch}", init_kwargs={"num_classes": num_classes},
                          state_dict=state(model, _LENET_NAMES), steps=[{"mode": "eval", "args": [x], "expected": y}]))
    return {"title": "LeNet", "cases": cases}


@item("ch02_lenet/count_parameters")
def _() -> dict[str, Any]:
    specs = [
        ("LeNet-5 (1998)", {"__module__": "cnnbook:lenet5"}),
        ("modern LeNet", {"__module__": "cnnbook:lenet5_modern"}),
        ("Conv2d without bias", {"__module__": "torch.nn:Conv2d",
                                 "kwargs": {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": False}}),
        ("BatchNorm2d (buffers are not parameters)", {"__module__": "torch.nn:BatchNorm2d",
                                                      "kwargs": {"num_features": 16}}),
    ]
    cases = []
    for name, spec in specs:
        module = grading.build_module_spec(spec)
        cases.append(case(name, args=[spec], expected=sum(p.numel() for p in module.parameters())))
    assert cases[0]["expected"] == 61_706
    return {"title": "count_parameters", "cases": cases}
