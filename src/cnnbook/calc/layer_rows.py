"""A model as rows of layers, for the book's overview diagrams: the computation, with no drawing.

:func:`layer_rows` walks the model's modules, runs one forward pass with hooks to record every output
shape, merges each convolution with the normalisation and activation that follow it into one row, and
collapses identical consecutive rows into one row xN. Each :class:`Row` has a ``kind`` that is a key of
``cnnbook.diagrams.NOTATION``; ``cnnbook.diagrams.draw_model`` draws the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .._probe import model_device, probing

__all__ = ["Row", "layer_rows", "describe_rows"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
_POOL = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LocalResponseNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
_ACT = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU,
        nn.ELU, nn.Softmax, nn.PReLU, nn.Mish)
_OTHER = (nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Upsample, nn.Identity)
_PRIMITIVE = _CONV + _POOL + (nn.Linear,) + _NORM + _ACT + _OTHER
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _kind(module: nn.Module) -> str:
    if isinstance(module, _CONV):
        return "conv"
    if isinstance(module, _POOL):
        return "pool"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, _NORM) or "Norm" in type(module).__name__:
        return "norm"
    if isinstance(module, _ACT):
        return "activation"
    if isinstance(module, _OTHER) or not list(module.children()):
        return "other"
    return "module"


def _label(module: nn.Module) -> str:
    """The short text of a layer in the notation, e.g. ``conv 3×3, 64, /2`` or ``max pool 3×3, /2``."""
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = _pair(module.kernel_size)
        return f"up-conv {kh}×{kw}, {module.out_channels}, ×{_pair(module.stride)[0]}"
    if isinstance(module, _CONV):
        kh, kw = _pair(module.kernel_size)
        text = f"conv {kh}×{kw}, {module.out_channels}"
        if module.groups > 1:
            text += " dw" if module.groups == module.in_channels == module.out_channels else f", g{module.groups}"
        stride = _pair(module.stride)[0]
        return text + (f", /{stride}" if stride > 1 else "")
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        kind = "avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
        size = _pair(module.output_size)
        return f"global {kind} pool" if size == (1, 1) else f"adaptive {kind} pool → {size[0]}×{size[1]}"
    if isinstance(module, _POOL):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        k = _pair(module.kernel_size)[0]
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)[0]
        return f"{kind} pool {k}×{k}" + (f", /{stride}" if stride > 1 else "")
    if isinstance(module, nn.Linear):
        return f"dense {module.out_features}"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "BN"
    if isinstance(module, nn.LocalResponseNorm) or "ResponseNorm" in type(module).__name__:
        return "LRN"
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"dropout {module.p:g}"
    if isinstance(module, nn.Upsample):
        return f"upsample ×{module.scale_factor:g}" if module.scale_factor else "upsample"
    names = {"Tanh": "tanh", "Sigmoid": "sigmoid", "Flatten": "flatten", "GroupNorm": "GN", "LayerNorm": "LN"}
    return names.get(type(module).__name__, type(module).__name__)


# ---- pure computation: the rows of an overview -------------------------------------------------------
@dataclass
class Row:
    """One row of an overview diagram: a layer or a block, its tags (BN, ReLU, ...), its output shape."""

    kind: str                                   # a key of NOTATION
    label: str                                  # e.g. "conv 3×3, 64" or "Bottleneck"
    shape: tuple[int, ...]                      # output shape without the batch dimension
    name: str = ""                              # dotted module path of the (first) layer
    tags: list[tuple[str, str]] = field(default_factory=list)  # (kind, label) drawn beside the main glyph
    repeat: int = 1
    widths: tuple[int, ...] = ()                # a block's inner widths (see _trace_calls); () for a layer

    def key(self) -> tuple[Any, ...]:
        """What must be equal for two consecutive rows to collapse into one row xN.

        For blocks: the class, the output channels and the inner widths, so that GoogLeNet's 4a-4c (all
        512 channels out, with different branch widths) stay apart while a ResNet stage still collapses.
        """
        channels = self.shape[0] if self.shape else None
        return (self.kind, self.label, tuple(self.tags), channels if self.kind == "module" else None, self.widths)


def _is_conv_unit(module: nn.Module) -> bool:
    """A named group of one conv (or dense) layer with its normalisation and activation (ConvBNAct, ...)."""
    children = [c for c in module.children() if not isinstance(c, nn.Identity)]
    weights = [c for c in children if isinstance(c, _CONV + (nn.Linear,))]
    return (bool(children) and len(weights) == 1
            and all(_kind(c) in ("conv", "dense", "norm", "activation") for c in children))


def _is_layer_group(module: nn.Module) -> bool:
    """A Sequential subclass made only of layers (e.g. DenseNet's transition): shown layer by layer."""
    return isinstance(module, nn.Sequential) and all(
        isinstance(c, _PRIMITIVE) or not list(c.children()) for c in module.children())


def _calls_relu(module: nn.Module) -> bool:
    """True when the module's own forward applies a ReLU that is not a child module (``F.relu(x)``)."""
    import inspect

    forward = type(module).forward
    if forward is nn.Sequential.forward:
        return False
    try:
        return "relu(" in inspect.getsource(forward)
    except (OSError, TypeError):
        return False


def _describe(module: nn.Module) -> tuple[str, str, list[tuple[str, str]]]:
    """(kind, label, tags) of a unit; a conv unit is its conv (or dense) layer tagged with the rest."""
    if _is_conv_unit(module):
        parts = [c for c in module.children() if not isinstance(c, nn.Identity)]
        main = next(c for c in parts if isinstance(c, _CONV + (nn.Linear,)))
        tags = [(_kind(c), _label(c)) for c in parts if c is not main]
        if not any(kind == "activation" for kind, _ in tags) and _calls_relu(module):
            tags.append(("activation", "ReLU"))
        return _kind(main), _label(main), tags
    kind = _kind(module)
    return kind, (type(module).__name__ if kind == "module" else _label(module)), []


def _units(module: nn.Module, prefix: str = "", root: bool = True) -> list[tuple[str, nn.Module]]:
    """The modules an overview shows: primitives, and custom blocks kept whole as modules."""
    if isinstance(module, _PRIMITIVE) or not list(module.children()):
        return [(prefix, module)]
    if _is_conv_unit(module) and not root:
        return [(prefix, module)]
    if root or type(module) in _CONTAINERS or _is_layer_group(module):
        units: list[tuple[str, nn.Module]] = []
        for name, child in module.named_children():
            units += _units(child, f"{prefix}.{name}" if prefix else name, root=False)
        return units
    return [(prefix, module)]


def _shape(output: Any) -> tuple[int, ...]:
    tensor = output[0] if isinstance(output, (tuple, list)) else output
    return tuple(tensor.shape[1:]) if isinstance(tensor, Tensor) else ()


def _inner_width_hooks(unit: nn.Module, widths: set[int]) -> list[Any]:
    """Hooks that add to ``widths`` the output channels of every convolution inside ``unit`` that reads
    neither the unit's own input nor a 1 x 1 map (a squeeze-and-excitation gate) and is not depthwise: the
    widths a paper's table lists per block. The first block of a stage differs from the others only in the
    convolutions left out (and its stride), so it still collapses."""
    block_input: list[Any] = [None]

    def remember(module: nn.Module, inputs: tuple[Any, ...]) -> None:
        block_input[0] = inputs[0] if inputs else None

    def record(conv: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        depthwise = conv.groups > 1 and conv.groups == conv.in_channels
        gate = inputs and inputs[0].dim() == 4 and inputs[0].shape[-2:] == (1, 1)
        if inputs and inputs[0] is not block_input[0] and not depthwise and not gate:
            widths.add(conv.out_channels)

    convs = [m for m in unit.modules() if isinstance(m, _CONV) and m is not unit]
    return [unit.register_forward_pre_hook(remember), *(c.register_forward_hook(record) for c in convs)]


def _trace_calls(
    model: nn.Module, input_size: tuple[int, int, int],
) -> list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(path, module, input shape, output shape, inner widths) of every unit, in the order the forward pass
    calls them; the inner widths (:func:`_inner_width_hooks`) only for blocks, () for layers."""
    calls: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
    handles = []
    for path, unit in _units(model):
        if isinstance(unit, nn.Identity):
            continue
        widths: set[int] = set()
        if _kind(unit) == "module":
            handles += _inner_width_hooks(unit, widths)

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any, path: str = path,
                 widths: set[int] = widths) -> None:
            calls.append((path, module, _shape(inputs[0]) if inputs else (), _shape(output), tuple(sorted(widths))))
            widths.clear()

        handles.append(unit.register_forward_hook(hook))
    with probing(model, handles):
        model(torch.zeros(1, *input_size, device=model_device(model)))
    return calls


def _collapse(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    for row in rows:
        if out and out[-1].key() == row.key() and row.kind not in ("input",):
            out[-1].repeat += row.repeat
            out[-1].shape = row.shape
        else:
            out.append(row)
    return out


def layer_rows(model: nn.Module | str, input_size: tuple[int, int, int] | None = None, collapse: bool = True) -> list[Row]:
    """The rows of the overview of ``model`` (a module, or a registered name built without memory).

    ``input_size`` is (C, H, W); by default the registered native size, or the model's
    ``fixed_input_size``. The first row is the input.
    """
    model, input_size = _resolve(model, input_size)
    rows = [Row("input", "input", tuple(input_size))]
    for path, module, in_shape, out_shape, widths in _trace_calls(model, input_size):
        kind, label, tags = _describe(module)
        previous = rows[-1]
        if len(previous.shape) >= 2 and len(in_shape) == 1 and label != "flatten":
            rows.append(Row("other", "flatten", in_shape))  # torch.flatten in forward
            previous = rows[-1]
        attach = (kind in ("norm", "activation") or (kind == "other" and label.startswith("dropout"))) and \
            previous.kind in ("conv", "dense", "norm") and out_shape == previous.shape
        if attach:
            previous.tags.append((kind, label))
        else:
            rows.append(Row(kind, label, out_shape, name=path, tags=tags, widths=widths))
    return _collapse(rows) if collapse else rows


def describe_rows(rows: list[Row]) -> str:
    """The rows after the input in words, for a diagram's alt text: "conv ×2 giving 64×224×224; pool giving ..."."""
    return "; ".join(f"{row.label}{f' ×{row.repeat}' if row.repeat > 1 else ''} giving {'×'.join(map(str, row.shape))}"
                     for row in rows[1:])


def _resolve(model: nn.Module | str, input_size: tuple[int, int, int] | None) -> tuple[nn.Module, tuple[int, int, int]]:
    if isinstance(model, str):
        from ..registry import get_meta_model, get_model, get_model_info

        info = get_model_info(model)
        input_size = input_size or info.input_size
        built = get_meta_model(model)  # parameters without memory: VGG-19 costs nothing to draw
        try:
            _trace_calls(built, input_size)
            return built, input_size
        except Exception:  # an operation without a meta implementation: build it for real
            return get_model(model), input_size
    if input_size is None:
        fixed = getattr(model, "fixed_input_size", None)
        channels = getattr(model, "in_channels", 3)
        if fixed is None:
            raise ValueError("input_size (C, H, W) is needed for a model without fixed_input_size.")
        input_size = (channels, *fixed)
    return model, tuple(input_size)  # type: ignore[return-value]
