"""Forbidden names: find where a student's cells use a function, class or module an exercise bans.

A reference item may carry ``"forbidden": ["torch.nn.functional.batch_norm", "torchvision", ...]``.
The trusted judge (outside the student's kernel) parses the student's cells with :mod:`ast` and calls
:func:`forbidden_uses`. Names are resolved through the notebook's imports and simple assignments
(``import torch.nn.functional as F`` then ``F.batch_norm``; ``from torch import nn`` then
``nn.BatchNorm2d``), through ``__import__("x")``, ``importlib.import_module("x")``,
``getattr(module, "name")`` and ``sys.modules["x"]`` with constant strings, and through the code in a
constant string given to ``exec`` or ``eval``. A rule forbids the name and everything under it
("torchvision" forbids ``torchvision.transforms.functional.hflip``). Names under the rules' packages
are also looked up as objects, so ``torch.nn.modules.batchnorm.BatchNorm2d`` is caught by the rule
"torch.nn.BatchNorm2d". What cannot be resolved fails closed: ``getattr`` with a computed name on a
module that holds a forbidden name, an import of a computed name, ``exec``/``eval`` of a computed string.
"""

from __future__ import annotations

import ast
import functools
import importlib
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["forbidden_uses"]

_IMPORTERS = {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}
_EXECUTORS = {"exec", "eval", "builtins.exec", "builtins.eval"}
_GETATTR = {"getattr", "builtins.getattr"}


def _matches(name: str, rule: str) -> bool:
    return name == rule or name.startswith(rule + ".")


@functools.lru_cache(maxsize=4096)
def _lookup(dotted: str, tops: frozenset[str]) -> Any:
    """The object ``dotted`` names, when it lies in one of the packages ``tops`` (else None).

    Only the rules' own packages (torch, torchvision, cnnbook) are imported here, never a name a
    student chose outside them.
    """
    parts = dotted.split(".")
    if parts[0] not in tops:
        return None
    obj: Any = None
    for i in range(len(parts), 0, -1):  # the longest importable module prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001 - not a module (or not importable): try a shorter prefix
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def _canonical(obj: Any) -> str | None:
    """Where ``obj`` is defined: a module's name, or a class's or function's module and qualified name."""
    if obj is None:
        return None
    name = getattr(obj, "__name__", None)
    if type(obj).__name__ == "module":
        return name
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None


class _Finder(ast.NodeVisitor):
    """Walks the cells in order; ``names`` maps local names to dotted names across cells."""

    def __init__(self, rules: Sequence[str]) -> None:
        self.rules = list(rules)
        self.tops = frozenset(r.split(".")[0] for r in self.rules)
        self.rule_objects = [(rule, _lookup(rule, self.tops)) for rule in self.rules]
        self.names: dict[str, str] = {}
        self.stars: list[str] = []
        self.report = True
        self.lines: set[int] | None = None  # the lines of the current cell that belong to the block
        self.where = ""
        self.found: list[str] = []
        self.reported: set[tuple[str, int, str]] = set()

    # -- resolution of an expression to a dotted name
    def resolve(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            return node.id if node.id in self.tops or node.id in ("__import__", "getattr", "exec", "eval") else None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value)
        if isinstance(node, ast.Subscript):
            key = node.slice
            if self.resolve(node.value) == "sys.modules" and isinstance(key, ast.Constant) and isinstance(key.value, str):
                return key.value
            return None
        if isinstance(node, ast.Call):
            func = self.resolve(node.func)
            first = node.args[0] if node.args else None
            const = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
            if func in _IMPORTERS and const:
                fromlist = len(node.args) >= 4 or any(k.arg == "fromlist" for k in node.keywords)
                return const if func.endswith("import_module") or fromlist else const.split(".")[0]
            if func in _GETATTR and len(node.args) >= 2:
                base, attr = self.resolve(node.args[0]), node.args[1]
                if base and isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                    return f"{base}.{attr.value}"
        return None

    # -- reporting
    def use(self, name: str, node: ast.AST, written: str | None = None) -> None:
        if not self.report:
            return
        obj = _lookup(name, self.tops) if name.split(".")[0] in self.tops else None
        canonical = _canonical(obj)
        for rule, rule_obj in self.rule_objects:
            hit = (_matches(name, rule) or (canonical is not None and _matches(canonical, rule))
                   or (obj is not None and rule_obj is not None and obj is rule_obj))
            if hit:
                key = (self.where, getattr(node, "lineno", 0), rule)
                if key in self.reported or (self.lines is not None and key[1] not in self.lines):
                    return
                self.reported.add(key)  # one message per rule and line (not one per prefix of the name)
                how = f" (written `{written}`)" if written and written != name else ""
                self.add(node, f"uses {name}{how}, which this exercise forbids ({rule})")
                return

    def add(self, node: ast.AST, what: str) -> None:
        if self.lines is not None and getattr(node, "lineno", None) not in self.lines:
            return  # outside the block being checked
        line = f"{self.where}, line {getattr(node, 'lineno', '?')}: {what}"
        if line not in self.found:
            self.found.append(line)

    def holds_forbidden(self, base: str) -> bool:
        return any(_matches(rule, base) for rule in self.rules)

    # -- the visitor
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            self.names[alias.asname or top] = alias.name if alias.asname else top
            self.use(alias.name, node, f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(node.module)
                self.use(node.module, node, f"from {node.module} import *")
                continue
            full = f"{node.module}.{alias.name}"
            self.names[alias.asname or alias.name] = full
            self.use(full, node, f"from {node.module} import {alias.name}")

    def _bind(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            resolved = self.resolve(value)
            if resolved:
                self.names[target.id] = resolved
            else:
                self.names.pop(target.id, None)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            self._bind(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if node.value is not None:
            self._bind(node.target, node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.generic_visit(node)
        self._bind(node.target, node.value)

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        if node.id in self.names:
            self.use(self.names[node.id], node, node.id)
        else:
            for module in self.stars:
                self.use(f"{module}.{node.id}", node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        resolved = self.resolve(node)
        if resolved:
            self.use(resolved, node, ast.unparse(node))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        resolved = self.resolve(node)
        if resolved:
            self.use(resolved, node, ast.unparse(node))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = self.resolve(node.func)
        first = node.args[0] if node.args else None
        constant = isinstance(first, ast.Constant) and isinstance(first.value, str)
        if func in _IMPORTERS:
            if constant:
                self.use(first.value, node, ast.unparse(node))  # type: ignore[union-attr]
            elif self.report:
                self.add(node, f"imports a computed name ({ast.unparse(node)[:80]}), which the grader cannot check")
        elif func in _GETATTR and len(node.args) >= 2:
            base, attr = self.resolve(node.args[0]), node.args[1]
            if base and not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)) and self.holds_forbidden(base):
                self.add(node, f"looks up a computed name on {base} ({ast.unparse(node)[:80]}), which holds a "
                               "name this exercise forbids")
            elif base and isinstance(attr, ast.Constant):
                self.use(f"{base}.{attr.value}", node, ast.unparse(node))
        elif func in _EXECUTORS and first is not None:
            if constant:
                try:
                    inner = ast.parse(first.value)  # type: ignore[union-attr]
                except SyntaxError:
                    inner = None
                if inner is not None:
                    for sub in ast.walk(inner):  # the inner code's lines count as the exec call's line
                        if hasattr(sub, "lineno"):
                            sub.lineno = node.lineno  # type: ignore[attr-defined]
                    self.visit(inner)
            elif self.report:
                self.add(node, f"runs computed code ({ast.unparse(node)[:80]}), which the grader cannot check")
        self.generic_visit(node)


def forbidden_uses(sources: Mapping[str, str] | Iterable[tuple[str, str]], forbidden: Sequence[str],
                   trusted: Iterable[str] = (), roots: Iterable[str] | None = None,
                   graded_elsewhere: Iterable[str] = ()) -> list[str]:
    """Every use of a ``forbidden`` dotted name in ``sources``, as messages naming the cell and line.

    ``sources``: the notebook's code cells in order, as (cell name, source) pairs or a dict. Cells
    named in ``trusted`` (the instructor's, unchanged) are read for their imports but never reported.
    ``roots``: the names a check was given (the function or class it grades); only their definitions
    in the student's cells, and the definitions of the student's names these use, in turn, are
    searched (the graded *block*). None, or roots defined nowhere, searches every student cell.
    ``graded_elsewhere``: names other checks of the notebook grade (their own roots); the search does
    not follow into them, so a forbidden use is charged to the block that has it, once (ch12's
    experiment calls the student's ``crop_flip``, which its own check judges).
    A cell that is not valid Python or that hides code in an IPython magic is reported (it cannot be
    checked). Empty when nothing is found.
    """
    rules = [str(rule).strip() for rule in forbidden if str(rule).strip()]
    if not rules:
        return []
    trusted = set(trusted)
    finder = _Finder(rules)
    parsed: list[tuple[str, ast.Module | None, list[str], str]] = []
    for name, source in (sources.items() if isinstance(sources, Mapping) else sources):
        code, hidden = _without_magics(source)
        try:
            parsed.append((name, ast.parse(code), hidden, ""))
        except SyntaxError as exc:
            parsed.append((name, None, hidden, f"not valid Python (line {exc.lineno})"))
    roots = None if roots is None else list(roots)
    stops = set(graded_elsewhere) - set(roots or ())
    block = _block_lines([(n, tree) for n, tree, _, _ in parsed if n not in trusted], roots,
                         [(n, tree) for n, tree, _, _ in parsed if n in trusted], stops)
    for name, tree, hidden, error in parsed:
        report = name not in trusted and (block is None or name in block)
        finder.where, finder.report = f"cell {name!r}", report
        finder.lines = None if block is None else block.get(name, set())
        if report:
            finder.found += [f"cell {name!r}, {line}" for line in hidden]
            if error:
                finder.found.append(f"cell {name!r}: {error}, so the grader cannot check it for forbidden names")
        if tree is not None:
            finder.visit(tree)
    return finder.found


def _definitions(cells: list[tuple[str, ast.Module | None]]) -> dict[str, list[tuple[str, ast.AST]]]:
    """Top-level names the student's cells define (functions, classes, assignments), with their nodes."""
    defs: dict[str, list[tuple[str, ast.AST]]] = {}
    for cell, tree in cells:
        for node in tree.body if tree is not None else []:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs.setdefault(node.name, []).append((cell, node))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name):
                            defs.setdefault(sub.id, []).append((cell, node))
    return defs


def _block_lines(cells: list[tuple[str, ast.Module | None]], roots: Iterable[str] | None,
                 trusted_cells: list[tuple[str, ast.Module | None]] = (),
                 stops: set[str] = frozenset()) -> dict[str, set[int]] | None:
    """The lines of each student cell that define ``roots`` and what they use, transitively.

    A root may be the instructor's (a test harness in a locked cell, such as a training loop that calls
    the student's ``train_step``): its definition is followed to the student's names it uses, but its own
    lines are never part of the block. A harness statement also depends on the statements above it in its
    cell, which ran first and may have changed what it reads in place (``train(model, ...)`` and then
    ``accuracy = evaluate(model)``). Names in ``stops`` (graded by another check) are not followed.
    """
    if roots is None:
        return None
    defs, harness = _definitions(cells), _definitions(list(trusted_cells))
    before = {id(node): tree.body[:i] for _, tree in trusted_cells if tree is not None
              for i, node in enumerate(tree.body)}
    todo = [r for r in roots if r in defs or r in harness]
    seen: set[str] = set()
    stopped = False
    lines: dict[str, set[int]] = {}

    def used(node: ast.AST) -> list[str]:
        return [sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and (sub.id in defs or sub.id in harness)]

    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in stops:
            stopped = True
            continue
        for cell, node in defs.get(name, []):
            end = getattr(node, "end_lineno", node.lineno)  # type: ignore[attr-defined]
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # type: ignore[attr-defined]
            lines.setdefault(cell, set()).update(range(start, end + 1))
            todo += used(node)
        for _, node in harness.get(name, []):
            for earlier in [*before.get(id(node), []), node]:
                todo += used(earlier)
    if not lines and not stopped:
        return None  # fail closed: no student definition reached, so the whole notebook is searched
    return lines


_CODE_MAGICS = ("%time ", "%timeit ", "%prun ", "%%time", "%%timeit", "%%capture", "%%prun")


def _without_magics(source: str) -> tuple[str, list[str]]:
    """The cell as Python for :mod:`ast`, and the IPython magics that hide code from it.

    ``%time x = f()`` keeps its code; ``%%time``-like cell magics and other ``%``/``!`` lines are
    blanked (line numbers kept); ``%run``, ``%load`` and other cell magics (``%%script python``) run
    code the grader cannot read, and are returned as problems.
    """
    lines, hidden = [], []
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.lstrip()
        if not stripped.startswith(("%", "!")):
            lines.append(line)
            continue
        magic = next((m for m in _CODE_MAGICS if stripped.startswith(m)), None)
        if magic and not magic.startswith("%%"):
            lines.append(line[: len(line) - len(stripped)] + stripped[len(magic):])
            continue
        if stripped.startswith(("%run", "%load", "%%")) and not magic:
            hidden.append(f"line {number}: the magic `{stripped[:40]}` runs code the grader cannot check")
        lines.append("")
    return "\n".join(lines), hidden
