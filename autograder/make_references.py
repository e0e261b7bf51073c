"""Generate the reference outputs of the graded exercises, and their SHA-256 manifest.

    python autograder/make_references.py            # (re)write autograder/references/ and MANIFEST.sha256
    python autograder/make_references.py --check    # recompute in memory; fail if a stored file differs
    python autograder/make_references.py --list     # the items and their case counts
    python autograder/make_references.py ch07_batchnorm          # one assignment's items (or name single items)

The items of each assignment are defined in ``autograder/references_src/<assignment>.py``; each module
exposes ``ITEMS``, a table from "<assignment>/<item>" to a function returning the item. This driver
collects them, seeds each from its name, and writes, checks or lists them.

Every item is computed from the package's reference implementation (``cnnbook`` layers, models and
calculators, or ``torch.nn`` where the exercise asks to rebuild a torch layer), in float64 on the CPU,
with weights and inputs drawn here once and stored: the grader loads them into the student's module;
nothing is regenerated from seeds at grading time. Files are ``torch.save`` of plain containers
(tensors, ints, floats, strings) that ``cnnbook.grading.load_reference`` reads with
``weights_only=True``. The format of a case is described in ``cnnbook.grading.check_function`` and
``check_module``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from cnnbook import grading

HERE = Path(__file__).resolve().parent
ROOT = HERE / "references"
SOURCES = HERE / "references_src"

Item = Callable[[], dict[str, Any]]


def collect() -> dict[str, Item]:
    """Every item of every assignment module in references_src/, by its full name."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    items: dict[str, Item] = {}
    for path in sorted(SOURCES.glob("ch*.py")):
        module = importlib.import_module(f"references_src.{path.stem}")
        items.update(module.ITEMS)
    return items


ITEMS: dict[str, Item] = collect()


def _seed(name: str) -> None:
    torch.manual_seed(zlib.crc32(name.encode()))  # a fixed seed per item, so items are independent


# ==== generation, checking, manifest =================================================================
def _inputs_are_float32(value: Any, where: str) -> None:
    """Every floating input the grader hands to student code must be exactly representable in float32."""
    if isinstance(value, Tensor):
        if value.is_floating_point() and not torch.equal(value, value.float().double()):
            raise AssertionError(f"{where} is not representable in float32: draw it with randn()/rand() or f32()")
    elif isinstance(value, dict):
        for key, v in value.items():
            if key not in ("expected", "expected_probe", "expected_state"):
                _inputs_are_float32(v, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _inputs_are_float32(v, f"{where}[{i}]")


def build(name: str) -> dict[str, Any]:
    _seed(name)
    with torch.no_grad():
        ref = ITEMS[name]()
    _inputs_are_float32(ref["cases"], name)
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="recompute and compare with the stored files")
    parser.add_argument("--list", action="store_true", help="list the items")
    parser.add_argument("items", nargs="*", help="only these items (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # bit-identical results from run to run
    names = sorted(n for n in ITEMS if not args.items or n in args.items or n.split("/")[0] in args.items)
    unknown = [a for a in args.items if a not in ITEMS and not any(n.startswith(a + "/") for n in ITEMS)]
    if unknown:
        parser.error(f"no reference item or assignment named {', '.join(unknown)}; see --list")
    if args.list:
        for name in names:
            print(f"{name}: {len(build(name)['cases'])} cases")
        return 0
    failures = []
    for name in names:
        ref = build(name)
        path = ROOT / f"{name}.pt"
        if args.check:
            if not path.is_file():
                failures.append(f"{name}: missing")
                continue
            stored = grading.load_reference(name, ROOT)
            problems = grading.compare(stored, {"format": grading.REFERENCE_FORMAT, **ref}, name)
            if problems:
                failures.append("\n".join(problems))
        else:
            grading.save_reference(ref, path)
            print(f"wrote {path.relative_to(HERE.parent)} ({len(ref['cases'])} cases)")
    if args.check:
        failures += grading.verify_manifest(ROOT)
        for line in failures:
            print(line, file=sys.stderr)
        print(f"{len(names)} items checked, {len(failures)} problems")
        return 1 if failures else 0
    stale = sorted({p.relative_to(ROOT).as_posix()[:-3] for p in ROOT.rglob("*.pt")} - set(ITEMS))
    for name in stale:
        (ROOT / f"{name}.pt").unlink()
        print(f"removed stale {name}.pt")
    print(f"wrote {grading.write_manifest(ROOT).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
