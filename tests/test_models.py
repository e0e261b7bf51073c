"""Every registered network: shapes, gradients, modes, small configurations and bad input.

These tests iterate the registry, so a network added to it is tested without editing this file.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import sys

import pytest
import torch
from torch import nn

import cnnbook
import cnnbook.models
from cnnbook.models import ImageClassifier

ALL = cnnbook.list_models()


def _logits(out: object) -> torch.Tensor:
    """The main output of a network (GoogLeNet and Inception-v3 also return auxiliary logits in training)."""
    return out[0] if isinstance(out, tuple) else out  # type: ignore[index]


def _expected_shape(info: cnnbook.ModelInfo, n: int, num_classes: int, hw: tuple[int, int]) -> tuple[int, ...]:
    if info.task == "segmentation":
        return (n, num_classes, *hw)
    return (n, num_classes)


MODEL_MODULES = sorted(
    m.name for m in pkgutil.iter_modules(cnnbook.models.__path__) if not m.name.startswith("_")
)


@pytest.mark.parametrize("module_name", MODEL_MODULES)
def test_every_model_module_is_imported_and_registers_its_builders(module_name: str) -> None:
    """A file under models/ missing from models/__init__.py, or a public builder without @register_model,
    would silently leave the registry: every module is imported by the package, and every public
    function that returns a registered class's instance is registered under its own name."""
    assert f"cnnbook.models.{module_name}" in sys.modules, f"models/__init__.py does not import {module_name}"
    module = importlib.import_module(f"cnnbook.models.{module_name}")
    registered = {cnnbook.get_model_info(n).builder for n in ALL}
    own = [n for n in ALL if cnnbook.get_model_info(n).builder.__module__ == module.__name__]
    assert own, f"cnnbook.models.{module_name} registers no network"
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if not inspect.isfunction(obj):
            continue
        signature = inspect.signature(obj)
        required = [p for p in signature.parameters.values()
                    if p.default is p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        returns = signature.return_annotation
        if not required and isinstance(returns, str) and returns in {c.__name__ for c in _classifier_classes(module)}:
            assert obj in registered, f"{module_name}.{name} builds a network but is not registered"


def _classifier_classes(module: object) -> list[type]:
    return [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, nn.Module)
            and c.__module__ == getattr(module, "__name__", "")]


def test_registry_names_are_unique_and_sorted() -> None:
    assert ALL == sorted(set(ALL))


def test_list_models_include_and_exclude_patterns() -> None:
    """Glob patterns as in torchvision.models.list_models."""
    resnets = cnnbook.list_models(include="resnet*")
    assert resnets and all(n.startswith("resnet") for n in resnets)
    assert cnnbook.list_models(include="resnet*", exclude="*cifar") == [n for n in resnets if not n.endswith("cifar")]
    assert cnnbook.list_models(include=["vgg11", "vgg11_bn"]) == ["vgg11", "vgg11_bn"]
    assert set(cnnbook.list_models(exclude="*")) == set()
    assert cnnbook.list_models(chapter=11, include="mobilenet_v3*") == ["mobilenet_v3_large", "mobilenet_v3_small"]
    with pytest.raises(TypeError, match="glob pattern"):
        cnnbook.list_models(include=3)  # type: ignore[arg-type]


def test_builders_pass_their_keyword_arguments_to_the_class() -> None:
    """Every builder forwards **kwargs: a class argument the builder does not list still arrives."""
    setting = [[1, 16, 1, 1], [6, 24, 2, 2]]
    model = cnnbook.get_model("mobilenet_v2", inverted_residual_setting=setting)
    assert len(model.features) == 1 + 3 + 1  # stem, 3 inverted residuals, last 1x1
    assert cnnbook.get_model("googlenet", branch3_kernel=5).inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert cnnbook.get_model("unet", base_channels=8, depth=2).num_classes == 2
    assert cnnbook.get_model("lenet5", in_channels=3).in_channels == 3
    with pytest.raises(TypeError):
        cnnbook.get_model("nin", no_such_argument=1)


@pytest.mark.parametrize("name", ALL)
def test_registry_entry(name: str) -> None:
    info = cnnbook.get_model_info(name)
    assert info.name == name
    assert info.chapter is None or 1 <= info.chapter <= 15
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
    assert out.shape == _expected_shape(info, 1, model.num_classes, (h, w))
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


@pytest.mark.parametrize("name", ALL)
def test_min_input_size_is_exact(name: str) -> None:
    """For every registered network: the smallest side it claims runs; one pixel less is refused by
    check_input with the size to use, and would also break a layer (the claim is not just conservative)."""
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs).eval()
    c = info.small_input_size[0]
    if getattr(model, "fixed_input_size", None) is not None:  # LeNet: exactly 32x32, and not one pixel less
        assert model.min_input_size <= min(model.fixed_input_size)
        side = model.fixed_input_size[0]
        with torch.no_grad(), pytest.raises(ValueError, match=f"{side}, {side}"):
            model(torch.randn(1, c, side - 1, side - 1))
        return
    side = model.min_input_size
    with torch.no_grad():
        assert torch.isfinite(_logits(model(torch.randn(1, c, side, side)))).all()
        if side == 1:
            return  # every layer is padded: nothing smaller exists
        with pytest.raises(ValueError, match=f"{side}"):
            model(torch.randn(1, c, side - 1, side - 1))
        if isinstance(model, ImageClassifier):  # the layers themselves fail one pixel below
            with pytest.raises(RuntimeError):
                model.forward_features(torch.randn(1, c, side - 1, side - 1))
