"""Every registered network: shapes, gradients, modes, small configurations and bad input.

These tests iterate the registry, so a network added to it is tested without editing this file.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnbook
from cnnbook.models import ImageClassifier

ALL = cnnbook.list_models()


def _logits(out: object) -> torch.Tensor:
    """The main output of a network (GoogLeNet and Inception-v3 also return auxiliary logits in training)."""
    return out[0] if isinstance(out, tuple) else out  # type: ignore[index]


def _expected_shape(info: cnnbook.ModelInfo, n: int, num_classes: int, hw: tuple[int, int]) -> tuple[int, ...]:
    if info.task == "segmentation":
        return (n, num_classes, *hw)
    return (n, num_classes)


# Every network the course teaches (issue: foundation), by registry name.
REQUIRED = {
    "lenet5", "lenet5_modern", "alexnet", "alexnet_paper", "zfnet", "nin",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "googlenet", "inception_v3",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "plain_resnet18", "plain_resnet34", "plain_resnet50", "plain_resnet101", "plain_resnet152",
    "resnext50_32x4d", "se_resnet50", "densenet121", "densenet169", "densenet201", "densenet_small",
    "unet", "mobilenet_v1", "mobilenet_v2",
}


def test_registry_holds_every_network_of_the_course() -> None:
    assert REQUIRED <= set(ALL), f"missing: {sorted(REQUIRED - set(ALL))}"
    assert ALL == sorted(set(ALL))


@pytest.mark.parametrize("name", ALL)
def test_registry_entry(name: str) -> None:
    info = cnnbook.get_model_info(name)
    assert info.name == name
    assert 1 <= info.chapter <= 15
    assert 1989 <= info.year <= 2026
    assert info.paper and info.key_idea
    assert len(info.input_size) == 3


@pytest.mark.parametrize("name", ALL)
def test_native_forward(name: str) -> None:
    """Forward pass at the native input size: right output shape, finite values (eval mode)."""
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name).eval()
    c, h, w = info.input_size
    with torch.no_grad():
        out = _logits(model(torch.randn(1, c, h, w)))
    num_classes = getattr(model, "num_classes", None) or out.shape[1]
    assert out.shape == _expected_shape(info, 1, num_classes, (h, w))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_small_configuration_trains(name: str) -> None:
    """The small configuration: train-mode forward, backward reaches every parameter, eval-mode forward."""
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs)
    c, h, w = info.small_input_size
    x = torch.randn(2, c, h, w)
    model.train()
    out = model(x)
    logits = _logits(out)
    loss = logits.float().pow(2).mean()
    if isinstance(out, tuple):  # auxiliary classifiers take part in the training loss
        loss = loss + sum(o.pow(2).mean() for o in out[1:] if o is not None)
    loss.backward()
    without_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not without_grad, f"parameters that received no gradient: {without_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        eval_out = model(x)
    assert isinstance(eval_out, torch.Tensor), "eval mode returns a plain tensor"
    assert eval_out.shape == logits.shape
    assert torch.isfinite(eval_out).all()


CLASSIFIERS = [n for n in ALL if cnnbook.get_model_info(n).task == "classification"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_interface(name: str) -> None:
    """forward == forward_head(forward_features); reset_classifier; feature_info describes the stages."""
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs).eval()
    assert isinstance(model, ImageClassifier)
    c, h, w = info.small_input_size
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.dim() == 4 and feats.shape[1] == model.feature_info[-1].channels
        torch.testing.assert_close(model.forward_head(feats), model(x))
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features)
    reductions = [s.reduction for s in model.feature_info]
    assert reductions == sorted(reductions) and all(r >= 1 for r in reductions)
    for stage in model.feature_info:  # every recorded module exists
        model.get_submodule(stage.module)
    model.reset_classifier(7)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, pre.shape[1])


@pytest.mark.parametrize("name", ALL)
def test_wrong_channel_count_names_expected_shape(name: str) -> None:
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs).eval()
    c, h, w = info.small_input_size
    wrong = 2 if c != 2 else 4
    with pytest.raises(ValueError, match=rf"\(N, {c}, "):
        model(torch.randn(1, wrong, h, w))


@pytest.mark.parametrize("name", ALL)
def test_missing_batch_dimension_is_explained(name: str) -> None:
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs).eval()
    with pytest.raises(ValueError, match="batch"):
        model(torch.randn(*info.small_input_size))


def test_unknown_name_lists_close_names() -> None:
    with pytest.raises(ValueError, match="resnet50"):
        cnnbook.get_model("resnet5O")


def test_lenet_input_size_is_checked() -> None:
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        cnnbook.get_model("lenet5")(torch.randn(1, 1, 28, 28))


def test_lenet_parameter_counts_match_the_lecture() -> None:
    """~60K parameters (the lecture's figure); the 1998 layout has 61,706 with a dense C5."""
    n = sum(p.numel() for p in cnnbook.get_model("lenet5").parameters())
    assert n == 61_706
    assert math.isclose(n, 60_000, rel_tol=0.05)
    modern = cnnbook.get_model("lenet5_modern")
    assert modern.classifier[0].in_features == 16 * 6 * 6
