"""Receptive fields: which region of the input image one unit of a layer sees.

The arithmetic follows Araujo, Norris and Sim 2019 (*Computing Receptive Fields of Convolutional Neural
Networks*, Distill) and Dumoulin and Visin 2016. Along each axis a layer with kernel ``k``, stride ``s``,
padding ``p`` and dilation ``d`` maps the field of its input units to that of its output units:

    jump   j_out     = j_in * s                           (input pixels between neighbouring units)
    size   r_out     = r_in + (k - 1) * d * j_in           (input pixels one unit sees)
    start  start_out = start_in + ((k - 1) / 2 * d - p) * j_in   (centre of the first unit's field)

starting from the image itself: ``r = 1, j = 1, start = 0`` (pixel centres at 0, 1, 2, ...). Unit ``i``
then sees the pixels ``start + i * j - (r - 1) / 2`` to ``start + i * j + (r - 1) / 2``. Two stacked 3x3
convolutions see 5x5, three see 7x7 (VGG's argument).

Networks are not all chains. :func:`receptive_fields` runs the network once and follows every tensor:
each convolution and pooling applies the rule above, and where paths merge (Inception's and DenseNet's
concatenations, ResNet's additions, U-Net's skips) the merged units see the union of what the inputs see,
i.e. the largest field over the paths. A 1x1 summary of the whole map multiplied back onto it
(squeeze-and-excitation) makes every unit depend on the whole image: the row's ``global_context`` is
then ``True`` while ``size`` stays the local field of the convolution path.

:func:`probe_receptive_field` measures the same thing empirically: it back-propagates from one unit to
the input of a copy of the network whose weights are all positive, and returns the region where the
gradient is not zero. The tests check that both agree on every registered network.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .shapes import resolve_model

__all__ = [
    "RFRow",
    "Region",
    "rf_step",
    "stack_receptive_field",
    "receptive_fields",
    "receptive_field_of",
    "layer_fields",
    "input_region",
    "probe_receptive_field",
    "probe_receptive_fields",
    "format_rf_table",
]

Pair = tuple[float, float]


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


# ---- the table rows ---------------------------------------------------------------------------------


def _collapse(pair: Sequence[float], as_float: bool = False) -> Any:
    values = [float(v) for v in pair]
    if not as_float:
        values = [int(round(v)) if abs(v - round(v)) < 1e-9 else round(v, 6) for v in values]  # type: ignore[misc]
    else:
        values = [round(v, 6) + 0.0 for v in values]
    return values[0] if values[0] == values[1] else tuple(values)


def _as_pair(value: Any) -> Pair:
    return (float(value[0]), float(value[1])) if isinstance(value, tuple) else (float(value), float(value))


class Region(NamedTuple):
    """A rectangle of input pixels, half-open like a slice: ``image[y0:y1, x0:x1]``."""

    y0: int
    y1: int
    x0: int
    x1: int


@dataclass(frozen=True)
class RFRow:
    """Receptive field of one layer's output units.

    ``kernel``, ``stride``, ``padding``, ``dilation``, ``size``, ``jump`` and ``start`` are single numbers
    when height and width agree (almost always), ``(height, width)`` pairs otherwise (Inception-v3's 1x7
    convolutions); the ``*_hw`` properties always give the pair. For a ``"block"`` row (a residual or
    inception block, several layers) the kernel, stride and padding are those of the single layer that
    would have the same field. Sizes are in input pixels; ``start`` is the centre of unit (0, 0)'s field
    in input pixel coordinates (it can lie in the padding, i.e. be negative).
    """

    name: str                 # module path ("input" for the image; "F.<function>" for a bare function call)
    kind: str                 # "input", "conv", "pool", "upsample", "pad", "crop", "block"; "pointwise"
                              # for layers that keep the field (BN, ReLU), listed by receptive_field_of only
    kernel: Any
    stride: Any
    padding: Any
    dilation: Any
    size: Any                 # receptive field r, in input pixels
    jump: Any                 # input pixels between neighbouring units
    start: Any                # centre of the first unit's field, in input pixels
    channels: int
    out_hw: tuple[int, int]
    global_context: bool = False  # True once a global summary (squeeze-excitation) is mixed back in
    covered: Region | None = None  # the input pixels seen by at least one unit of the layer

    @property
    def size_hw(self) -> Pair:
        return _as_pair(self.size)

    @property
    def jump_hw(self) -> Pair:
        return _as_pair(self.jump)

    @property
    def start_hw(self) -> Pair:
        return _as_pair(self.start)


def _row(name: str, kind: str, layer: Layer, field: _Field, out: Tensor) -> RFRow:
    size = field.size if field.size is not None else (float("nan"), float("nan"))
    return RFRow(
        name=name,
        kind=kind,
        kernel=_collapse(layer[0]),
        stride=_collapse(layer[1]),
        padding=_collapse(layer[2]),
        dilation=_collapse(layer[3]),
        size=_collapse(size),
        jump=_collapse(field.jump),
        start=_collapse(field.start, as_float=True),
        channels=_channels(out),
        out_hw=_hw(out),
        global_context=field.global_context,
        covered=None if field.cover is None else Region(
            math.floor(field.cover[0][0] + 1e-9), math.ceil(field.cover[0][1] - 1e-9) + 1,
            math.floor(field.cover[1][0] + 1e-9), math.ceil(field.cover[1][1] - 1e-9) + 1,
        ),
    )


def _equivalent_layer(before: _Field, after: _Field) -> Layer:
    """The single layer (kernel, stride, padding) that maps ``before`` to ``after`` (a block's summary)."""
    k, s, p = [], [], []
    for a in (0, 1):
        j = before.jump[a]
        if before.size is None or after.size is None:
            k.append(float("nan"))
            p.append(float("nan"))
        else:
            k.append((after.size[a] - before.size[a]) / j + 1)
            p.append((k[-1] - 1) / 2 - (after.start[a] - before.start[a]) / j)
        s.append(after.jump[a] / j)
    return (k[0], k[1]), (s[0], s[1]), (p[0], p[1]), (1.0, 1.0)


# ---- the tracer ---------------------------------------------------------------------------------------

_ATTR = "_cnnbook_rf"
_AXES = "_cnnbook_rf_axes"  # (height, width) dimensions of a tensor whose layout is not N x C x H x W
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
        try:
            with self:
                self.model(x)
        finally:
            for handle in handles:
                handle.remove()


# ---- public functions -------------------------------------------------------------------------------


def _trace(model: nn.Module, size: Sequence[int]) -> _Tracer:
    tracer = _Tracer(model)
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.float32
        with torch.no_grad():
            tracer.run(torch.zeros(1, *size, device=device, dtype=dtype))
    finally:
        model.train(was_training)
    return tracer


def receptive_fields(model_or_name: nn.Module | str, input_size: Sequence[int] | None = None) -> list[RFRow]:
    """Receptive field size, jump and start after each layer of the network's main path.

    ``model_or_name`` is a module or a registry name; ``input_size`` is ``(C, H, W)`` (default: the
    network's native size), which sets ``out_hw`` but not the fields themselves. The rows are, in
    execution order: the input, every convolution and pooling outside blocks, and one row per block
    (residual, inception, dense block, U-Net stage), whose kernel/stride/padding are those of the single
    equivalent layer. Paths that merge contribute the largest field. Every module's output, including
    layers inside blocks, can be looked up with :func:`receptive_field_of`.
    """
    model, size = resolve_model(model_or_name, input_size)
    return _trace(model, size).rows


def layer_fields(model_or_name: nn.Module | str, input_size: Sequence[int] | None = None) -> dict[str, RFRow]:
    """The receptive field of every module's output (inside blocks too), by dotted name, in execution order.

    Layers that keep the field (BatchNorm, ReLU) appear with kind ``"pointwise"``; a module called
    several times gets ``name:2``, ``name:3`` for its later calls.
    """
    model, size = resolve_model(model_or_name, input_size)
    return _trace(model, size).every


def receptive_field_of(
    model_or_name: nn.Module | str, layer_name: str, input_size: Sequence[int] | None = None
) -> RFRow:
    """The receptive field of one module's output (any module, inside blocks too), by its dotted name."""
    every = layer_fields(model_or_name, input_size)
    if layer_name not in every:
        raise ValueError(
            f"No spatial layer named {layer_name!r}. Layers with a receptive field: {', '.join(list(every)[:12])}"
            f"{', ...' if len(every) > 12 else ''} ({len(every)} in all)."
        )
    return every[layer_name]


def input_region(rf_row: RFRow, out_y: int, out_x: int, input_hw: Sequence[int]) -> Region:
    """The input pixels unit ``(out_y, out_x)`` of a layer sees, clipped to an ``input_hw`` image.

    Along each axis unit ``i`` is centred on ``start + i * jump`` and sees ``size`` pixels around it.
    For a ``global_context`` row this is the local field; the unit also depends on the whole image.
    """
    h, w = rf_row.out_hw
    if not (0 <= out_y < h and 0 <= out_x < w):
        raise ValueError(f"Unit ({out_y}, {out_x}) is outside the {h}x{w} output of {rf_row.name!r}.")
    bounds = []
    covered = rf_row.covered or Region(0, input_hw[0], 0, input_hw[1])
    limits = ((covered.y0, covered.y1), (covered.x0, covered.x1))
    for i, size, jump, start, n, (first, end) in zip(
        (out_y, out_x), rf_row.size_hw, rf_row.jump_hw, rf_row.start_hw, input_hw, limits
    ):
        centre = start + i * jump
        lo = math.floor(centre - (size - 1) / 2 + 1e-9)
        hi = math.ceil(centre + (size - 1) / 2 - 1e-9) + 1
        first, end = max(first, 0), min(end, n)
        bounds += [min(max(lo, first), end), min(max(hi, first), end)]
    return Region(*bounds)


def _positive_copy(model: nn.Module) -> nn.Module:
    """A float64 copy in eval mode whose layers all average their inputs with positive weights."""
    probe = copy.deepcopy(model).double().eval().requires_grad_(False)  # only the input needs a gradient
    with torch.no_grad():
        for module in probe.modules():
            for name, param in module.named_parameters(recurse=False):
                if name == "bias" or (isinstance(module, nn.modules.batchnorm._NormBase) and name != "weight"):
                    param.zero_()
                elif param.dim() > 1:
                    param.fill_(1.0 / (param.numel() / param.shape[0]))  # weights average their inputs
                else:
                    param.fill_(1.0)
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
                module.running_mean.zero_()  # type: ignore[union-attr]
                module.running_var.fill_(1.0)  # type: ignore[union-attr]
    return probe


def probe_receptive_fields(
    model: nn.Module | str,
    layer_names: Sequence[str],
    input_size: Sequence[int] | None = None,
) -> dict[str, Region]:
    """:func:`probe_receptive_field` for several layers' centre units, with one forward pass."""
    net, size = resolve_model(model, input_size)
    tracer = _Tracer(_positive_copy(net), probe=True, capture=layer_names)
    x = torch.ones(1, *size, dtype=torch.float64, requires_grad=True)
    tracer.run(x)
    missing = [name for name in layer_names if name not in tracer.captured]
    if missing:
        raise ValueError(f"No spatial layer named {missing[0]!r} ran; receptive_fields() lists the names.")
    regions = {}
    for name in layer_names:
        out = tracer.captured[name]
        h, w = _hw(out)
        regions[name] = _nonzero_region(out[0, :, h // 2, w // 2].sum(), x)
    return regions


def _nonzero_region(unit: Tensor, x: Tensor) -> Region:
    (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
    mask = grad[0].abs().sum(0) > 0
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    if len(rows) == 0:
        raise RuntimeError("The probe's gradient vanished everywhere; the network has an operation it cannot probe.")
    return Region(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def probe_receptive_field(
    model: nn.Module | str,
    layer_name: str,
    input_size: Sequence[int] | None = None,
    unit: tuple[int, int] | None = None,
) -> Region:
    """Measure the receptive field: the input region where d(unit)/d(input) is not zero.

    Back-propagates from ``unit`` (default: the centre unit) of layer ``layer_name``'s output, summed
    over channels, to a positive input, through a float64 copy of the network in eval mode whose
    convolution and linear weights are positive constants (each layer averages its inputs), biases zero
    and batch normalisation the identity. Everything stays positive, so ReLUs pass gradients and no
    contributions cancel. Max-pooling would send the gradient of tied values to one input only, so it
    is replaced by average pooling with the same windows (same support); saturating ReLU6 and
    hard-sigmoid are replaced by ReLU and sigmoid. The result is comparable to :func:`input_region`.
    """
    net, size = resolve_model(model, input_size)
    tracer = _Tracer(_positive_copy(net), probe=True, capture=[layer_name])
    x = torch.ones(1, *size, dtype=torch.float64, requires_grad=True)
    tracer.run(x)
    if layer_name not in tracer.captured:
        raise ValueError(f"No spatial layer named {layer_name!r} ran; receptive_fields() lists the names.")
    out = tracer.captured[layer_name]
    h, w = _hw(out)
    cy, cx = unit if unit is not None else (h // 2, w // 2)
    if not (0 <= cy < h and 0 <= cx < w):
        raise ValueError(f"Unit ({cy}, {cx}) is outside the {h}x{w} output of {layer_name!r}.")
    return _nonzero_region(out[0, :, cy, cx].sum(), x)


def format_rf_table(rows: Sequence[RFRow]) -> str:
    """The rows as aligned text: layer, kind, k, s, p, output size and channels, r, jump, start."""
    header = ("layer", "kind", "k", "s", "p", "output", "r", "jump", "start")

    def fmt(v: Any) -> str:
        if isinstance(v, tuple):
            return "x".join(fmt(x) for x in v)
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    lines = [
        (r.name, r.kind, fmt(r.kernel), fmt(r.stride), fmt(r.padding), f"{r.channels}x{r.out_hw[0]}x{r.out_hw[1]}",
         fmt(r.size) + ("+global" if r.global_context else ""), fmt(r.jump), fmt(r.start))
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in lines]
    return "\n".join(line.rstrip() for line in out)
