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

The work is split by job: :mod:`cnnbook.calc.rf_rules` (the recurrence and one rule per operation),
:mod:`cnnbook.calc.rf_tracer` (running the network), :mod:`cnnbook.calc.rf_rows` (the rows, one unit's
input region, the text table) and :mod:`cnnbook.calc.rf_probe` (the empirical measurement). This module is
the public entry point and re-exports their public names.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from .rf_probe import probe_receptive_field, probe_receptive_fields
from .rf_rows import Region, RFRow, format_rf_table, input_region
from .rf_rules import rf_step, stack_receptive_field
from .rf_tracer import _trace
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
