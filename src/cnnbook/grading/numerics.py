"""Tolerances and numeric flags: how close a float result must be, and the torch settings that keep it so.

The table and the rule are documented in the package docstring (:mod:`cnnbook.grading`).
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch

# The dtype the grader runs student code in (inputs and loaded weights are cast to it).
GRADING_DTYPE = torch.float32


class GradingError(AssertionError):
    """A failed check. The message says what differs; nbgrader shows it to the student."""


@dataclass(frozen=True)
class Tolerance:
    """Bounds of one row of :data:`TOLERANCES` (see the module docstring for the rule)."""

    rtol: float  # relative to each expected element
    atol: float  # relative to the scale of the reference, max |expected|
    why: str = ""


TOLERANCES: dict[tuple[str, torch.dtype], Tolerance] = {
    ("cpu", torch.float64): Tolerance(1e-10, 1e-10, "float64 vs float64: summation order only"),
    ("cpu", torch.float32): Tolerance(1e-5, 1e-5, "float32 rounding grown over sums of ~1e3 terms"),
    ("cpu", torch.float16): Tolerance(1e-2, 1e-2, "10-bit mantissa"),
    ("cpu", torch.bfloat16): Tolerance(5e-2, 5e-2, "7-bit mantissa"),
    ("cuda", torch.float64): Tolerance(1e-9, 1e-9, "other algorithms and summation orders"),
    ("cuda", torch.float32): Tolerance(1e-4, 1e-4, "TF32 off; other cuDNN/cuBLAS algorithms"),
    ("cuda", torch.float16): Tolerance(1e-2, 1e-2, "10-bit mantissa"),
    ("cuda", torch.bfloat16): Tolerance(5e-2, 5e-2, "7-bit mantissa"),
}


def tolerance_for(device_type: str, dtype: torch.dtype) -> Tolerance:
    """The row of :data:`TOLERANCES` for a result on ``device_type`` ("cpu", "cuda") in ``dtype``."""
    key = ("cpu" if device_type == "cpu" else "cuda", dtype)
    if key not in TOLERANCES:
        raise GradingError(f"no tolerance for {dtype} results on {device_type}: return a floating-point tensor")
    return TOLERANCES[key]


# ---- numeric flags ---------------------------------------------------------------------------------
# Leaf precision settings of torch >= 2.9 ("ieee" = full float32; "tf32"/"bf16" = reduced), by the
# device whose results they affect. The legacy switches (allow_tf32, set_float32_matmul_precision)
# write to these leaves, so reading the leaves catches both APIs.
_PRECISION_LEAVES = {
    "cuda": ("cuda.matmul", "cudnn.conv", "cudnn.rnn"),
    "cpu": ("mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn"),
}


def _leaf(path: str) -> Any:
    return functools.reduce(getattr, path.split("."), torch.backends)


def _effective_precision(path: str) -> str:
    """A leaf's precision, following "none" (inherit) up to its backend and to torch.backends."""
    backend = _leaf(path.split(".")[0])
    chain = (_leaf(path), backend, torch.backends)
    for value in (getattr(obj, "fp32_precision", "none") for obj in chain):
        if value != "none":
            return value
    return "ieee"


def _has_precision_leaves() -> bool:
    try:
        _leaf("cuda.matmul").fp32_precision  # noqa: B018
        return True
    except AttributeError:
        return False


def enforce_numerics() -> None:
    """Full float32 precision (no TF32, no bf16 matmuls, no oneDNN on the CPU) and deterministic algorithms.

    Called by the checkers before they run student code. ``warn_only=True``: an operation without a
    deterministic CUDA kernel warns instead of failing (the tolerance absorbs its noise).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    # The legacy switches first (they also reset what torch.get_float32_matmul_precision() reports),
    # then every leaf of the new API, which is what the kernels read.
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if _has_precision_leaves():
        for leaves in _PRECISION_LEAVES.values():
            for path in leaves:
                _leaf(path).fp32_precision = "ieee"
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    # oneDNN off: on some CPUs its AVX-512 backward convolutions return float32 gradients about 2e-3 off
    # (seen on an AMD EPYC with AVX-512 BF16: every ResNet-20 weight gradient, while torch's own kernels
    # stay within 2e-6 of float64), beyond the float32 tolerance; a correct answer would score 0 there.
    torch.backends.mkldnn.enabled = False
    _use_deterministic_algorithms()


def _use_deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without importing TorchInductor.

    The public call imports ``torch._inductor`` to set its own flag: 3 s of CPU in every grading kernel,
    a third of a student's grading time. That flag only steers ``torch.compile``; while Inductor is not
    loaded, nothing has been compiled, and its lowering also reads ``torch.are_deterministic_algorithms_enabled()``,
    which the C++ switch below sets. Once Inductor is loaded, the public call sets both.
    """
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        switch(True, warn_only=True)


def numerics_problems(device_type: str) -> list[str]:
    """Flags that differ from :func:`enforce_numerics` and affect results on ``device_type``."""
    problems = []
    kind = "cpu" if device_type == "cpu" else "cuda"
    if _has_precision_leaves():
        for path in _PRECISION_LEAVES[kind]:
            value = _effective_precision(path)
            if value in ("tf32", "bf16"):
                problems.append(f"torch.backends.{path}.fp32_precision is {value!r} (the grader needs 'ieee')")
    else:
        if torch.get_float32_matmul_precision() != "highest":
            problems.append("torch.get_float32_matmul_precision() is not 'highest'")
        if kind == "cuda":
            if torch.backends.cuda.matmul.allow_tf32:
                problems.append("torch.backends.cuda.matmul.allow_tf32 is True")
            if torch.backends.cudnn.allow_tf32:
                problems.append("torch.backends.cudnn.allow_tf32 is True")
    if kind == "cuda":
        if not torch.are_deterministic_algorithms_enabled():
            problems.append("deterministic algorithms were turned off (torch.use_deterministic_algorithms)")
        if torch.backends.cudnn.benchmark:
            problems.append("torch.backends.cudnn.benchmark is True")
    return problems


def grading_device() -> torch.device:
    """Where student code runs: ``CNNBOOK_GRADING_DEVICE`` = "cpu" (default), "cuda" or "auto"."""
    choice = os.environ.get("CNNBOOK_GRADING_DEVICE", "cpu").strip().lower()
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CNNBOOK_GRADING_DEVICE asks for CUDA, but torch.cuda.is_available() is False")
    return torch.device(choice)


def grading_device_type() -> str:
    """"cpu" or "cuda": the row of :data:`TOLERANCES` the grader judges with (``CNNBOOK_GRADING_DEVICE``).

    Unlike :func:`grading_device` this does not need a working GPU: the trusted judge only compares
    records (saved on the CPU) and must not depend on CUDA in its own process.
    """
    choice = os.environ.get("CNNBOOK_GRADING_DEVICE", "cpu").strip().lower()
    if choice == "auto":
        return grading_device().type
    return "cuda" if choice.startswith("cuda") else "cpu"
