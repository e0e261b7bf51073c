"""Grader-chosen inputs: tensors cast to the grading dtype and device, module specs, measurements."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from .numerics import GRADING_DTYPE, GradingError, enforce_numerics

# Module specs let a reference case ask for a module as an argument (e.g. a network to freeze), as
# data: {"__module__": "torch.nn:Linear", "kwargs": {...}, "state_dict": {...}, "frozen": [prefixes]}.
_SPEC_PREFIXES = ("torch.nn:", "cnnbook:", "cnnbook.layers:", "cnnbook.models:")


def build_module_spec(spec: Mapping[str, Any], device: torch.device | None = None) -> nn.Module:
    """Build the module a reference case describes (only from torch.nn and cnnbook)."""
    target = spec["__module__"]
    if not target.startswith(_SPEC_PREFIXES):
        raise ValueError(f"module spec {target!r} is outside torch.nn and cnnbook")
    module_name, _, attr = target.partition(":")
    if module_name == "cnnbook" and attr not in ("get_model",):
        module = importlib.import_module("cnnbook").get_model(attr, **spec.get("kwargs", {}))
    else:
        module = getattr(importlib.import_module(module_name), attr)(**spec.get("kwargs", {}))
    module = module.to(device=device or torch.device("cpu"), dtype=GRADING_DTYPE)
    if "state_dict" in spec:
        module.load_state_dict(spec["state_dict"], strict=True)
    for name, param in module.named_parameters():  # "frozen": name prefixes whose parameters do not train
        if name.startswith(tuple(spec.get("frozen", ()))):
            param.requires_grad_(False)
    return module


def _materialise(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        value = value.to(device)
        return value.to(GRADING_DTYPE) if value.is_floating_point() else value
    if isinstance(value, Mapping) and "__module__" in value:
        return build_module_spec(value, device)
    if isinstance(value, (list, tuple)):
        return type(value)(_materialise(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: _materialise(v, device) for k, v in value.items()}
    return value


# What is compared for a case: the return value itself, or a measurement of it.
def _trainable_names(module: Any) -> list[str]:
    if not isinstance(module, nn.Module):
        raise GradingError(f"expected an nn.Module, got {type(module).__name__}")
    return sorted(n for n, p in module.named_parameters() if p.requires_grad)


MEASURES: dict[str, Callable[[Any], Any]] = {
    "value": lambda out: out,
    "trainable_parameters": _trainable_names,
    "num_trainable": lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad),
    "num_parameters": lambda m: sum(p.numel() for p in m.parameters()),
}


def _describe(case: Mapping[str, Any]) -> str:
    return f"case {case.get('name', '?')!r}"


def _seeded(fn: Callable[[], Any]) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return fn()


def _run_student(call: Callable[[], Any], device: torch.device) -> Any:
    enforce_numerics()
    return _seeded(call)


