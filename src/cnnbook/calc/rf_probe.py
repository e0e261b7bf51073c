"""Measure a receptive field empirically: back-propagate from one unit to the input of a positive copy.

The result is comparable to :func:`cnnbook.calc.rf_rows.input_region`; the tests check that both agree on
every registered network.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn

from .rf_rows import Region
from .rf_rules import _hw
from .rf_tracer import _Tracer
from .shapes import resolve_model

__all__ = ["probe_receptive_field", "probe_receptive_fields"]


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
