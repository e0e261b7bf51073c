"""The tracer: run a network once and annotate every tensor with the receptive field of its units.

A ``TorchFunctionMode`` applies the rule of :mod:`cnnbook.calc.rf_rules` to every spatial torch function,
takes the union where paths merge, and module hooks turn the fields into the rows of
:mod:`cnnbook.calc.rf_rows`: one per block of the main path, and one per module for lookups. With
``probe=True`` it swaps operations whose gradient is sparse or saturates, for :mod:`cnnbook.calc.rf_probe`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .._probe import model_device, probing
from .rf_rules import (_AXES, _IMAGE, _RULES, Layer, _adaptive_pool, _arg, _clip_cover, _Field, _hw, _layout_axes,
                       _pair, _union)
from .rf_rows import Region, RFRow, _equivalent_layer, _row


_ATTR = "_cnnbook_rf"
_LAYOUT_OPS = {"permute", "transpose", "swapaxes", "swapdims", "reshape", "view", "flatten", "unflatten"}


def _field_of(t: Any) -> _Field | None:
    return getattr(t, _ATTR, None) if isinstance(t, Tensor) else None


def _tensors(obj: Any) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


@dataclass
class _Frame:
    module: nn.Module
    name: str
    is_unit: bool                   # a row of the main path (a block, or a layer outside any block)
    field_in: _Field | None
    ops: list[tuple[str, Layer, _Field]]


# For the probe: saturating or sparse-gradient operations swapped for ones with the same support.
def _avg_for_max(args: tuple, kwargs: dict) -> Tensor:
    x = args[0]
    k = _arg(args, kwargs, 1, "kernel_size", None)
    stride = _arg(args, kwargs, 2, "stride", None)
    padding = _arg(args, kwargs, 3, "padding", 0)
    ceil_mode = bool(_arg(args, kwargs, 5, "ceil_mode", False))
    dilation = _pair(_arg(args, kwargs, 4, "dilation", 1))
    if dilation != (1.0, 1.0):
        raise NotImplementedError("probe_receptive_field does not handle dilated max-pooling.")
    return F.avg_pool2d(x, k, stride if stride not in (None, [], ()) else None, padding, ceil_mode, True)


_PROBE_SWAPS: dict[str, Callable[[tuple, dict], Any]] = {
    "max_pool2d": _avg_for_max,
    "_max_pool2d": _avg_for_max,
    "max_pool2d_with_indices": lambda a, k: (_avg_for_max(a, k), None),
    "adaptive_max_pool2d": lambda a, k: F.adaptive_avg_pool2d(a[0], _arg(a, k, 1, "output_size", None)),
    "_adaptive_max_pool2d": lambda a, k: F.adaptive_avg_pool2d(a[0], _arg(a, k, 1, "output_size", None)),
    "hardtanh": lambda a, k: F.relu(a[0]),        # ReLU6 saturates: its gradient vanishes above 6
    "hardtanh_": lambda a, k: F.relu(a[0]),
    "relu6": lambda a, k: F.relu(a[0]),
    "hardsigmoid": lambda a, k: torch.sigmoid(a[0]),
    "hardswish": lambda a, k: F.silu(a[0]),
    # LayerNorm of equal channels is 0 with a zero gradient; it mixes channels only, so the identity has
    # the same spatial support
    "layer_norm": lambda a, k: a[0],
}


class _Tracer(TorchFunctionMode):
    """Runs a network once and annotates every tensor with the receptive field of its units."""

    def __init__(self, model: nn.Module, probe: bool = False, capture: Sequence[str] = ()) -> None:
        super().__init__()
        self.model = model
        self.names = {id(m): name for name, m in model.named_modules()}
        self.calls: dict[str, int] = {}
        self.stack: list[_Frame] = []
        self.rows: list[RFRow] = []          # the main path
        self.every: dict[str, RFRow] = {}     # every module and bare function call
        self.probe = probe
        self.capture = set(capture)
        self.captured: dict[str, Tensor] = {}

    # -- module hooks: which block is running ----------------------------------------------------
    def _unique(self, name: str) -> str:
        self.calls[name] = self.calls.get(name, 0) + 1
        return name if self.calls[name] == 1 else f"{name}:{self.calls[name]}"

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        inside_unit = any(frame.is_unit for frame in self.stack)
        is_root = module is self.model
        transparent = is_root or isinstance(module, nn.Sequential)
        fields = [f for f in map(_field_of, _tensors(args)) if f is not None]
        name = "" if is_root else self._unique(self.names.get(id(module), type(module).__name__))
        self.stack.append(_Frame(module, name, not inside_unit and not transparent, fields[0] if fields else None, []))

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        frame = self.stack.pop()
        outs = _tensors(out)
        if not outs or frame.name == "":
            return
        first = outs[0]
        field = _field_of(first)
        if field is None or first.dim() != 4:
            return
        if frame.name in self.capture:
            self.captured[frame.name] = first
        if len(frame.ops) == 1 and frame.ops[0][2] == field:
            kind, layer, _ = frame.ops[0]
        elif frame.field_in is not None and (frame.ops or field.global_context != frame.field_in.global_context):
            kind, layer = "block", _equivalent_layer(frame.field_in, field)  # e.g. a residual or SE block
        else:  # no spatial operation inside: BN, ReLU, dropout, LRN keep the field
            one = ((1.0, 1.0), (1.0, 1.0), (0.0, 0.0), (1.0, 1.0))
            self.every[frame.name] = _row(frame.name, "pointwise", one, field, first)
            return
        row = _row(frame.name, kind, layer, field, first)
        self.every[frame.name] = row
        if frame.is_unit:
            self.rows.append(row)

    # -- every torch function: propagate the fields ---------------------------------------------
    def __torch_function__(self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.probe and name in _PROBE_SWAPS:
            out = _PROBE_SWAPS[name](args, kwargs)
        else:
            out = func(*args, **kwargs)
        outs = _tensors(out)
        inputs = [t for t in _tensors(args) + _tensors(kwargs) if _field_of(t) is not None]
        if not outs or not inputs:
            return out
        if hasattr(inputs[0], _AXES) or name in _LAYOUT_OPS:  # H and W are not (or no longer) the last two
            axes = _layout_axes(name, inputs[0], outs[0], args, kwargs)
            if axes is not None and axes != (outs[0].dim() - 2, outs[0].dim() - 1):
                setattr(outs[0], _AXES, axes)
        rule = _RULES.get(name)
        result = None
        if rule is not None and args and inputs[0] is args[0] and inputs[0].dim() == 4 and outs[0].dim() == 4:
            result = rule[1](_field_of(inputs[0]), inputs[0], outs[0], args, kwargs)
        if result is not None:
            field, layer = result
            kind: str | None = rule[0]  # type: ignore[index]
        else:
            field, kind, layer = self._merge(name, inputs, outs[0])
        if outs[0].dim() == 4:
            field = _clip_cover(field, [_field_of(t) for t in inputs], _hw(outs[0]))  # type: ignore[misc]
        if kind is not None:
            self._record(name, kind, layer, field, outs[0])
        for t in outs:
            setattr(t, _ATTR, field)
        return out

    def _merge(self, name: str, inputs: list[Tensor], out: Tensor) -> tuple[_Field, str | None, Any]:
        """Element-wise operations, concatenations, reshapes: the union of the inputs' fields.

        Tensors of 4 or more dimensions whose last two are ``(H, W)`` keep their fields. A tensor that
        summarises a whole map (a 1x1 map broadcast back onto a larger one, or a flattened vector viewed
        back as 1x1, as in squeeze-and-excitation) only contributes ``global_context``.
        """
        fields = [_field_of(t) for t in inputs]
        if out.dim() < 4:  # flattened: a summary of the map
            return _union([replace(f, size=None) for f in fields]), None, None  # type: ignore[arg-type]
        hw = _hw(out)
        same = [_field_of(t) for t in inputs if t.dim() >= 4 and _hw(t) == hw]
        larger = [t for t in inputs if t.dim() >= 4 and _hw(t) != hw and _hw(t) != (1, 1)]
        if same:
            others = [replace(_field_of(t), size=None) for t in inputs if not (t.dim() >= 4 and _hw(t) == hw)]
            return _union(same + others), None, None  # type: ignore[arg-type]
        if hw == (1, 1) and larger:  # a global reduction written as x.mean((2, 3), keepdim=True)
            field, layer = _adaptive_pool(_field_of(larger[0]), larger[0], out, (), {})
            return field, "pool", layer
        if not larger:  # a summary expanded or viewed back as a map
            return _union([replace(f, size=None) for f in fields]), None, None  # type: ignore[arg-type]
        shapes = [tuple(t.shape) for t in inputs]
        raise NotImplementedError(
            f"receptive_fields does not know how {name}() maps inputs of shapes {shapes} "
            f"to an output of shape {tuple(out.shape)}."
        )

    def _record(self, name: str, kind: str, layer: Layer, field: _Field, out: Tensor) -> None:
        for frame in self.stack:
            frame.ops.append((kind, layer, field))
        if not any(frame.is_unit for frame in self.stack) and kind not in ("crop", "pad"):
            # a bare function call on the main path (e.g. F.adaptive_avg_pool2d in a network's forward)
            row_name = self._unique(f"F.{name}")
            row = _row(row_name, kind, layer, field, out)
            self.every[row_name] = row
            self.rows.append(row)
            if row_name in self.capture:
                self.captured[row_name] = out

    # -- running ------------------------------------------------------------------------------------
    def run(self, x: Tensor) -> None:
        c, h, w = (int(n) for n in x.shape[1:])
        setattr(x, _ATTR, replace(_IMAGE, cover=((0.0, h - 1.0), (0.0, w - 1.0))))
        self.rows.append(RFRow("input", "input", 1, 1, 0, 1, 1, 1, 0.0, c, (h, w), False, Region(0, h, 0, w)))
        self.every["input"] = self.rows[0]
        handles = []
        for module in self.model.modules():
            handles.append(module.register_forward_pre_hook(self.pre_hook))
            handles.append(module.register_forward_hook(self.post_hook))
        with probing(self.model, handles, grad=self.probe), self:  # the probe back-propagates to x
            self.model(x)


def _trace(model: nn.Module, size: Sequence[int]) -> _Tracer:
    tracer = _Tracer(model)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    tracer.run(torch.zeros(1, *size, device=model_device(model), dtype=dtype))  # evaluation mode, no autograd
    return tracer
