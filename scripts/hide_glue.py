"""Move the glue bookkeeping out of the code cells a reader sees.

    .venv/bin/python scripts/hide_glue.py book/05_vgg.md [book/06_inception.md ...]

In each visible code cell of a chapter, the top-level ``glue(..., display=False)`` statements move into a
``remove-cell`` cell right after it, so the reader sees the experiment and the build still glues the
numbers. A glue statement moves only when no later statement of its cell rebinds or may mutate a name it
reads (so it glues the same value as before); otherwise it stays where it is. Execution order is otherwise
unchanged. When the visible cell's last statement becomes an expression that was not last before (and
could display a value), it gets a trailing ';'. Run it after editing a chapter; the file is rewritten in place.
"""
from __future__ import annotations

import ast
import re
import sys

CELL = re.compile(r"(```\{code-cell\}[^\n]*\n)(.*?)(```)", re.S)


def is_glue(stmt):
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and getattr(stmt.value.func, "id", "") == "glue"
            and any(k.arg == "display" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in stmt.value.keywords))


def names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {"glue"}


PURE = {"print", "len", "str", "int", "float", "round", "sorted", "list", "tuple", "dict", "set", "min", "max",
        "sum", "abs", "format", "isinstance", "range", "enumerate", "zip", "repr", "any", "all", "map", "filter",
        "html_table", "show_figure", "glue", "next", "iter", "reversed", "bool", "type"}
PURE_METHODS = {"item", "numel", "size", "mean", "sum", "tolist", "detach", "clone", "cpu", "numpy", "items",
                "keys", "values", "get", "index", "count", "format", "join", "split", "startswith", "endswith",
                "std", "max", "min", "argmax", "argmin", "abs", "float", "long", "dim", "parameters",
                "named_parameters", "named_modules", "modules", "children", "state_dict", "replace", "upper",
                "lower", "strip", "all", "any", "nonzero", "flatten", "view", "reshape", "squeeze", "unsqueeze"}


def touches(stmt, watched):
    """Does ``stmt`` rebind or possibly mutate one of ``watched``?"""
    for n in ast.walk(stmt):
        if isinstance(n, ast.Name) and n.id in watched and not isinstance(n.ctx, ast.Load):
            return True
        if isinstance(n, (ast.Subscript, ast.Attribute)) and not isinstance(n.ctx, ast.Load):
            base = n.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name) and base.id in watched:
                return True
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Attribute) and f.attr not in PURE_METHODS:
                base = f.value
                while isinstance(base, (ast.Subscript, ast.Attribute)):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in watched:
                    return True
            fname = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")
            if fname not in PURE:
                for a in list(n.args) + [k.value for k in n.keywords]:
                    if names(a) & watched and not isinstance(a, (ast.JoinedStr, ast.Constant)):
                        # an argument that is (or contains) a watched name could be mutated
                        if isinstance(a, ast.Name) or isinstance(a, (ast.Subscript, ast.Attribute)):
                            return True
    return False


def returns_none(stmt):
    f = stmt.value.func if isinstance(stmt.value, ast.Call) else None
    return isinstance(f, ast.Name) and f.id in ("print", "show_figure", "display")


def stmt_lines(lines, stmts, i, prev_end):
    """Source lines of stmts[i], with the comment lines directly above it (no blank line between)."""
    s = stmts[i]
    start = min([s.lineno] + [d.lineno for d in getattr(s, "decorator_list", [])]) - 1
    while start > prev_end and lines[start - 1].strip().startswith("#"):
        start -= 1
    return start, s.end_lineno


def semicolon(chunk_lines, stmt, offset):
    i = stmt.end_lineno - 1 - offset
    line = chunk_lines[i]
    col = len(line.encode()[: stmt.end_col_offset].decode())
    chunk_lines[i] = line[:col] + ";" + line[col:]


def split(body: str):
    lines = body.splitlines(keepends=True)
    opts = []
    while lines and lines[0].startswith(":"):
        opts.append(lines.pop(0))
    if any(re.search(r"remove-cell|remove-input|hide-input", o) for o in opts):
        return None
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    stmts = tree.body
    if not any(is_glue(s) for s in stmts):
        return None
    # which glue statements can move to the end of their segment
    cells = []  # list of (visible_stmts, hidden_stmts)
    visible, hidden = [], []
    for i, s in enumerate(stmts):
        if is_glue(s):
            later = [t for t in stmts[i + 1:] if not is_glue(t)]
            if any(touches(t, names(s)) for t in later):
                visible.append(s)          # cannot move without gluing another value: it stays in place
            else:
                hidden.append(s)
        else:
            visible.append(s)
    cells.append((visible, hidden))
    if not any(hid for _, hid in cells):
        return None  # every glue statement has to stay where it is
    out = []
    for ci, (vis, hid) in enumerate(cells):
        if vis:
            chunk = []
            prev_end = 0
            for s in vis:
                idx = stmts.index(s)
                start, end = stmt_lines(lines, stmts, idx, stmts[idx - 1].end_lineno if idx else 0)
                # keep blank lines between consecutive visible statements that were adjacent in the source
                if chunk and start > prev_end and all(not l.strip() for l in lines[prev_end:start]) and prev_end:
                    chunk.extend(lines[prev_end:start])
                elif chunk and start > prev_end:
                    pass
                chunk.extend(lines[start:end])
                prev_end = end
            text = "".join(chunk).rstrip("\n") + "\n"
            last = vis[-1]
            was_last = stmts[-1] is last
            if isinstance(last, ast.Expr) and not is_glue(last) and not was_last and not returns_none(last) and not text.rstrip().endswith(";"):
                # re-parse the chunk to find the last statement's position in it
                t2 = ast.parse(text).body[-1]
                cl = text.splitlines(keepends=True)
                semicolon(cl, t2, 0)
                text = "".join(cl)
            out.append("```{code-cell} ipython3\n" + "".join(opts) + text + "```")
        if hid:
            chunk = []
            for s in hid:
                idx = stmts.index(s)
                start, end = stmt_lines(lines, stmts, idx, stmts[idx - 1].end_lineno if idx else 0)
                chunk.extend(lines[start:end])
            out.append("```{code-cell} ipython3\n:tags: [remove-cell]\n" + "".join(chunk).rstrip("\n") + "\n```")
    return "\n\n".join(out)


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    for path in paths:
        text = open(path).read()
        count = [0]

        def repl(m):
            new = split(m.group(2))
            if new is None:
                return m.group(0)
            count[0] += 1
            return new

        open(path, "w").write(CELL.sub(repl, text))
        print(path, "cells changed:", count[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
