"""The record protocol: what a checker run in the student's kernel saves, and how the grader loads it."""

from __future__ import annotations

import io
import numbers
import os
import stat
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

# Every checker works in two steps. *Run*: call the student's code on the grader's inputs and keep what
# is compared (plain tensors, numbers, strings and containers of them) in a "record"; the run never
# reads an expected value. *Judge*: compare a record with the reference (:func:`judge`).
#
# Outside the grader (the book, the tests, an instructor's kernel) both steps happen in the same
# interpreter and a failure raises at once. Under the autograder, ``CNNBOOK_GRADING_RECORD`` names a
# folder: the checkers only run and save the record there (:func:`save_record`), and the trusted
# grading step (``autograder/grader_trusted.py``), outside the student's interpreter, loads it with
# :func:`load_record` and judges it against references the student's kernel cannot read.
RECORD_ENV = "CNNBOOK_GRADING_RECORD"
RECORD_FORMAT = 1
RECORD_MAX_BYTES = 64 * 2**20  # a larger record is malformed
EXPECTED_KEYS = ("expected", "expected_probe", "expected_state", "band")  # what the student's kernel never sees


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


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``, read without blocking.

    Trusted side, for files the student's kernel could have replaced: the file is opened with
    ``O_NOFOLLOW`` (a symbolic link fails with ELOOP) and ``O_NONBLOCK`` (a FIFO does not block the
    open), and checked with ``fstat`` before any read. Raises ``OSError`` (missing, a link) or
    ``ValueError`` ("not a regular file", "too large (...)").
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"too large ({info.st_size:,} bytes)")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise ValueError(f"too large (over {max_bytes:,} bytes)")
        return data
    finally:
        os.close(fd)


def load_record(item: str, folder: Path) -> tuple[list[dict[str, Any]] | None, str]:
    """Load the record of ``item`` written by a student's kernel: (cases, "") or (None, why not).

    Trusted side. Only a regular file (no link, no FIFO; :func:`read_regular_file`), at most
    :data:`RECORD_MAX_BYTES`, loaded with
    ``weights_only=True`` (no pickled objects), holding exact plain types, is accepted.
    """
    path = record_path(folder, item)
    try:
        data = read_regular_file(path, RECORD_MAX_BYTES)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    except ValueError as exc:
        return None, str(exc)
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything that is not a clean record is malformed
        return None, f"malformed ({type(exc).__name__})"
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
    module_state_keys(ref)
    return strip_expected(ref)


def module_state_keys(ref: Mapping[str, Any]) -> None:
    """Store the names of a module case's ``expected_state`` as ``state_keys`` (which the kernel may read)."""
    for case in ref["cases"]:
        if "expected_state" in case and "state_keys" not in case:
            case["state_keys"] = list(case["expected_state"])


def strip_expected(ref: Any) -> Any:
    """``ref`` with every expected value removed, at any depth."""
    if isinstance(ref, Mapping) and "__module__" not in ref:
        return {k: strip_expected(v) for k, v in ref.items() if k not in EXPECTED_KEYS}
    if isinstance(ref, list):
        return [strip_expected(v) for v in ref]
    return ref


# What a record holds, per kind of check (one dict per case):
#   function: {"measured": ..., "probed": ...}          or {"problems": [...]}
#   module:   {"steps": [out, ...], "state": {...}}     or {"problems": [...]}   (steps run before a problem are kept)
#   value:    {"value": ...}
# plus "flags": the numeric settings the kernel found changed right after the student's code ran
# (numerics_problems), and "device": the device type it ran on. The judge reads these from the record,
# never from its own process.
