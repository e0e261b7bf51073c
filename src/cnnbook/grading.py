"""Grading helpers: the one place where a student's answer is compared with the reference.

Used by the hidden tests of the graded exercises (``solutions/``), by their visible tests, and by the
reference generator (``autograder/make_references.py``). Hidden tests never compare anything
themselves: they call :func:`check_function`, :func:`check_module` or :func:`check_value` with the
name of a reference item, and these helpers run the student's code on inputs and parameters fixed by
the grader, then compare through :func:`compare`.

Reference items are stored under ``autograder/references/<assignment>/<item>.pt`` (``torch.save`` of
plain containers of float64 CPU tensors, ints, floats and strings; always loaded with
``weights_only=True``), listed in ``autograder/references/MANIFEST.sha256``.

Tolerances
----------
:data:`TOLERANCES` is the one table of tolerances, by device type and dtype of the student's result.
An element passes when::

    |actual - expected| <= atol * scale + rtol * |expected|,    scale = max |expected| (1 if all zero)

so ``atol`` is relative to the magnitude of the whole reference tensor, and both bounds scale with it.
The reference is computed in float64 on the CPU; the student's code runs in float32 (the grader casts
the inputs and loaded weights), on the CPU unless ``CNNBOOK_GRADING_DEVICE=cuda``.

==========  ==========  ======  ======  ==========================================================
device      dtype       rtol    atol    why
==========  ==========  ======  ======  ==========================================================
cpu         float64     1e-10   1e-10   float64 against float64: only summation order differs
cpu         float32     1e-5    1e-5    float32 rounding (eps 1.2e-7) grown over sums of ~10^3 terms
cpu         float16     1e-2    1e-2    10-bit mantissa (eps 9.8e-4)
cpu         bfloat16    5e-2    5e-2    7-bit mantissa (eps 7.8e-3)
cuda        float64     1e-9    1e-9    other algorithms and summation orders than the CPU
cuda        float32     1e-4    1e-4    TF32 off; cuDNN/cuBLAS pick other algorithms (implicit GEMM,
                                        Winograd, split-K) whose rounding differs from the CPU's
cuda        float16     1e-2    1e-2    as on the CPU
cuda        bfloat16    5e-2    5e-2    as on the CPU
==========  ==========  ======  ======  ==========================================================

TF32 (a 10-bit mantissa inside float32 matmuls and convolutions) would add errors of ~1e-3 of the
scale, larger than the float32 rows allow. The grader therefore turns TF32 (and bf16 matmuls on the
CPU) off and asks for deterministic algorithms (:func:`enforce_numerics`) before running the student's
code, and re-checks these flags when comparing (:func:`numerics_problems`): student code can flip them,
and a comparison made under changed flags fails with a message naming the flag.

Every failure raises :class:`GradingError` (an ``AssertionError``) whose message says what differs:
the type, the shape, the dtype, non-finite values, or the largest error, where it is and how many
values differ.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "GradingError",
    "Tolerance",
    "TOLERANCES",
    "GRADING_DTYPE",
    "tolerance_for",
    "compare",
    "assert_close",
    "assert_shape",
    "check",
    "enforce_numerics",
    "numerics_problems",
    "grading_device",
    "references_root",
    "load_reference",
    "save_reference",
    "write_manifest",
    "verify_manifest",
    "check_function",
    "check_module",
    "check_value",
    "build_module_spec",
    "judge",
    "load_record",
    "save_record",
    "inputs_only",
    "to_plain",
]

# The dtype the grader runs student code in (inputs and loaded weights are cast to it).
GRADING_DTYPE = torch.float32
MANIFEST_NAME = "MANIFEST.sha256"
REFERENCE_FORMAT = 1


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
    """Full float32 precision (no TF32, no bf16 matmuls) and deterministic algorithms.

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
    torch.use_deterministic_algorithms(True, warn_only=True)


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


# ---- comparison ------------------------------------------------------------------------------------
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
    flags = numerics_problems(device_type) if actual.dtype == torch.float32 else []
    if flags:
        return [f"{name}: cannot compare, numeric settings were changed: " + "; ".join(flags)]
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
    chooses the row of :data:`TOLERANCES` (and the flags checked) instead of the result's own device:
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


# ---- references ------------------------------------------------------------------------------------
def references_root() -> Path:
    """``$CNNBOOK_REFERENCES`` (set by autograder/nbgrader_config.py) or the repository's references."""
    env = os.environ.get("CNNBOOK_REFERENCES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "autograder" / "references"


def load_reference(item: str, root: Path | None = None) -> dict[str, Any]:
    """Load reference ``item`` ("<assignment>/<name>") with ``weights_only=True`` (no pickle)."""
    path = (root or references_root()) / f"{item}.pt"
    if not path.is_file():
        raise RuntimeError(
            f"reference {item!r} not found at {path}; run `python autograder/make_references.py` "
            f"(instructors only: students cannot run hidden tests)"
        )
    ref = torch.load(path, map_location="cpu", weights_only=True)
    if ref.get("format") != REFERENCE_FORMAT:
        raise RuntimeError(f"reference {path} has format {ref.get('format')!r}, expected {REFERENCE_FORMAT}")
    return ref


def save_reference(ref: Mapping[str, Any], path: Path) -> None:
    """Save a reference item (used by the generator); the bytes are deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": REFERENCE_FORMAT, **ref}, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(root: Path) -> Path:
    """Write ``MANIFEST.sha256`` (``sha256sum -c`` format) for every ``*.pt`` file under ``root``."""
    lines = [f"{_sha256(p)}  {p.relative_to(root).as_posix()}" for p in sorted(root.rglob("*.pt"))]
    manifest = root / MANIFEST_NAME
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def verify_manifest(root: Path | None = None) -> list[str]:
    """Problems with the reference files under ``root``: hash mismatches, missing or unlisted files."""
    root = root or references_root()
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        return [f"{manifest} is missing"]
    listed: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, rel = line.partition("  ")
            listed[rel] = digest
    problems = []
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.pt")}
    for rel in sorted(set(listed) - on_disk):
        problems.append(f"{rel}: listed in the manifest but missing")
    for rel in sorted(on_disk - set(listed)):
        problems.append(f"{rel}: not listed in the manifest")
    for rel in sorted(on_disk & set(listed)):
        if _sha256(root / rel) != listed[rel]:
            problems.append(f"{rel}: SHA-256 differs from the manifest")
    return problems


# ---- materialising grader-chosen inputs ------------------------------------------------------------
# Module specs let a reference case ask for a module as an argument (e.g. a network to freeze), as
# data: {"__module__": "torch.nn:Linear", "kwargs": {...}, "state_dict": {...}, "frozen": [prefixes]}.
_SPEC_PREFIXES = ("torch.nn:", "cnnbook:", "cnnbook.layers:", "cnnbook.models:")


def build_module_spec(spec: Mapping[str, Any], device: torch.device | None = None) -> nn.Module:
    """Build the module a reference case describes (only from torch.nn and cnnbook)."""
    target = spec["__module__"]
    if not target.startswith(_SPEC_PREFIXES):
        raise ValueError(f"module spec {target!r} is outside torch.nn and cnnbook")
    module_name, _, attr = target.partition(":")
    if module_name == "cnnbook" and attr not in ("get_model",):
        module = importlib.import_module("cnnbook").get_model(attr, **spec.get("kwargs", {}))
    else:
        module = getattr(importlib.import_module(module_name), attr)(**spec.get("kwargs", {}))
    module = module.to(device=device or torch.device("cpu"), dtype=GRADING_DTYPE)
    if "state_dict" in spec:
        module.load_state_dict(spec["state_dict"], strict=True)
    for name, param in module.named_parameters():  # "frozen": name prefixes whose parameters do not train
        if name.startswith(tuple(spec.get("frozen", ()))):
            param.requires_grad_(False)
    return module


def _materialise(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        value = value.to(device)
        return value.to(GRADING_DTYPE) if value.is_floating_point() else value
    if isinstance(value, Mapping) and "__module__" in value:
        return build_module_spec(value, device)
    if isinstance(value, (list, tuple)):
        return type(value)(_materialise(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: _materialise(v, device) for k, v in value.items()}
    return value


# What is compared for a case: the return value itself, or a measurement of it.
def _trainable_names(module: Any) -> list[str]:
    if not isinstance(module, nn.Module):
        raise GradingError(f"expected an nn.Module, got {type(module).__name__}")
    return sorted(n for n, p in module.named_parameters() if p.requires_grad)


MEASURES: dict[str, Callable[[Any], Any]] = {
    "value": lambda out: out,
    "trainable_parameters": _trainable_names,
    "num_trainable": lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad),
    "num_parameters": lambda m: sum(p.numel() for p in m.parameters()),
}


def _describe(case: Mapping[str, Any]) -> str:
    return f"case {case.get('name', '?')!r}"


def _seeded(fn: Callable[[], Any]) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return fn()


def _run_student(call: Callable[[], Any], device: torch.device) -> Any:
    enforce_numerics()
    return _seeded(call)


def _fail(label: str, problems: Iterable[str], passed: int, total: int) -> None:
    problems = list(problems)
    if problems:
        count = f" (case {passed + 1} of {total})" if total > 1 else ""
        raise GradingError(f"{label} failed{count}:\n" + "\n".join(problems))


# ---- running and judging -----------------------------------------------------------------------------
# Every checker works in two steps. *Run*: call the student's code on the grader's inputs and keep what
# is compared (plain tensors, numbers, strings and containers of them) in a "record"; the run never
# reads an expected value. *Judge*: compare a record with the reference (:func:`judge`).
#
# Outside the grader (the book, the tests, an instructor's kernel) both steps happen in the same
# interpreter and a failure raises at once. Under the autograder, ``CNNBOOK_GRADING_RECORD`` names a
# folder: the checkers only run and save the record there (:func:`save_record`), and the trusted
# grading step (``autograder/grader_plugins.py``), outside the student's interpreter, loads it with
# :func:`load_record` and judges it against references the student's kernel cannot read.
RECORD_ENV = "CNNBOOK_GRADING_RECORD"
RECORD_FORMAT = 1
RECORD_MAX_BYTES = 64 * 2**20  # a larger record is malformed
EXPECTED_KEYS = ("expected", "expected_probe", "expected_state")  # what the student's kernel never sees


class _Unsupported:
    """Stands for a result of a type the grader does not record (named in the failure message)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<an object of type {self.type_name}>"


def _unsupported(type_name: str) -> Any:
    cls = type(type_name, (_Unsupported,), {})  # type(x).__name__ reads as the student's type
    return cls(type_name)


def to_plain(value: Any, _depth: int = 0) -> Any:
    """``value`` as data the grader can record: plain CPU tensors, numbers, strings, containers of them.

    A tensor subclass, an object with a home-made ``__eq__`` or anything else becomes a marker saying
    its type: it fails the comparison with a message naming that type.
    """
    if _depth > 20:
        return {"__unsupported__": "a structure nested too deeply"}
    if type(value) in (Tensor, nn.Parameter):
        return value.detach().to("cpu").as_subclass(Tensor).clone()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, torch.Size):
        return tuple(int(v) for v in value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__module__ == "numpy":
        return int(value)  # numpy integers and floats count as numbers, as before
    if isinstance(value, numbers.Real) and type(value).__module__ == "numpy":
        return float(value)
    if type(value) in (list, tuple):
        return type(value)(to_plain(v, _depth + 1) for v in value)
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: to_plain(v, _depth + 1) for k, v in value.items()}
    return {"__unsupported__": type(value).__name__}


def _from_plain(value: Any, _depth: int = 0) -> Any:
    """Check a loaded record (exact types only) and turn type markers back into :class:`_Unsupported`."""
    if _depth > 25:
        raise ValueError("nested too deeply")
    if type(value) is nn.Parameter:
        value = value.detach().as_subclass(Tensor)
    if type(value) is Tensor:
        if value.is_sparse or value.layout != torch.strided:
            raise ValueError("a tensor that is not dense")
        return value
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return type(value)(_from_plain(v, _depth + 1) for v in value)
    if type(value) is dict or type(value).__name__ == "OrderedDict":
        if not all(type(k) is str for k in value):
            raise ValueError("a dict with keys that are not strings")
        if set(value) == {"__unsupported__"} and type(value["__unsupported__"]) is str:
            return _unsupported(value["__unsupported__"][:80])
        return {k: _from_plain(v, _depth + 1) for k, v in value.items()}
    raise ValueError(f"a value of type {type(value).__name__}")


def recording_dir() -> Path | None:
    """The folder the checkers save records in under the autograder, else None (judge at once)."""
    env = os.environ.get(RECORD_ENV)
    return Path(env) if env else None


def record_path(folder: Path, item: str) -> Path:
    return folder / (item.replace("/", "__") + ".pt")


def save_record(item: str, cases: list[dict[str, Any]], folder: Path) -> Path:
    """Save the record of ``item`` (see :func:`load_record`); written by the student's kernel."""
    path = record_path(folder, item)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": RECORD_FORMAT, "item": item, "cases": to_plain(cases)}, tmp)
    os.replace(tmp, path)
    return path


def load_record(item: str, folder: Path) -> tuple[list[dict[str, Any]] | None, str]:
    """Load the record of ``item`` written by a student's kernel: (cases, "") or (None, why not).

    Trusted side. Only a regular file (no link), at most :data:`RECORD_MAX_BYTES`, loaded with
    ``weights_only=True`` (no pickled objects), holding exact plain types, is accepted.
    """
    path = record_path(folder, item)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    try:
        import stat

        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > RECORD_MAX_BYTES:
            return None, f"too large ({info.st_size:,} bytes)"
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            raw = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything that is not a clean record is malformed
        return None, f"malformed ({type(exc).__name__})"
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT or raw.get("item") != item:
            raise ValueError("not a record of this item")
        cases = _from_plain(raw["cases"])
        if type(cases) is not list or not all(isinstance(c, dict) for c in cases):
            raise ValueError("no list of cases")
    except Exception as exc:  # noqa: BLE001
        return None, f"malformed ({exc})"
    return cases, ""


def inputs_only(ref: Mapping[str, Any]) -> dict[str, Any]:
    """A reference item without its expected values: what the student's kernel may read under the grader."""
    ref = dict(ref)
    _module_state_keys(ref)
    return strip_expected(ref)


def strip_expected(ref: Any) -> Any:
    """``ref`` with every expected value removed, at any depth."""
    if isinstance(ref, Mapping) and "__module__" not in ref:
        return {k: strip_expected(v) for k, v in ref.items() if k not in EXPECTED_KEYS}
    if isinstance(ref, list):
        return [strip_expected(v) for v in ref]
    return ref


# What a record holds, per kind of check:
#   function: {"measured": ..., "probed": ...}          or {"problems": [...]}
#   module:   {"steps": [out, ...], "state": {...}}     or {"problems": [...]}   (steps run before a problem are kept)
#   value:    {"value": ...}
# plus "flags": numeric settings found changed right after the student's code ran (numerics_problems).
def _flags(device: torch.device) -> list[str]:
    return numerics_problems(device.type)


def _run_function_case(fn: Callable[..., Any], case: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    args = _materialise(case.get("args", []), device)
    kwargs = _materialise(case.get("kwargs", {}), device)
    out = _run_student(lambda: fn(*args, **kwargs), device)
    rec: dict[str, Any] = {"flags": _flags(device)}
    measure = case.get("measure", "value")
    try:
        rec["measured"] = MEASURES[measure](out)
    except GradingError as exc:
        return {**rec, "problems": [str(exc)]}
    except Exception as exc:  # noqa: BLE001 - the student's object could not be measured
        return {**rec, "problems": [f"could not measure the {measure} of the result: {exc!r}"]}
    if "probe" in case:  # the returned module, run on a grader-chosen input
        if not isinstance(out, nn.Module):
            rec["probe_problem"] = f"expected the function to return an nn.Module, got {type(out).__name__}"
            return rec
        probe = _materialise(case["probe"], device)
        out = out.to(device=device, dtype=GRADING_DTYPE)
        if "probe_state" in case:  # the grader's weights, loaded by name into the returned module
            try:
                _load_state(out, case["probe_state"], case.get("optional_state", []), "the returned module",
                            partial=case.get("partial_state", False))
            except GradingError as exc:
                rec["probe_problem"] = str(exc)
                return rec
        out.eval()
        with torch.no_grad():
            rec["probed"] = _run_student(lambda: out(*probe), device)
        rec["flags"] = rec["flags"] + _flags(device)
    return rec


def _missing(what: str) -> list[str]:
    return [f"{what}: no result was recorded (the check did not run to its end in your notebook)"]


def _flag_problems(rec: Mapping[str, Any], name: str) -> list[str]:
    flags = [f for f in rec.get("flags", []) if isinstance(f, str)]
    return [f"{name}: cannot compare, numeric settings were changed: " + "; ".join(flags)] if flags else []


def _judge_function_case(rec: Mapping[str, Any], case: Mapping[str, Any], device_type: str | None) -> list[str]:
    if rec.get("problems"):
        return [str(p) for p in rec["problems"]]
    if "measured" not in rec:
        return _missing("result")
    measured = rec["measured"]
    measure = case.get("measure", "value")
    name = "result" if measure == "value" else f"{measure} of the result"
    names = case.get("output_names")
    if names and isinstance(measured, (tuple, list)) and len(measured) == len(names):
        problems = []
        for part, got, want in zip(names, measured, case["expected"]):
            problems += compare(got, want, part, GRADING_DTYPE, device_type)
    elif names:
        return [f"result: expected a tuple ({', '.join(names)}), got {type(measured).__name__}"
                + (f" of {len(measured)} items" if isinstance(measured, (tuple, list)) else "")]
    else:
        problems = compare(measured, case["expected"], name, GRADING_DTYPE, device_type)
    if not problems:
        problems = _flag_problems(rec, name) if _has_float(case["expected"]) else []
    if not problems and "expected_probe" in case:
        if rec.get("probe_problem"):
            return [str(rec["probe_problem"])]
        if "probed" not in rec:
            return _missing("output of the returned module")
        problems = compare(rec["probed"], case["expected_probe"], "output of the returned module", GRADING_DTYPE,
                           device_type) or _flag_problems(rec, "output of the returned module")
    return problems


def _has_float(expected: Any) -> bool:
    if isinstance(expected, Tensor):
        return expected.is_floating_point()
    if isinstance(expected, (list, tuple)):
        return any(_has_float(e) for e in expected)
    if isinstance(expected, Mapping):
        return any(_has_float(e) for e in expected.values())
    return False


def _run_module_case(factory: Callable[..., nn.Module], case: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    module = _seeded(lambda: factory(**case.get("init_kwargs", {})))
    if not isinstance(module, nn.Module):
        return {"problems": [f"expected an nn.Module, got {type(module).__name__}"]}
    module = module.to(device=device, dtype=GRADING_DTYPE)
    try:
        _load_state(module, case.get("state_dict", {}), case.get("optional_state", []), "your module")
    except GradingError as exc:
        return {"problems": [str(exc)]}
    rec: dict[str, Any] = {"steps": [], "flags": []}
    for step in case["steps"]:
        module.train(step["mode"] == "train")
        args = _materialise(step["args"], device)
        with torch.no_grad():
            rec["steps"].append(_run_student(lambda: module(*args), device))
        rec["flags"] = rec["flags"] + _flags(device)
    own = module.state_dict()
    rec["state"] = {key: own[key] for key in case.get("state_keys", []) if key in own}
    return rec


def _judge_module_case(rec: Mapping[str, Any], case: Mapping[str, Any], device_type: str | None) -> list[str]:
    if rec.get("problems"):
        return [str(p) for p in rec["problems"]]
    steps = rec.get("steps")
    if not isinstance(steps, list):
        return _missing("output of step 1")
    for j, step in enumerate(case["steps"]):
        name = f"output of step {j + 1} ({step['mode']} mode)"
        if j >= len(steps):
            return _missing(name)
        problems = compare(steps[j], step["expected"], name, GRADING_DTYPE, device_type)
        if problems:
            return problems
    if _has_float([s["expected"] for s in case["steps"]]):
        problems = _flag_problems(rec, "output of the module")
        if problems:
            return problems
    state = rec.get("state") if isinstance(rec.get("state"), dict) else {}
    for key, want in case.get("expected_state", {}).items():
        if key not in state:
            return [f"{key}: missing from the module after the forward passes"]
        problems = compare(state[key], want, f"{key} after the forward passes", GRADING_DTYPE, device_type)
        if problems:
            return problems
    return []


def _case_label(ref: Mapping[str, Any], item: str, case: Mapping[str, Any], kind: str) -> str:
    return f"{ref.get('title', item)}" + ("" if kind == "value" else f" ({_describe(case)})")


def judge(item: str, kind: str, cases: list[Mapping[str, Any]] | None, ref: Mapping[str, Any],
          device_type: str | None = None, why_missing: str = "missing", total: int | None = None) -> str | None:
    """The failure message of ``item`` for the recorded ``cases`` (None when every case passes).

    ``kind`` is "function", "module" or "value". The message is the one the checker raises when
    it judges in the student's interpreter (same labels, same counts, first failing case).
    """
    refs = ref["cases"]
    title = ref.get("title", item)
    if cases is None:
        if why_missing == "missing":
            return (f"{title} failed:\nno result was recorded for the grader's check (the test cell did not "
                    f"run to its end, or the notebook stopped before it)")
        return f"{title} failed:\nthe result recorded for the grader's check is {why_missing}"
    for i, case in enumerate(refs):
        label = _case_label(ref, item, case, kind)
        rec = cases[i] if i < len(cases) and isinstance(cases[i], Mapping) else {}
        if kind == "function":
            problems = _judge_function_case(rec, case, device_type)
        elif kind == "module":
            problems = _judge_module_case(rec, case, device_type)
        else:
            problems = (compare(rec["value"], case["expected"], "answer", GRADING_DTYPE, device_type)
                        if "value" in rec else _missing("answer"))
        if problems:
            total = total or len(refs)
            count = f" (case {i + 1} of {total})" if total > 1 else ""
            return f"{label} failed{count}:\n" + "\n".join(problems)
    return None


def _finish(item: str, kind: str, ref: Mapping[str, Any], cases: list[dict[str, Any]]) -> None:
    folder = recording_dir()
    if folder is not None:  # under the autograder: the trusted step judges the record
        save_record(item, cases, folder)
        return
    message = judge(item, kind, cases, ref)
    if message:
        raise GradingError(message)


def _module_state_keys(ref: Mapping[str, Any]) -> None:
    for case in ref["cases"]:
        if "expected_state" in case and "state_keys" not in case:
            case["state_keys"] = list(case["expected_state"])


def check_function(fn: Callable[..., Any], item: str) -> None:
    """Run ``fn`` on every case of reference ``item`` and compare each result with the reference.

    A case holds ``args`` and ``kwargs`` (tensors are cast to the grading dtype and device; module
    specs are built), ``expected`` (compared with the result, or with ``MEASURES[measure](result)``),
    optionally ``output_names`` (names of the items of a tuple result, used in messages), and ``probe``
    inputs with ``expected_probe`` (the output of the module the function returns, on these inputs,
    after loading ``probe_state`` into it when given).
    """
    if not callable(fn):
        raise GradingError(f"{item}: expected a function, got {type(fn).__name__}")
    ref = load_reference(item)
    device = grading_device()
    folder = recording_dir()
    cases: list[dict[str, Any]] = []
    for case in ref["cases"]:
        rec = _run_function_case(fn, case, device)
        cases.append(rec)
        if folder is None:  # judge at once: the first failing case raises, as a student expects
            message = judge(item, "function", cases, {**ref, "cases": ref["cases"][: len(cases)]},
                            total=len(ref["cases"]))
            if message:
                raise GradingError(message)
    _finish(item, "function", ref, cases)


def check_value(value: Any, item: str) -> None:
    """Compare a value the student computed (e.g. a count) with the one case of reference ``item``."""
    ref = load_reference(item)
    _finish(item, "value", ref, [{"value": value}])


def _load_state(module: nn.Module, state: Mapping[str, Tensor], optional: Sequence[str], label: str,
                partial: bool = False) -> None:
    """Copy the grader's tensors into ``module`` by name; a mismatch raises a message listing the names.

    ``partial``: ``state`` holds only some of the module's entries (the others are left as they are).
    """
    own = module.state_dict()
    missing = [k for k in state if k not in own]
    extra = [] if partial else [k for k in own if k not in state and not k.endswith(tuple(optional))]
    shapes = [
        f"{k}: expected shape {tuple(state[k].shape)}, yours {tuple(own[k].shape)}"
        for k in state
        if k in own and tuple(own[k].shape) != tuple(state[k].shape)
    ]
    if missing or extra or shapes:
        lines = [f"{label}: the module's parameters and buffers do not match the exercise's names and shapes"]
        if missing:
            lines.append(f"missing (the exercise asks for these names): {missing}")
        if extra:
            lines.append(f"unexpected: {extra}")
        lines += shapes
        raise GradingError("\n".join(lines))
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v)




def check_module(factory: Callable[..., nn.Module], item: str) -> None:
    """Build the student's module for every case of ``item``, load the grader's weights, run the steps.

    A case holds ``init_kwargs`` (passed to ``factory``), ``state_dict`` (the grader's parameters and
    buffers, loaded by name), ``steps`` (each a mode, inputs and the expected output) and optionally
    ``expected_state`` (parameters or buffers after the steps, e.g. BatchNorm's running statistics;
    the names are also stored as ``state_keys``, which the student's kernel can read).
    """
    ref = load_reference(item)
    _module_state_keys(ref)
    device = grading_device()
    folder = recording_dir()
    cases: list[dict[str, Any]] = []
    for case in ref["cases"]:
        cases.append(_run_module_case(factory, case, device))
        if folder is None:
            message = judge(item, "module", cases, {**ref, "cases": ref["cases"][: len(cases)]},
                            total=len(ref["cases"]))
            if message:
                raise GradingError(message)
    _finish(item, "module", ref, cases)


def cell_done(grade_id: str, token: str) -> None:
    """Under the autograder: the test cell ``grade_id`` ran to its last line (the grader appends this call).

    A test cell whose error was hidden from the grader (a custom exception handler, ``sys.excepthook``)
    never reaches its last line, so it has no such record and scores 0.
    """
    folder = recording_dir()
    if folder is not None:
        (folder / f"__cell__{grade_id}").write_text(token)
