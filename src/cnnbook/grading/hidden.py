"""The hidden tests of a test cell, read by the trusted grader: which checks they call, and their lines.

:func:`find_checks` parses the instructor's test cell with :mod:`ast` (never a regular expression) and
fails closed: a call to a checker whose reference item it cannot tell is returned as a problem, and
the grader scores that cell 0. :func:`hidden_lines` and :func:`scrub` keep the hidden lines out of
everything a student sees (tracebacks and outputs in the feedback; nbgrader issues #917 and #1363).
"""

from __future__ import annotations

import ast
import re
from typing import Iterable

__all__ = ["find_checks", "hidden_lines", "scrub"]

CHECKERS = {"check_function": "function", "check_module": "module", "check_value": "value"}
BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _checker(func: ast.AST, aliases: dict[str, str]) -> str | None:
    """The checker a call's function names (``grading.check_module``, an imported alias), else None."""
    if isinstance(func, ast.Name):
        return aliases.get(func.id, func.id if func.id in CHECKERS else None)
    if isinstance(func, ast.Attribute) and func.attr in CHECKERS:
        return func.attr
    return None


def find_checks(source: str) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """The checks a test cell calls, as (kind, item, roots), and the calls it could not resolve.

    ``roots`` are the names in the checked expression (the student's function or class), which
    :func:`cnnbook.grading.forbidden_uses` follows to the graded block. The item may be a string
    constant, or a name bound to one in the cell. A checker reached any other way (an item built at
    run time, a checker under another name) is a problem: the cell scores 0 rather than pass unjudged.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [], [f"the test cell is not valid Python (line {exc.lineno}); the grader cannot read its checks"]
    aliases: dict[str, str] = {}
    constants: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in CHECKERS:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
        elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Attribute, ast.Name)):
            checker = _checker(node.value, aliases)
            for target in node.targets:
                if checker and isinstance(target, ast.Name):
                    aliases[target.id] = checker
    checks: list[tuple[str, str, list[str]]] = []
    problems: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        checker = _checker(node.func, aliases)
        if checker is None:
            if any(isinstance(a, ast.Name) and a.id in CHECKERS or isinstance(a, ast.Attribute) and a.attr in CHECKERS
                   for a in node.args):
                problems.append(f"line {node.lineno}: a checker is passed around ({ast.unparse(node)[:80]})")
            continue
        item_node = node.args[1] if len(node.args) >= 2 else next(
            (k.value for k in node.keywords if k.arg == "item"), None)
        item = None
        if isinstance(item_node, ast.Constant) and isinstance(item_node.value, str):
            item = item_node.value
        elif isinstance(item_node, ast.Name):
            item = constants.get(item_node.id)
        if item is None:
            problems.append(f"line {node.lineno}: the grader cannot tell which reference item "
                            f"`{ast.unparse(node)[:80]}` checks")
            continue
        target = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in ("fn", "factory",
                                                                                                  "value")), None)
        roots = sorted({n.id for n in ast.walk(target) if isinstance(n, ast.Name)}) if target is not None else []
        checks.append((CHECKERS[checker], item, roots))
    return checks, problems


def hidden_lines(source: str) -> list[str]:
    """The stripped, non-empty lines between the hidden-test markers, the markers included."""
    lines, inside = [], False
    for line in source.splitlines():
        text = line.strip()
        if text == BEGIN:
            inside = True
        if inside and text:
            lines.append(text)
        if text == END:
            inside = False
    return lines


def scrub(text: str, hidden: Iterable[str]) -> str:
    """``text`` without every line that shows one of the ``hidden`` lines (colour codes ignored)."""
    hidden = [h for h in hidden if len(h) >= 4]
    if not hidden:
        return text
    kept = [line for line in text.split("\n") if not any(h in _ANSI.sub("", line) for h in hidden)]
    return "\n".join(kept)
