"""Pooling windows, overlapping pooling and the AlexNet 1D example.

Krizhevsky, Sutskever, Hinton 2012 (*ImageNet Classification with Deep Convolutional Neural Networks*,
section 3.4): a pooling layer is a grid of windows of size ``z`` spaced ``s`` apart. With ``s = z``
neighbouring windows do not overlap (traditional pooling); with ``s < z`` they share ``z - s`` inputs.
AlexNet pools with ``z = 3, s = 2``, which lowered its top-1 / top-5 error by 0.4% / 0.3% compared with
``z = s = 2`` at the same output size.

The lecture's example, ``0 0 5 0 0 6 0 0 3 0 0 4 0 0``, gives ``0 5 6 0 3 4 0`` with ``z = s = 2`` and
``5 5 6 3 3 4 0`` with ``z = 3, s = 2``: seven outputs in both cases, because the last window of the
overlapping grid runs past the end of the signal and is kept, cut short. That is PyTorch's
``ceil_mode=True``, the default here; ``ceil_mode=False`` (PyTorch's default) drops such windows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["pool_windows", "pool1d", "pool2d", "overlap", "coverage"]

_MODES = ("max", "avg")


def _check(length: int, window: int, stride: int) -> None:
    for name, value in (("length", length), ("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    if window > length:
        raise ValueError(f"The window ({window}) is longer than the input ({length}): no output can be computed.")


def overlap(window: int, stride: int) -> int:
    """Inputs shared by two neighbouring windows: ``max(window - stride, 0)`` (AlexNet: 3 - 2 = 1)."""
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    return max(window - stride, 0)


def pool_windows(length: int, window: int, stride: int, ceil_mode: bool = True) -> list[tuple[int, int]]:
    """``(start, end)`` of the inputs each output sees, half-open like a slice: ``signal[start:end]``.

    >>> pool_windows(14, 3, 2)[-2:]   # the last window runs past the end and is cut to [12, 14)
    [(10, 13), (12, 14)]

    ``ceil_mode=True`` keeps a last window that starts inside the input but runs past its end
    (PyTorch's ``ceil_mode=True`` without padding); ``False`` keeps only whole windows.
    """
    _check(length, window, stride)
    span = length - window
    count = (-(-span // stride) if ceil_mode else span // stride) + 1
    if (count - 1) * stride >= length:  # a last window must start inside the input
        count -= 1
    return [(i * stride, min(i * stride + window, length)) for i in range(count)]


def coverage(length: int, window: int, stride: int, ceil_mode: bool = True) -> list[int]:
    """How many windows see each input: 1s with ``s = z``, 2s at the shared inputs with ``s < z``, 0s if skipped."""
    counts = [0] * length
    for start, end in pool_windows(length, window, stride, ceil_mode):
        for i in range(start, end):
            counts[i] += 1
    return counts


def _reduce(values: np.ndarray, mode: str) -> float:
    return float(values.max() if mode == "max" else values.mean())


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}.")


def pool1d(signal: Sequence[float], window: int, stride: int, mode: str = "max", ceil_mode: bool = True) -> list[float]:
    """Max (or average) of each window of ``signal``; the AlexNet example:

    >>> pool1d([0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0], window=3, stride=2)
    [5.0, 5.0, 6.0, 3.0, 3.0, 4.0, 0.0]

    A cut-short last window is averaged over the inputs it holds (as PyTorch does without padding).
    """
    _check_mode(mode)
    x = np.asarray(signal, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"signal must be one-dimensional; got shape {x.shape}.")
    return [_reduce(x[start:end], mode) for start, end in pool_windows(len(x), window, stride, ceil_mode)]


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    pair = tuple(value)  # type: ignore[arg-type]
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair; got {value!r}.")
    return pair  # type: ignore[return-value]


def pool2d(
    image: Sequence[Sequence[float]] | np.ndarray,
    window: int | tuple[int, int],
    stride: int | tuple[int, int],
    mode: str = "max",
    ceil_mode: bool = True,
) -> np.ndarray:
    """Max (or average) pooling of a 2-D array (a list of rows or an ``H x W`` array) with a square or
    ``(height, width)`` window and stride; rows and columns use the windows of :func:`pool_windows`."""
    _check_mode(mode)
    x = np.asarray(image, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"image must be two-dimensional (H x W); got shape {x.shape}.")
    (zh, zw), (sh, sw) = _pair("window", window), _pair("stride", stride)
    rows = pool_windows(x.shape[0], zh, sh, ceil_mode)
    cols = pool_windows(x.shape[1], zw, sw, ceil_mode)
    return np.array([[_reduce(x[r0:r1, c0:c1], mode) for c0, c1 in cols] for r0, r1 in rows])
