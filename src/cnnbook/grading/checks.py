"""The checkers the hidden tests call (run the student's code, keep a record) and the judge (compare it).

The record protocol is described in :mod:`cnnbook.grading.records`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .compare import band_problems, compare
from .inputs import MEASURES, _describe, _materialise, _run_student, _seeded
from .numerics import GRADING_DTYPE, GradingError, grading_device, numerics_problems
from .records import module_state_keys, recording_dir, save_record
from .references import load_reference

def _flags(device: torch.device) -> list[str]:
    return numerics_problems(device.type)


def _run_function_case(fn: Callable[..., Any], case: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    args = _materialise(case.get("args", []), device)
    kwargs = _materialise(case.get("kwargs", {}), device)
    out = _run_student(lambda: fn(*args, **kwargs), device)
    rec: dict[str, Any] = {"flags": _flags(device), "device": device.type}
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
    """The numeric settings the kernel recorded as changed (never this process's own settings)."""
    flags = rec.get("flags", [])
    flags = [str(f) for f in flags] if isinstance(flags, (list, tuple)) else ["the record's flags are malformed"]
    return [f"{name}: cannot compare, numeric settings were changed: " + "; ".join(flags)] if flags else []


def _device_problems(rec: Mapping[str, Any], device_type: str | None) -> list[str]:
    """A record made on another device than the grader runs on (e.g. a CPU record under CUDA grading)."""
    ran = rec.get("device")
    if device_type is None or ran is None or str(ran) == device_type:
        return []
    return [f"the check ran on {ran!s:.20}, but the grader runs student code on {device_type}"]


def _judge_function_case(rec: Mapping[str, Any], case: Mapping[str, Any], device_type: str | None) -> list[str]:
    if rec.get("problems"):
        return [str(p) for p in rec["problems"]]
    if "measured" not in rec:
        return _missing("result")
    measured = rec["measured"]
    measure = case.get("measure", "value")
    name = "result" if measure == "value" else f"{measure} of the result"
    if _has_float(case["expected"]) or "expected_probe" in case:
        problems = _flag_problems(rec, name) or _device_problems(rec, device_type)
        if problems:
            return problems
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
    if not problems and "expected_probe" in case:
        if rec.get("probe_problem"):
            return [str(rec["probe_problem"])]
        if "probed" not in rec:
            return _missing("output of the returned module")
        problems = compare(rec["probed"], case["expected_probe"], "output of the returned module", GRADING_DTYPE,
                           device_type)
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
    rec: dict[str, Any] = {"steps": [], "flags": [], "device": device.type}
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
    if _has_float([s["expected"] for s in case["steps"]]):
        problems = _flag_problems(rec, "output of the module") or _device_problems(rec, device_type)
        if problems:
            return problems
    for j, step in enumerate(case["steps"]):
        name = f"output of step {j + 1} ({step['mode']} mode)"
        if j >= len(steps):
            return _missing(name)
        problems = compare(steps[j], step["expected"], name, GRADING_DTYPE, device_type)
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


def _judge_value_case(rec: Mapping[str, Any], case: Mapping[str, Any], ref: Mapping[str, Any]) -> list[str]:
    """A value item: compared with ``expected``, or, when the reference gives a ``band`` = [lo, hi]
    (on the case or on the item), accepted anywhere in that closed interval."""
    if "value" not in rec:
        return _missing("answer")
    band = case.get("band", ref.get("band"))
    if band is not None:
        return band_problems(rec["value"], band, "answer")
    return compare(rec["value"], case["expected"], "answer", GRADING_DTYPE)


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
            problems = _judge_value_case(rec, case, ref)
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


def check_case(fn: Callable[..., Any], args: Sequence[Any], expected: Any, label: str, *,
               kwargs: Mapping[str, Any] | None = None, name: str = "visible",
               output_names: Sequence[str] | None = None) -> None:
    """Visible-test helper: one public case, judged exactly as the grader judges its hidden cases.

    ``fn(*args, **kwargs)`` runs on the grading device, with floating-point tensors cast to the
    grading dtype, seeded and with the grader's numeric settings; the result is compared with
    ``expected`` (tensors, numbers, strings or containers of them, as :func:`compare` takes) through
    :func:`judge`, so a mismatch raises the message the hidden test would give for it::

        grading.check_case(conv_output_size, (32, 5), 28, "conv_output_size", name="LeNet's first layer")

    ``output_names`` names the items of a tuple result in messages, as a reference case's do.
    """
    if not callable(fn):
        raise GradingError(f"{label}: expected a function, got {type(fn).__name__}")
    device = grading_device()
    if isinstance(fn, nn.Module):
        fn = fn.to(device)
    case: dict[str, Any] = {"name": name, "args": list(args), "kwargs": dict(kwargs or {}), "expected": expected}
    if output_names:
        case["output_names"] = list(output_names)
    message = judge(label, "function", [_run_function_case(fn, case, device)], {"title": label, "cases": [case]})
    if message:
        raise GradingError(message)


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
    module_state_keys(ref)
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
