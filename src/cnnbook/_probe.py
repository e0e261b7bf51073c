"""Run a model once to measure it: the one place that sets evaluation mode, registers nothing twice and restores.

The calculators (shapes, mult-adds, receptive fields, diagram rows) and the visualisations all run a model
once with hooks that record what passes through. :func:`probing` is that pattern written once: evaluation
mode (no dropout, BN with running statistics) and no autograd inside the block, then, however the block
ends (an exception included), every hook handle removed and the model's own training mode restored.

This module imports nothing from the package, so calc/ and visualize.py can both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["model_device", "probing"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter; the CPU for a model without parameters."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextmanager
def probing(model: nn.Module, handles: Iterable[RemovableHandle] = (), grad: bool = False) -> Iterator[nn.Module]:
    """``with probing(model, handles): model(x)``: one measuring forward pass in evaluation mode.

    ``handles`` are the hooks registered for the measurement (removed on exit); ``grad=True`` keeps autograd
    on (a projection to the input needs it). The model's training mode is restored on exit.
    """
    handles = list(handles)
    was_training = model.training
    try:
        model.eval()
        with nullcontext() if grad else torch.no_grad():
            yield model
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
