"""The comparison of a student's result with a reference, and the visible-test helpers built on it.

:func:`compare` is a pure function of the two values and a row of the tolerance table: it never reads
this process's numeric flags (the record of a run carries the flags seen by the kernel that ran it,
and the judge checks those; see :mod:`cnnbook.grading.checks`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from .numerics import TOLERANCES, GradingError, tolerance_for

def _fmt_index(flat: int, shape: Sequence[int]) -> str:
    if len(shape) == 0:
        return "()"
    idx = []
    for size in reversed(shape):
        idx.append(flat % size)
        flat //= size
    return str(tuple(reversed(idx)))


def _compare_tensor(
    actual: Any, expected: Tensor, name: str, dtype: torch.dtype | None, device_type: str | None = None
) -> list[str]:
    if not isinstance(actual, Tensor):
        return [f"{name}: expected a torch.Tensor of shape {tuple(expected.shape)}, got {type(actual).__name__}"]
    if type(actual) not in (Tensor, nn.Parameter):
        return [f"{name}: expected a plain torch.Tensor, got the subclass {type(actual).__name__}"]
    if tuple(actual.shape) != tuple(expected.shape):
        return [f"{name}: shape differs: expected {tuple(expected.shape)}, got {tuple(actual.shape)}"]
    if not expected.is_floating_point():  # integer or bool results are compared exactly
        if actual.dtype != expected.dtype:
            return [f"{name}: dtype differs: expected {expected.dtype}, got {actual.dtype}"]
        wrong = actual.detach().cpu() != expected
        if wrong.any():
            first = int(wrong.flatten().nonzero()[0])
            return [
                f"{name}: {int(wrong.sum())} of {wrong.numel()} values differ; first at index "
                f"{_fmt_index(first, expected.shape)}: got {actual.flatten()[first].item()}, "
                f"expected {expected.flatten()[first].item()}"
            ]
        return []
    want_dtype = dtype or actual.dtype
    if actual.dtype != want_dtype:
        return [f"{name}: dtype differs: expected {want_dtype}, got {actual.dtype}"]
    if not actual.is_floating_point():
        return [f"{name}: expected a floating-point tensor, got dtype {actual.dtype}"]
    device_type = device_type or actual.device.type
    got = actual.detach().to("cpu", torch.float64)
    exp = expected.to(torch.float64)
    finite = torch.isfinite(got)
    if not bool(finite.all()) and bool(torch.isfinite(exp).all()):
        bad = (~finite).flatten().nonzero()
        first = int(bad[0])
        return [
            f"{name}: contains {int(torch.isnan(got).sum())} NaN and {int(torch.isinf(got).sum())} infinite "
            f"values (first at index {_fmt_index(first, exp.shape)}); the reference is finite"
        ]
    if exp.numel() == 0:
        return []
    tol = tolerance_for(device_type, actual.dtype)
    scale = float(exp.abs().max()) or 1.0
    allowed = tol.atol * scale + tol.rtol * exp.abs()
    err = (got - exp).abs()
    err = torch.where(torch.isnan(err), torch.full_like(err, math.inf), err)
    over = err > allowed
    if not bool(over.any()):
        return []
    ratio = (err / allowed).flatten()
    worst = int(torch.argmax(ratio))
    return [
        f"{name}: {int(over.sum())} of {over.numel()} values differ beyond the {device_type} {actual.dtype} "
        f"tolerance. Largest error {float(err.flatten()[worst]):.3g} at index {_fmt_index(worst, exp.shape)}: "
        f"got {float(got.flatten()[worst]):.6g}, expected {float(exp.flatten()[worst]):.6g} "
        f"(allowed {float(allowed.flatten()[worst]):.2g} = {tol.atol:g} x scale {scale:.3g} "
        f"+ {tol.rtol:g} x |expected|)"
    ]


def compare(
    actual: Any, expected: Any, name: str = "result", dtype: torch.dtype | None = None, device_type: str | None = None
) -> list[str]:
    """Everything that differs between ``actual`` and ``expected``, as messages (empty when equal).

    ``expected`` is a float64 CPU tensor (compared with :data:`TOLERANCES`), an integer or bool tensor
    (exact), an int, a float (as a float64 CPU result), a str, a bool, None, or a tuple, list or dict of
    these (compared element by element). ``dtype`` is the dtype the student's floating-point tensors
    must have (the dtype the grader ran them in); None accepts any floating dtype. ``device_type``
    chooses the row of :data:`TOLERANCES` instead of the result's own device:
    the unit tests use it to exercise the CUDA branch on a machine without a GPU.
    """
    if isinstance(expected, Tensor):
        return _compare_tensor(actual, expected, name, dtype, device_type)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if isinstance(actual, Tensor) and actual.dim() == 0 and isinstance(expected, bool):
            actual = bool(actual)
        if type(actual) is not type(expected) or actual != expected:
            return [f"{name}: expected {expected!r}, got {actual!r}"]
        return []
    if isinstance(expected, numbers.Integral):
        if isinstance(actual, Tensor) and actual.dim() == 0 and not actual.is_floating_point():
            actual = int(actual)
        if isinstance(actual, bool) or not isinstance(actual, numbers.Integral):
            hint = " (use // for integer division)" if isinstance(actual, float) else ""
            return [f"{name}: expected the int {expected}, got {type(actual).__name__} {actual!r}{hint}"]
        if int(actual) != expected:
            return [f"{name}: expected {expected}, got {int(actual)}"]
        return []
    if isinstance(expected, numbers.Real):
        if isinstance(actual, Tensor) and actual.dim() == 0:
            actual = actual.item()
        if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
            return [f"{name}: expected a number close to {expected!r}, got {type(actual).__name__} {actual!r}"]
        tol = TOLERANCES[("cpu", torch.float64)]
        allowed = tol.atol * max(abs(expected), 1.0) + tol.rtol * abs(expected)
        if not abs(float(actual) - expected) <= allowed:
            return [f"{name}: expected {expected!r}, got {float(actual)!r} (error {abs(float(actual) - expected):.3g})"]
        return []
    if isinstance(expected, (tuple, list)):
        if isinstance(actual, Tensor) or not isinstance(actual, (tuple, list)):
            return [f"{name}: expected a tuple or list of {len(expected)} items, got {type(actual).__name__}"]
        if len(actual) != len(expected):
            return [f"{name}: expected {len(expected)} items, got {len(actual)}"]
        problems: list[str] = []
        for i, (a, e) in enumerate(zip(actual, expected)):
            problems += compare(a, e, f"{name}[{i}]", dtype, device_type)
        return problems
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{name}: expected a dict with keys {sorted(expected)}, got {type(actual).__name__}"]
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        if missing or extra:
            return [f"{name}: keys differ: missing {missing}, unexpected {extra}"]
        problems = []
        for key in expected:
            problems += compare(actual[key], expected[key], f"{name}[{key!r}]", dtype, device_type)
        return problems
    raise TypeError(f"cannot compare against a reference of type {type(expected).__name__}")


def assert_close(
    actual: Any, expected: Any, name: str = "result", dtype: torch.dtype | None = None, device_type: str | None = None
) -> None:
    """Raise :class:`GradingError` with every difference :func:`compare` finds (same arguments)."""
    if isinstance(expected, Tensor) and expected.is_floating_point() and expected.dtype != torch.float64:
        expected = expected.to(torch.float64)
    problems = compare(actual, expected, name, dtype, device_type)
    if problems:
        raise GradingError("\n".join(problems))


def assert_shape(actual: Any, shape: Sequence[int], name: str = "result") -> None:
    """Visible-test helper: ``actual`` is a tensor of ``shape``."""
    if not isinstance(actual, Tensor):
        raise GradingError(f"{name}: expected a torch.Tensor of shape {tuple(shape)}, got {type(actual).__name__}")
    if tuple(actual.shape) != tuple(shape):
        raise GradingError(f"{name}: shape differs: expected {tuple(shape)}, got {tuple(actual.shape)}")


def check(condition: Any, name: str, detail: str = "") -> None:
    """A named check: raise :class:`GradingError` saying which check failed (and why) when false."""
    if not condition:
        raise GradingError(f"check failed: {name}" + (f" ({detail})" if detail else ""))


def band_problems(value: Any, band: Sequence[float], name: str = "answer") -> list[str]:
    """Why ``value`` is not a real number in the closed interval ``band`` = [lo, hi] (empty when it is).

    Used for measured results (an accuracy after a short training run, a ratio of gradient norms),
    which vary with the machine and are checked against a range instead of one expected value.
    """
    lo, hi = float(band[0]), float(band[1])
    if isinstance(value, Tensor) and value.dim() == 0 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return [f"{name}: expected a number between {lo:g} and {hi:g}, got {type(value).__name__} {value!r}"]
    if not math.isfinite(float(value)):
        return [f"{name}: your value {float(value)!r} is not a finite number; expected one in [{lo:g}, {hi:g}]"]
    if not lo <= float(value) <= hi:
        return [f"{name}: your value {float(value):.6g} is outside the expected band [{lo:g}, {hi:g}]"]
    return []


def check_band(value: Any, band: Sequence[float], name: str = "answer") -> None:
    """Visible-test helper: raise :class:`GradingError` when ``value`` is not in ``band`` (same message
    as the grader's for a reference item with a ``"band"``)."""
    problems = band_problems(value, band, name)
    if problems:
        raise GradingError("\n".join(problems))
