"""What every assignment's reference module shares: the item registry and the drawing helpers.

Inputs and weights are drawn in float32 and stored as float64: the student's code, run in float32, sees
exactly the values the float64 reference was computed from, so only its own rounding is measured.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

Item = Callable[[], dict[str, Any]]


def registry(assignment: str) -> tuple[dict[str, Item], Callable[[str], Callable[[Item], Item]]]:
    """A module's item table and the decorator that fills it; item names must start with "<assignment>/"."""
    items: dict[str, Item] = {}

    def item(name: str) -> Callable[[Item], Item]:
        if not name.startswith(assignment + "/"):
            raise ValueError(f"reference item {name!r} is registered in {assignment}.py: name it {assignment}/<item>")

        def wrap(fn: Item) -> Item:
            if name in items:
                raise ValueError(f"reference item {name!r} is defined twice in {assignment}.py")
            items[name] = fn
            return fn

        return wrap

    return items, item


def case(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


def f64(module: nn.Module) -> nn.Module:
    return module.to(torch.float64)


def state(module: nn.Module, rename: dict[str, str] | None = None) -> dict[str, Tensor]:
    """A module's state dict as float64 CPU tensors, keys renamed by prefix."""
    out = {}
    for key, value in module.state_dict().items():
        for old, new in (rename or {}).items():
            if key.startswith(old + "."):
                key = new + key[len(old):]
        out[key] = value.detach().clone()
    return out


def randn(*shape: int) -> Tensor:
    return torch.randn(*shape, dtype=torch.float32).double()


def rand(*shape: int) -> Tensor:
    return torch.rand(*shape, dtype=torch.float32).double()


def f32(t: Tensor) -> Tensor:
    """Round to the nearest float32 value (kept in float64)."""
    return t.float().double()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomise_bn(module: nn.Module) -> None:
    """Non-trivial batch-norm parameters and statistics, so that evaluation mode tests them."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data.copy_(f32(randn(c) * 0.3 + 1))
            m.bias.data.copy_(f32(randn(c) * 0.2))
            m.running_mean.copy_(f32(randn(c) * 0.2))
            m.running_var.copy_(f32(rand(c) + 0.5))
