"""Review flags: a notebook whose own cells use constructs that can fool the checks made inside the
student's interpreter, or that hid an error from the grader, keeps its scores and is marked "needs manual
grade" (:class:`FlagForReview`, after ``SaveAutoGrades`` in ``nbgrader_config.py``).

The regular expressions of :data:`SUSPICIOUS` catch the plain spellings; :func:`ast_review_flags` catches
what they cannot (computed names, writes through a module's ``__dict__``, code decoded at run time).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

from nbformat.notebooknode import NotebookNode

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grader_plugins import gradebook_of, source_cells, submission_name  # noqa: E402 - next to this file

__all__ = ["SUSPICIOUS", "suspicious_constructs", "ast_review_flags", "FlagForReview"]

# Constructs that can fool checks made inside the student's interpreter (visible tests) or that reach
# outside the submission. A notebook using one is graded as usual and flagged for manual review. The
# regular expressions catch the plain spellings; :func:`ast_review_flags` catches what they cannot
# (computed names, writes through a module's __dict__, code decoded at run time).
SUSPICIOUS = {
    "an IPython hook": r"input_transformers|\bevents\s*\.\s*register|set_custom_exc|register_magic|ast_transformers",
    "the interpreter's error or exit hooks": r"\bsys\s*\.\s*(excepthook|displayhook|settrace|setprofile)|\batexit\b",
    "builtins": r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\s*\.",
    "the notebook's input history": r"\b_ih\b|\bIn\s*\[|\b_i\d*\b|history_manager|get_ipython",
    "a replaced checking function": (r"\b(grading|torch|np|numpy|testing|torch\.testing|numpy\.testing)\s*\.\s*\w+\s*="
                                     r"|__torch_function__|__eq__|__bool__|_make_subclass"),
    "the module table or imports machinery": r"\bsys\s*\.\s*(modules|path|meta_path)|\bimportlib\b|__import__",
    "numeric settings": r"allow_tf32|fp32_precision|set_float32_matmul_precision|use_deterministic_algorithms"
                        r"|cudnn\s*\.\s*(benchmark|deterministic)",
    "processes, files or the network outside the exercise": (r"\bsubprocess\b|\bos\s*\.\s*(system|fork|popen|exec\w*|spawn\w*)"
                                                             r"|\bctypes\b|\bsocket\b|urllib|requests|\bopen\s*\(|\bPath\s*\("
                                                             r"|CNNBOOK_|\bos\s*\.\s*environ"),
}


def suspicious_constructs(nb: NotebookNode, trusted: dict[str, str] | None = None) -> list[str]:
    """What in the student's own cells may tamper with the grading, by kind.

    ``trusted``: the gradebook's source of each cell by grade id; a cell whose source is exactly that
    is the instructor's and is skipped. Without it, locked cells are skipped.
    """
    found: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if trusted is None and utils.is_locked(cell) or trusted is not None and trusted.get(gid) == cell.source:
            continue
        kinds = [f.split(":")[0] for f in found]
        for kind, pattern in SUSPICIOUS.items():
            match = re.search(pattern, cell.source)
            if match and kind not in kinds:
                found.append(f"{kind}: {match.group(0)!r}")
                kinds.append(kind)
        for kind, what in ast_review_flags(cell.source):
            if kind not in kinds:
                found.append(f"{kind}: {what!r}")
                kinds.append(kind)
    return found


_GUARDED = {"grading", "cnnbook", "torch", "np", "numpy", "builtins", "sys", "IPython", "ip", "importlib"}
_LINKS = {"symlink", "link", "mkfifo", "mknod", "symlink_to", "hardlink_to", "link_to"}


def ast_review_flags(source: str) -> list[tuple[str, str]]:
    """(kind, code) of each construct :mod:`ast` finds that the regular expressions of :data:`SUSPICIOUS`
    miss: ``exec``/``eval``/``compile`` of a computed string, ``getattr``/``setattr``/``delattr``
    with a computed name on a module or the shell, writes through ``__dict__``/``vars()`` or to a
    function's ``__code__``, links and FIFOs, and ``multiprocessing``. An honest
    ``setattr(self, f"denselayer{i + 1}", layer)`` on the student's own object is not flagged."""
    try:
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()))
    except SyntaxError:
        return []
    modules = set(_GUARDED)
    for node in ast.walk(tree):  # names the cell binds to modules or to the shell
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and "get_ipython" in ast.unparse(node.value.func):
            modules |= {t.id for t in node.targets if isinstance(t, ast.Name)}

    def root(expr: ast.AST) -> str | None:
        while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    def constant(expr: ast.AST) -> bool:
        return isinstance(expr, ast.Constant) and isinstance(expr.value, str)

    flags: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        code = ast.unparse(node)[:80] if isinstance(node, ast.AST) and hasattr(node, "lineno") else ""
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0] if node.args else None
            if name in ("exec", "eval", "compile") and first is not None and not constant(first):
                flags.append(("code built at run time", code))
            elif name in ("getattr", "setattr", "delattr") and len(node.args) >= 2 and root(node.args[0]) in modules \
                    and (name != "getattr" or not constant(node.args[1])):
                flags.append(("a computed attribute of a module or the shell", code))
            elif name == "vars" and first is not None and root(first) in modules:
                flags.append(("a module's namespace written directly", code))
            elif name in _LINKS:
                flags.append(("links or special files", code))
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "__setitem__", "setdefault") \
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "__dict__":
                flags.append(("a module's namespace written directly", code))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(n.split(".")[0] in ("multiprocessing", "concurrent") for n in names):
                flags.append(("processes, files or the network outside the exercise", code))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and (target.attr in ("__code__", "__dict__", "__globals__")
                                                          or root(target) in ("grading", "cnnbook")):
                    flags.append(("a replaced checking function", code))
                elif isinstance(target, ast.Subscript) and isinstance(target.value, (ast.Attribute, ast.Call)) \
                        and ("__dict__" in ast.unparse(target.value) or ast.unparse(target.value).startswith("vars(")):
                    flags.append(("a module's namespace written directly", code))
    return flags




class FlagForReview(NbGraderPreprocessor):
    """Flag a notebook for manual review when its own cells use constructs that can fool checks made
    inside the student's interpreter (:data:`SUSPICIOUS`) or when the grader found a hidden error.

    Runs after ``SaveAutoGrades``: the autograded scores stay; every grade of the notebook is marked
    "needs manual grade" in the gradebook (the formgrader lists it), and the log says why.
    """

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        trusted = source_cells(self, resources, locked_only=True)
        reasons = list(resources.get("cnnbook_review", [])) + suspicious_constructs(nb, trusted)
        if not reasons:
            return nb, resources
        info = resources["nbgrader"]
        with gradebook_of(self, resources) as gb:
            submission = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
            for grade in submission.grades:
                grade.needs_manual_grade = True
            gb.db.commit()
        self.log.warning("%s: FLAGGED FOR MANUAL REVIEW (scores kept, marked 'needs manual grade'): %s",
                         submission_name(resources), "; ".join(reasons))
        return nb, resources
