"""Parameters and mult-adds of a built network, counted by PyTorch itself.

``count_mult_adds`` runs the network once (batch 1, eval mode) under
:class:`torch.utils.flop_counter.FlopCounterMode`, which counts the floating-point operations of the
matrix products PyTorch executes: convolutions (``aten.convolution``, transposed and grouped ones
included), fully connected layers (``aten.addmm`` / ``aten.mm``) and batched matrix products. It counts
a multiply-accumulate as 2 FLOPs, so mult-adds = FLOPs / 2. Bias additions, batch normalisation,
activations, pooling, residual additions and concatenations are *not* counted, as in the papers' tables
(VGG-16: 15.5 G mult-adds at 224x224; MobileNet-224: 569 M).

``layer_table`` gives the same counts per module, from the per-module breakdown FlopCounterMode keeps;
its rows add up to the totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .._probe import model_device, probing
from .shapes import _first_tensor, resolve_model

__all__ = ["LayerCost", "count_parameters", "count_mult_adds", "layer_table", "format_layer_table"]


def count_parameters(model: nn.Module | str, trainable_only: bool = False) -> int:
    """Number of parameters (a parameter shared by two layers counts once); ``model`` may be a registry name."""
    if isinstance(model, str):
        from ..registry import get_model

        model = get_model(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _forward_once(
    model: nn.Module, size: Sequence[int], counter: FlopCounterMode
) -> list[tuple[nn.Module, tuple[int, ...] | None]]:
    """One eval-mode, no-grad forward pass of a batch of one ``size`` input under ``counter``.

    Returns every module that ran, in the order its forward started (first call), with its first
    output shape. Restores the model's training mode.
    """
    starts: list[nn.Module] = []
    shapes: dict[int, tuple[int, ...] | None] = {}

    def pre(module: nn.Module, args: object) -> None:
        if id(module) not in shapes:
            shapes[id(module)] = None
            starts.append(module)

    def post(module: nn.Module, args: object, out: object) -> None:
        if shapes.get(id(module)) is None:
            tensor = _first_tensor(out)
            shapes[id(module)] = tuple(tensor.shape) if tensor is not None else None

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    with probing(model, handles), counter:
        model(torch.zeros(1, *size, device=model_device(model)))
    return [(m, shapes[id(m)]) for m in starts]


def count_mult_adds(model: nn.Module | str, input_size: Sequence[int] | None = None) -> int:
    """Mult-adds of one forward pass on one ``(C, H, W)`` image (convolutions and linear layers only).

    ``model`` is a module or a registry name (whose native input size is then the default).
    """
    model, size = resolve_model(model, input_size)
    counter = FlopCounterMode(display=False)
    _forward_once(model, size, counter)
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class LayerCost:
    """One module's own parameters and mult-adds (its children's are in their own rows)."""

    name: str                                # dotted module path; "" is the network itself
    type: str                                # class name
    output_shape: tuple[int, ...] | None     # batch of one; None when the module did not run (e.g. aux heads in eval)
    params: int
    mult_adds: int


def _flops_by_module(counter: FlopCounterMode, root: nn.Module) -> dict[str, int]:
    """Total FLOPs under each module, keyed by the path ``named_modules`` gives ("" for the root)."""
    prefix = type(root).__name__
    totals: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == prefix:
            totals[""] = sum(ops.values())
        elif key.startswith(prefix + "."):
            totals[key[len(prefix) + 1:]] = sum(ops.values())
    return totals


def layer_table(model: nn.Module | str, input_size: Sequence[int] | None = None) -> list[LayerCost]:
    """Per-module parameters and mult-adds, in execution order, for one ``(C, H, W)`` image.

    One row per leaf module, plus a row for any container that holds parameters or computes products
    itself (outside its children). Modules that do not run in eval mode (GoogLeNet's auxiliary
    classifiers) come last with ``output_shape=None`` and no mult-adds. The rows' parameters add up to
    :func:`count_parameters` and their mult-adds to :func:`count_mult_adds`.
    """
    model, size = resolve_model(model, input_size)
    names = {id(m): name for name, m in model.named_modules()}
    counter = FlopCounterMode(display=False)
    order = _forward_once(model, size, counter)
    totals = _flops_by_module(counter, model)
    ran = {id(m) for m, _ in order}
    order += [(m, None) for _, m in model.named_modules() if id(m) not in ran]

    rows: list[LayerCost] = []
    counted: set[int] = set()
    for module, shape in order:
        name = names[id(module)]
        children = [f"{name}.{child}" if name else child for child, _ in module.named_children()]
        own_flops = totals.get(name, 0) - sum(totals.get(child, 0) for child in children)
        own_params = 0
        for p in module.parameters(recurse=False):
            if id(p) not in counted:
                counted.add(id(p))
                own_params += p.numel()
        is_leaf = not children
        if is_leaf or own_params or own_flops:
            rows.append(LayerCost(name, type(module).__name__, shape, own_params, own_flops // 2))
    return rows


def _human(n: int) -> str:
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_layer_table(rows: Sequence[LayerCost], skip_empty: bool = False) -> str:
    """The rows as aligned text with a total line; ``skip_empty`` hides rows without parameters or mult-adds."""
    header = ("layer", "type", "output shape", "params", "mult-adds")
    shown = [r for r in rows if not skip_empty or r.params or r.mult_adds]
    lines = [
        (r.name or "(network)", r.type, "-" if r.output_shape is None else str(r.output_shape),
         f"{r.params:,}", f"{r.mult_adds:,}")
        for r in shown
    ]
    total_params = sum(r.params for r in rows)
    total_madds = sum(r.mult_adds for r in rows)
    total = ("total", "", "", f"{total_params:,}", f"{total_madds:,} ({_human(total_madds)})")
    widths = [max(len(h), len(total[i]), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    right = (False, False, False, True, True)
    fmt = "  ".join(f"{{:{'>' if r else '<'}{w}}}" for w, r in zip(widths, right))
    rule = "  ".join("-" * w for w in widths)
    out = [fmt.format(*header), rule, *(fmt.format(*line) for line in lines), rule, fmt.format(*total)]
    return "\n".join(line.rstrip() for line in out)
