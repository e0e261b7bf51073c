"""Output sizes of convolutions and pooling, and a layer-by-layer shape printout.

The size formula is the one every chapter uses (Dumoulin and Visin 2016, *A guide to convolution
arithmetic for deep learning*): a window of ``kernel`` taps, ``dilation`` apart, slides with step
``stride`` over ``size + 2 * padding`` positions, so

    out = floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1.

:func:`layer_shapes` runs a network once (batch 1, eval mode, no gradients) and records the output
shape of every leaf module, which :func:`format_shape_table` prints the way d2l's shape walkthroughs do.

Why not ``torchinfo.summary``, which students meet in most PyTorch code and which the chapters print
beside our tables: the rows here are plain records (name, type, shape) that the calculators, the
diagrams and the tests consume, from a forward hook on each leaf module, the same few lines a student
can read in this file. torchinfo's rows are nested ``LayerInfo`` objects built for display, and its
mult-adds follow another convention (one addition per bias, and the normalisation layers counted),
where the book's come from ``FlopCounterMode`` (:mod:`cnnbook.calc.counting`). The two agree on what they
share: tests/test_calc_shapes_pooling.py checks, for every registered network, that this table has
torchinfo's leaf layers, types and output shapes, and the same parameter total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from .._probe import model_device, probing

__all__ = ["LayerShape", "conv_output_size", "pool_output_size", "smallest_input_side", "layer_shapes",
           "format_shape_table"]


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output height (or width) of a convolution: ``floor((size + 2p - d(k - 1) - 1) / s) + 1``.

    >>> conv_output_size(32, 5)            # LeNet-5's C1: 32 -> 28
    28
    >>> conv_output_size(224, 11, 4, 2)    # AlexNet's conv1 (torchvision): 224 -> 55
    55

    Raises ``ValueError`` when the window does not fit into the padded input (output < 1).
    """
    _check_int("size", size, 1)
    _check_int("kernel", kernel, 1)
    _check_int("stride", stride, 1)
    _check_int("padding", padding, 0)
    _check_int("dilation", dilation, 1)
    span = dilation * (kernel - 1) + 1  # input positions one window covers
    out = (size + 2 * padding - span) // stride + 1
    if out < 1:
        raise ValueError(
            f"A kernel of {kernel} (dilation {dilation}, so it spans {span} positions) does not fit into "
            f"an input of size {size} with padding {padding}: size + 2*padding = {size + 2 * padding} < {span}."
        )
    return out


def pool_output_size(
    size: int, kernel: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False
) -> int:
    """Output size of ``nn.MaxPool2d`` / ``nn.AvgPool2d``; ``stride`` defaults to ``kernel`` as in PyTorch.

    With ``ceil_mode=True`` the last, partial window is kept when it starts inside the input or the
    left padding (PyTorch's rule), e.g. GoogLeNet's 3x3/2 pools: 112 -> 56 instead of 55.
    """
    stride = kernel if stride is None else stride
    _check_int("size", size, 1)
    _check_int("kernel", kernel, 1)
    _check_int("stride", stride, 1)
    _check_int("padding", padding, 0)
    if padding > kernel // 2:
        raise ValueError(f"padding must be at most kernel // 2 = {kernel // 2} (PyTorch's rule); got {padding}.")
    span = size + 2 * padding - kernel  # negative when the window is larger than the padded input
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding only
    if out < 1:  # with ceil_mode a window may overhang the input, as long as it starts inside it
        raise ValueError(
            f"A pooling window of {kernel} (stride {stride}) does not fit into an input of size {size} with "
            f"padding {padding}{' even with ceil_mode' if ceil_mode else ''}."
        )
    return out


def _first(value: int | Sequence[int]) -> int:
    return value if isinstance(value, int) else value[0]


def _output_side(module: nn.Module, side: int) -> int:
    """Output side of a square convolution or pooling layer for a square input; raises ValueError when empty."""
    if isinstance(module, nn.Conv2d):
        padding = module.padding
        if isinstance(padding, str):  # "same" keeps the size, "valid" is no padding
            return side if padding == "same" else conv_output_size(
                side, _first(module.kernel_size), _first(module.stride), 0, _first(module.dilation))
        return conv_output_size(side, _first(module.kernel_size), _first(module.stride), _first(padding),
                                _first(module.dilation))
    return pool_output_size(side, _first(module.kernel_size), _first(module.stride), _first(module.padding),
                            getattr(module, "ceil_mode", False))


def smallest_input_side(layers: nn.Module, largest: int = 4096) -> int:
    """Smallest H (= W) for which every convolution and max/average pooling of ``layers``, taken in
    order, has a non-empty output (a chain such as AlexNet's ``features``: 63 for both layouts).

    Raises ``ValueError`` when no side up to ``largest`` fits.
    """
    spatial = [m for m in layers.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    for side in range(1, largest + 1):
        size = side
        try:
            for module in spatial:
                size = _output_side(module, size)
        except ValueError:
            continue
        return side
    raise ValueError(f"No input side up to {largest} gives a non-empty output for these layers.")


@dataclass(frozen=True)
class LayerShape:
    """One leaf module's output, as recorded by :func:`layer_shapes`."""

    name: str                       # dotted module path, e.g. "features.0"
    type: str                       # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]   # including the batch dimension (1)


def _first_tensor(out: object) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def default_input_size(model: nn.Module) -> tuple[int, int, int]:
    """The input (C, H, W) a course network expects when none is given, else ``ValueError``.

    A network of the course (it has ``in_channels`` and ``min_input_size``) takes its fixed input size,
    or 224x224 (more if its smallest input is larger); any other module needs an explicit ``input_size``.
    """
    fixed = getattr(model, "fixed_input_size", None)
    channels = getattr(model, "in_channels", None) if hasattr(model, "min_input_size") else None
    if channels is not None and fixed is not None:
        return (channels, *fixed)
    if channels is not None:
        side = max(224, getattr(model, "min_input_size", 1))
        return (channels, side, side)
    raise ValueError(f"Pass input_size=(C, H, W): {type(model).__name__} does not say which input it expects.")


def resolve_model(model: nn.Module | str, input_size: Sequence[int] | None) -> tuple[nn.Module, tuple[int, ...]]:
    """A model built from a registry name (at its native input size) or the module itself."""
    if isinstance(model, str):
        from ..registry import get_model, get_model_info

        info = get_model_info(model)
        return get_model(model), tuple(input_size or info.input_size)
    if input_size is None:
        return model, default_input_size(model)
    if len(input_size) != 3:
        raise ValueError(f"input_size must be (C, H, W) without the batch dimension; got {tuple(input_size)}.")
    return model, tuple(input_size)


def layer_shapes(model: nn.Module | str, input_size: Sequence[int] | None = None) -> list[LayerShape]:
    """Run ``model`` once on a batch of one ``input_size`` image and record every leaf module's output shape.

    ``model`` is a module or a registry name; ``input_size`` is ``(C, H, W)`` (the native size of a
    registered network by default). Runs in eval mode without gradients and restores the mode after.
    A module called several times (a shared ReLU) gives one row per call, in execution order.
    """
    model, size = resolve_model(model, input_size)
    rows: list[LayerShape] = []
    handles = []

    def hook(name: str):
        def record(module: nn.Module, args: object, out: object) -> None:
            tensor = _first_tensor(out)
            if tensor is not None:
                rows.append(LayerShape(name, type(module).__name__, tuple(tensor.shape)))

        return record

    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            handles.append(module.register_forward_hook(hook(name)))
    with probing(model, handles):
        model(torch.zeros(1, *size, device=model_device(model)))
    return rows


def format_shape_table(rows: Sequence[LayerShape]) -> str:
    """The rows as aligned text, one leaf module per line, e.g. ``features.0  Conv2d  (1, 6, 28, 28)``."""
    header = ("layer", "type", "output shape")
    lines = [(r.name, r.type, str(r.output_shape)) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(line.rstrip() for line in out)
