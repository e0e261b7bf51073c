"""How each operation changes the receptive field of its input units: the recurrence and one rule per op.

Along each axis a layer with kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` maps ``(size,
jump, start)`` of its input units to its output units (see :mod:`cnnbook.calc.receptive_field`).
:func:`rf_step` is that recurrence for one layer, :func:`stack_receptive_field` for a chain; ``_Field``
holds it per axis for a tensor, and the ``_RULES`` table maps each spatial torch function (convolution,
pooling, interpolation, padding, slicing) to the rule the tracer (:mod:`cnnbook.calc.rf_tracer`) applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

__all__ = ["rf_step", "stack_receptive_field"]

Pair = tuple[float, float]
_AXES = "_cnnbook_rf_axes"  # (height, width) dimensions of a tensor whose layout is not N x C x H x W


# ---- the recurrence, without torch ----------------------------------------------------------------


def rf_step(
    size: float, jump: float, start: float, kernel: int, stride: int = 1, padding: float = 0, dilation: int = 1
) -> tuple[float, float, float]:
    """One layer of the recurrence along one axis: ``(size, jump, start)`` in, ``(size, jump, start)`` out."""
    return (
        size + (kernel - 1) * dilation * jump,
        jump * stride,
        start + ((kernel - 1) / 2 * dilation - padding) * jump,
    )


def stack_receptive_field(layers: Sequence[Sequence[int]]) -> list[tuple[float, float, float]]:
    """``(size, jump, start)`` after each layer of a chain given as ``(kernel, stride, padding[, dilation])``.

    >>> [r for r, _, _ in stack_receptive_field([(3, 1, 1)] * 3)]   # three 3x3 convolutions
    [3.0, 5.0, 7.0]
    """
    state: tuple[float, float, float] = (1.0, 1.0, 0.0)
    out = []
    for layer in layers:
        if not 3 <= len(layer) <= 4:
            raise ValueError(f"Each layer is (kernel, stride, padding) or (kernel, stride, padding, dilation); got {layer!r}.")
        for name, value, low in zip(("kernel", "stride", "padding", "dilation"), layer, (1, 1, 0, 1)):
            if value < low:
                raise ValueError(f"{name} must be >= {low}; got {value!r} in layer {tuple(layer)}.")
        state = rf_step(*state, *layer)
        out.append(tuple(float(v) for v in state))  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


# ---- the field of one tensor ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """Receptive field of the units of one tensor, per axis (height, width)."""

    size: Pair | None     # None: only a global summary (a 1x1 map broadcast back), no local field
    jump: Pair
    start: Pair
    global_context: bool = False
    # Input pixels (first, last) seen by any unit of the tensor, per axis: units at the right or bottom
    # edge may be dropped by a stride that does not divide the size, and then some pixels are never seen.
    cover: tuple[Pair, Pair] | None = None

    def step(self, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = (1, 1)) -> "_Field":
        assert self.size is not None
        axes = [rf_step(self.size[a], self.jump[a], self.start[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1)]
        return replace(self, size=(axes[0][0], axes[1][0]), jump=(axes[0][1], axes[1][1]), start=(axes[0][2], axes[1][2]))


_IMAGE = _Field(size=(1.0, 1.0), jump=(1.0, 1.0), start=(0.0, 0.0))


def _union(fields: Sequence[_Field]) -> _Field:
    """Units fed by several paths see the union (hull) of the paths' fields."""
    flag = any(f.global_context or f.size is None for f in fields)  # a summary of the whole map
    local = [f for f in fields if f.size is not None]
    if not local:
        return replace(fields[0], global_context=True)
    if len(local) == 1:
        return replace(local[0], global_context=flag)
    size, start = [], []
    for a in (0, 1):
        lo = min(f.start[a] - (f.size[a] - 1) / 2 for f in local)  # type: ignore[index]
        hi = max(f.start[a] + (f.size[a] - 1) / 2 for f in local)  # type: ignore[index]
        size.append(hi - lo + 1)
        start.append((lo + hi) / 2)
    jump = (max(f.jump[0] for f in local), max(f.jump[1] for f in local))
    return _Field((size[0], size[1]), jump, (start[0], start[1]), flag, _hull_cover(local))


def _hull_cover(fields: Sequence[_Field]) -> tuple[Pair, Pair] | None:
    covers = [f.cover for f in fields if f.cover is not None]
    if not covers:
        return None
    return tuple((min(c[a][0] for c in covers), max(c[a][1] for c in covers)) for a in (0, 1))  # type: ignore[return-value]


def _clip_cover(field: _Field, inputs: Sequence[_Field], out_hw: tuple[int, int]) -> _Field:
    """What the units of a new tensor see together: what its inputs saw, cut to its first and last units."""
    cover = _hull_cover(inputs)
    if cover is None or field.size is None:
        return replace(field, cover=cover)
    clipped = []
    for a in (0, 1):
        first = field.start[a] - (field.size[a] - 1) / 2
        last = field.start[a] + (out_hw[a] - 1) * field.jump[a] + (field.size[a] - 1) / 2
        clipped.append((max(first, cover[a][0]), min(last, cover[a][1])))
    return replace(field, cover=(clipped[0], clipped[1]))


def _pair(value: Any) -> Pair:
    if isinstance(value, (tuple, list, torch.Size)):
        if len(value) == 1:
            return (float(value[0]), float(value[0]))
        return (float(value[0]), float(value[1]))
    return (float(value), float(value))


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _axes(t: Tensor) -> tuple[int, int]:
    """Which dimensions of ``t`` are height and width: the last two, unless a layout operation (ConvNeXt's
    ``permute`` to channels-last) moved them; see :func:`_layout_axes`."""
    return getattr(t, _AXES, None) or (t.dim() - 2, t.dim() - 1)


def _hw(t: Tensor) -> tuple[int, int]:
    h, w = _axes(t)
    return int(t.shape[h]), int(t.shape[w])


def _channels(t: Tensor) -> int:
    """Channels of a 4-D feature map in either layout (N x C x H x W or N x H x W x C)."""
    if t.dim() != 4:
        return 0
    rest = [d for d in range(1, 4) if d not in _axes(t)]
    return int(t.shape[rest[0]]) if len(rest) == 1 else 0


def _int_list(args: tuple, kwargs: dict, name: str) -> list[int]:
    """The dims of ``permute(x, 0, 2, 3, 1)``, ``x.permute([0, 2, 3, 1])`` or ``permute(x, dims=...)``."""
    if name in kwargs:
        value = kwargs[name]
    elif len(args) == 2 and isinstance(args[1], (list, tuple, torch.Size)):
        value = args[1]
    else:
        value = args[1:]
    return [int(v) for v in value]


def _layout_axes(name: str, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[int, int] | None:
    """Where height and width of ``x`` went in ``out`` after a layout operation; ``None``: lost or merged.

    ``permute`` and ``transpose`` move the axes; ``reshape``, ``view`` and ``flatten`` keep them when the
    dimensions before and after (H, W) only split or merge among themselves. Any other operation whose
    output has the same rank and the same H and W at the same places keeps them (``Linear`` or
    ``LayerNorm`` on a channels-last tensor).
    """
    h, w = _axes(x)
    if name == "permute":
        dims = [d % x.dim() for d in _int_list(args, kwargs, "dims")]
        return dims.index(h), dims.index(w)
    if name in ("transpose", "swapaxes", "swapdims"):
        a, b = (int(d) % x.dim() for d in (_arg(args, kwargs, 1, "dim0", 0), _arg(args, kwargs, 2, "dim1", 1)))
        moved = {a: b, b: a}
        return moved.get(h, h), moved.get(w, w)
    if name in ("reshape", "view", "flatten", "unflatten", "_reshape_alias"):
        if w != h + 1:
            return None
        prefix, suffix = math.prod(x.shape[:h]), math.prod(x.shape[w + 1:])
        for i in range(out.dim() - 1):
            if (tuple(out.shape[i:i + 2]) == (x.shape[h], x.shape[w]) and math.prod(out.shape[:i]) == prefix
                    and math.prod(out.shape[i + 2:]) == suffix):
                return i, i + 1
        return None
    if out.dim() == x.dim() and (out.shape[h], out.shape[w]) == (x.shape[h], x.shape[w]):
        return h, w
    return None


# ---- one rule per spatial operation -----------------------------------------------------------------
# Each rule returns the output field and the layer's (kernel, stride, padding, dilation) for the table.

Layer = tuple[Pair, Pair, Pair, Pair]


def _conv(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    weight = _arg(args, kwargs, 1, "weight", None)
    k = (float(weight.shape[-2]), float(weight.shape[-1]))
    s = _pair(_arg(args, kwargs, 3, "stride", 1))
    d = _pair(_arg(args, kwargs, 5, "dilation", 1))
    p_arg = _arg(args, kwargs, 4, "padding", 0)
    if isinstance(p_arg, str):  # "valid" or "same"
        p = (0.0, 0.0) if p_arg == "valid" else tuple(float((d[a] * (k[a] - 1)) // 2) for a in (0, 1))
    else:
        p = _pair(p_arg)
    return f.step(k, s, p, d), (k, s, p, d)  # type: ignore[arg-type]


def _conv_transpose(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    """A transposed convolution is a convolution over the up-sampled grid, whose jump is ``j / s``.

    Output unit ``o`` reads the inputs ``i`` with ``o = i*s - p + t*d`` (``t = 0..k-1``): all lie in
    ``[(o + p - (k-1)*d) / s, (o + p) / s]``, so the field is at most ``r + (k-1)*d*j/s``, centred on
    ``(o + p - (k-1)*d/2) / s``. Which inputs a unit reads depends on its position modulo ``s``; the size
    given is the smallest that holds the field of every unit (exact for ``s = 1``).
    """
    weight = _arg(args, kwargs, 1, "weight", None)
    k = (float(weight.shape[-2]), float(weight.shape[-1]))
    s = _pair(_arg(args, kwargs, 3, "stride", 1))
    p = _pair(_arg(args, kwargs, 4, "padding", 0))
    d = _pair(_arg(args, kwargs, 7, "dilation", 1))
    size, jump, start = [], [], []
    for a in (0, 1):
        jump.append(f.jump[a] / s[a])
        size.append(f.size[a] + (k[a] - 1) * d[a] * jump[a])  # type: ignore[index]
        start.append(f.start[a] + (p[a] - (k[a] - 1) * d[a] / 2) * jump[a])
    new = replace(f, size=tuple(size), jump=tuple(jump), start=tuple(start))  # type: ignore[arg-type]
    return new, (k, (1 / s[0], 1 / s[1]), p, d)


def _pool(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    k = _pair(_arg(args, kwargs, 1, "kernel_size", None))
    stride = _arg(args, kwargs, 2, "stride", None)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride)
    p = _pair(_arg(args, kwargs, 3, "padding", 0))
    d = (1.0, 1.0)
    return f.step(k, s, p, d), (k, s, p, d)


def _max_pool(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    k, s, p, _ = _pool(f, x, out, args, kwargs)[1]
    d = _pair(_arg(args, kwargs, 4, "dilation", 1))
    return f.step(k, s, p, d), (k, s, p, d)


def _adaptive_pool(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    # PyTorch's window i covers [floor(i * n / m), ceil((i + 1) * n / m)) of n inputs for m outputs.
    k, s, p = [], [], []
    for n, m in zip(_hw(x), _hw(out)):
        widths = [math.ceil((i + 1) * n / m) - (i * n) // m for i in range(m)]
        k.append(float(max(widths)))
        s.append(n / m)
        p.append((max(widths) - widths[0]) / 2)  # centres the first window where it lies
    layer = (tuple(k), tuple(s), tuple(p), (1.0, 1.0))
    return f.step(*layer), layer  # type: ignore[arg-type]


def _interpolate(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    """Up-sampling by interpolation; the size is the smallest that holds every unit's field.

    Output unit ``o`` samples input position ``x_o = (o + 1/2) * n/m - 1/2`` (``o * (n-1)/(m-1)`` with
    ``align_corners``) and reads the input under it (nearest), its 2 neighbours (bilinear) or 4 (bicubic).
    """
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    align = bool(_arg(args, kwargs, 4, "align_corners", False)) and mode not in ("nearest", "nearest-exact")
    taps = {"bilinear": 2, "linear": 2, "bicubic": 4}.get(mode, 1)
    size, jump, start, kernel = [], [], [], []
    for a, (n, m) in enumerate(zip(_hw(x), _hw(out))):
        integer_scale = m % n == 0
        if align and m > 1:
            step, centre0, reach = (n - 1) / (m - 1), 0.0, float(taps)
        elif taps == 1:  # nearest: o reads floor(o * n / m)
            step = n / m
            centre0, reach = ((-(1 - step) / 2, 1 - step) if integer_scale else (-0.5, 1.0))
        else:
            step, centre0 = n / m, n / m / 2 - 0.5
            reach = taps - step if integer_scale else float(taps)
        size.append(f.size[a] + reach * f.jump[a])  # type: ignore[index]
        jump.append(f.jump[a] * step)
        start.append(f.start[a] + centre0 * f.jump[a])
        kernel.append(float(taps))
    new = replace(f, size=tuple(size), jump=tuple(jump), start=tuple(start))  # type: ignore[arg-type]
    return new, ((kernel[0], kernel[1]), (jump[0] / f.jump[0], jump[1] / f.jump[1]), (0.0, 0.0), (1.0, 1.0))


def _pad(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer]:
    pad = list(_arg(args, kwargs, 1, "pad", ())) + [0, 0, 0, 0]
    left, top = float(pad[0]), float(pad[2])
    new = replace(f, start=(f.start[0] - top * f.jump[0], f.start[1] - left * f.jump[1]))
    return new, ((1.0, 1.0), (1.0, 1.0), (top, left), (1.0, 1.0))


def _getitem(f: _Field, x: Tensor, out: Tensor, args: tuple, kwargs: dict) -> tuple[_Field, Layer] | None:
    """Cropping with slices (U-Net's centre crop of the skip connection): shifts the start."""
    index = args[1] if len(args) > 1 else None
    if not isinstance(index, tuple):
        index = (index,)
    if any(i is Ellipsis for i in index):
        e = index.index(Ellipsis)
        index = index[:e] + (slice(None),) * (x.dim() - len(index) + 1) + index[e + 1:]
    index = index + (slice(None),) * (x.dim() - len(index))
    if len(index) != 4 or not all(isinstance(i, slice) for i in index):
        return None
    start, step = [], []
    for a, (sl, n) in enumerate(zip(index[2:], _hw(x))):
        first, _, st = sl.indices(n)
        if st < 1:
            return None
        start.append(f.start[a] + first * f.jump[a])
        step.append(float(st))
    new = replace(f, jump=(f.jump[0] * step[0], f.jump[1] * step[1]), start=(start[0], start[1]))
    return new, ((1.0, 1.0), (step[0], step[1]), (0.0, 0.0), (1.0, 1.0))


_RULES: dict[str, tuple[str, Callable[..., Any]]] = {
    "conv2d": ("conv", _conv),
    "conv_transpose2d": ("upsample", _conv_transpose),
    "max_pool2d": ("pool", _max_pool),
    "_max_pool2d": ("pool", _max_pool),
    "max_pool2d_with_indices": ("pool", _max_pool),
    "avg_pool2d": ("pool", _pool),
    "lp_pool2d": ("pool", _pool),
    "adaptive_avg_pool2d": ("pool", _adaptive_pool),
    "adaptive_max_pool2d": ("pool", _adaptive_pool),
    "adaptive_max_pool2d_with_indices": ("pool", _adaptive_pool),
    "_adaptive_max_pool2d": ("pool", _adaptive_pool),
    "interpolate": ("upsample", _interpolate),
    "upsample": ("upsample", _interpolate),
    "pad": ("pad", _pad),
    "__getitem__": ("crop", _getitem),
}
