"""The rows of a receptive-field table: one layer's field as numbers, the input region of one unit, the text table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from torch import Tensor

from .rf_rules import Layer, Pair, _channels, _Field, _hw, _pair

__all__ = ["RFRow", "Region", "input_region", "format_rf_table"]


# ---- the rows ---------------------------------------------------------------------------------


def _collapse(pair: Sequence[float], as_float: bool = False) -> Any:
    values = [float(v) for v in pair]
    if not as_float:
        values = [int(round(v)) if abs(v - round(v)) < 1e-9 else round(v, 6) for v in values]  # type: ignore[misc]
    else:
        values = [round(v, 6) + 0.0 for v in values]
    return values[0] if values[0] == values[1] else tuple(values)


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
        return _pair(self.size)

    @property
    def jump_hw(self) -> Pair:
        return _pair(self.jump)

    @property
    def start_hw(self) -> Pair:
        return _pair(self.start)


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
