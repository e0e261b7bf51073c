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



def _torchvision_names(info: cnnbook.ModelInfo) -> set[str]:
    """The torchvision builders whose name our class's module or registry name already claims."""
    return {n for n in torchvision.models.list_models(module=torchvision.models) if n == info.name}


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", cnnbook.list_models())
def test_a_network_torchvision_has_under_our_name_is_paired(name: str) -> None:
    """Instead of a hand-kept list: any registered name that torchvision also builds must declare the
    pairing, so the parity, GFLOPS and benchmark checks cannot silently skip it."""
    info = cnnbook.get_model_info(name)
    if _torchvision_names(info):
        assert info.torchvision == name, f"{name} exists in torchvision: register it with torchvision={name!r}"
    if info.torchvision is not None:
        assert info.torchvision in torchvision.models.list_models(module=torchvision.models)


def test_the_modern_zoo_is_paired() -> None:
    assert {"efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_y_400mf",
            "convnext_tiny"} <= {tv for _, tv in PAIRS}


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
