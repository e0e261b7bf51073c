"""Where torchvision has the same architecture, ours matches it exactly.

Same parameter count, and a randomly initialised torchvision ``state_dict`` loads into ours with
``strict=True`` and gives the same outputs in eval mode.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnbook

PAIRS = [
    (name, cnnbook.get_model_info(name).torchvision)
    for name in cnnbook.list_models()
    if cnnbook.get_model_info(name).torchvision
]

EXPECTED = {  # the torchvision architectures the course must cover
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "googlenet", "inception_v3", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "densenet121", "densenet169", "densenet201", "mobilenet_v2",
}


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_torchvision_architecture_is_paired() -> None:
    assert EXPECTED <= {tv for _, tv in PAIRS}


@pytest.mark.parametrize("name,tv_name", PAIRS)
def test_same_parameters_and_outputs(name: str, tv_name: str) -> None:
    ours = cnnbook.get_model(name).eval()
    theirs = torchvision.models.get_model(tv_name, weights=None).eval()
    assert _numel(ours) == _numel(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    c, h, w = cnnbook.get_model_info(name).input_size
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    assert diff <= 1e-5, f"{name} vs torchvision {tv_name}: max abs difference {diff:.3g}"
