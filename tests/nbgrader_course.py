"""A throw-away copy of the nbgrader course for end-to-end tests: real nbgrader runs, never the repository's gradebook.

Used by tests/test_autograder_e2e.py (the instructor workflow on one assignment) and
tests/test_exercises_graded.py (every assignment graded for an honest, a wrong, a blank and a forbidden
submission); the crafted-submission tests use :func:`printed`. The copy holds autograder/ (config, plugins,
references) and solutions/<assignment>/ for the assignments asked for; exercises/ is regenerated there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COURSE_ID = "cnnbook"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def notebook_name(assignment: str) -> str:
    """The one notebook of an assignment, without .ipynb."""
    found = sorted((REPO / "solutions" / assignment).glob("*.ipynb"))
    if len(found) != 1:
        raise AssertionError(f"solutions/{assignment} must hold exactly one notebook, found {[p.name for p in found]}")
    return found[0].stem


def solution_answers(path: Path) -> dict[str, str]:
    """The reference answer of every solution cell of a source notebook (markers removed), by grade id."""
    out = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = "\n".join(ln for ln in cell.source.splitlines() if ln.strip() not in MARKERS)
    return out


def printed(notebook: Path, tag: str) -> object:
    """The value a crafted cell printed as ``TAG repr(value)`` in a graded notebook."""
    nb = nbformat.read(notebook, as_version=4)
    for out in (o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"):
        for line in out.text.splitlines():
            if line.startswith(tag + " "):
                return eval(line[len(tag) + 1:])  # noqa: S307 - a repr the test's own crafted cell printed
    raise AssertionError(f"{notebook} printed no {tag}")


def autograded_points(path: Path) -> dict[str, float]:
    """Points of every autograded test cell (graded, not a solution) of a notebook, by grade id."""
    out = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            out[meta["grade_id"]] = float(meta["points"])
    return out


@dataclass
class Course:
    root: Path
    env: dict[str, str]
    assignment: str
    log: dict[str, str] = field(default_factory=dict)
    returncode: dict[str, int] = field(default_factory=dict)

    @property
    def autograder(self) -> Path:
        return self.root / "autograder"

    @property
    def notebook(self) -> str:
        return notebook_name(self.assignment)

    @property
    def release(self) -> Path:
        return self.root / "exercises" / self.assignment / f"{self.notebook}.ipynb"

    def nbgrader(self, *args: str, cwd: Path | None = None, check: bool = True,
                 timeout: int = 1500) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "nbgrader"), *args], cwd=cwd or self.autograder, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
        return proc

    def as_student(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A student-side command (fetch, submit, fetch_feedback) run from the student's home folder."""
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        return self.nbgrader(*args, f"--course={COURSE_ID}", f"--Exchange.root={self.root / 'exchange'}",
                             f"--Exchange.cache={self.root / 'student_cache'}", cwd=home)

    def scores(self, student: str) -> dict[str, float | None] | None:
        """Autograded score of every grade cell, from the gradebook; None when there is no submission."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{self.autograder / 'gradebook.db'}", course_id=COURSE_ID) as gb:
            try:
                nb = gb.find_submission_notebook(self.notebook, self.assignment, student)
            except MissingEntry:
                return None
            return {g.name: g.auto_score for g in nb.grades}

    def submit(self, student: str, nb: nbformat.NotebookNode | str | None) -> Path:
        """Put a submission straight into submitted/, with its timestamp, as `nbgrader collect` would."""
        folder = self.autograder / "submitted" / student / self.assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "timestamp.txt").write_text("2026-03-02 09:30:00.000000 UTC")
        if nb is None:
            (folder / "notes.txt").write_text("I forgot the notebook\n")
        elif isinstance(nb, str):
            (folder / f"{self.notebook}.ipynb").write_text(nb)
        else:
            nbformat.write(nb, folder / f"{self.notebook}.ipynb")
        return folder

    def autograded_notebook(self, student: str) -> nbformat.NotebookNode:
        path = self.autograder / "autograded" / student / self.assignment / f"{self.notebook}.ipynb"
        return nbformat.read(path, as_version=4)

    def student_notebook(self, edits: dict[str, Callable[[str], str]] | None = None,
                         answered: bool = True) -> nbformat.NotebookNode:
        """The released notebook as a student hands it in: solution cells filled in, then edited."""
        nb = nbformat.read(self.release, as_version=4)
        answers = solution_answers(self.root / "solutions" / self.assignment / f"{self.notebook}.ipynb") \
            if answered else {}
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = answers[grade_id(cell)]
        for gid, edit in (edits or {}).items():
            matches = [c for c in nb.cells if grade_id(c) == gid]
            if not matches:
                raise AssertionError(f"{self.assignment} has no cell with grade id {gid!r}")
            matches[0].source = edit(matches[0].source)
        return nb


def make_course(root: Path, assignment: str, timeout_s: int | None = None) -> Course:
    """Copy the course for one assignment into ``root`` (empty exercises/ and exchange/)."""
    ignore = shutil.ignore_patterns("submitted", "autograded", "feedback", "gradebook.db*", "__pycache__",
                                    "release", "source", "*.csv")
    shutil.copytree(REPO / "autograder", root / "autograder", ignore=ignore)
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    (root / "exercises").mkdir()
    (root / "exchange").mkdir()
    if timeout_s is not None:
        with open(root / "autograder" / "nbgrader_config.py", "a") as fh:
            fh.write(f"\n# test course: a shorter per-cell timeout\nc.Execute.timeout = {timeout_s}\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CNNBOOK_EXCHANGE": str(root / "exchange"),
           "PYTHONWARNINGS": "ignore"}
    env.pop("CNNBOOK_REFERENCES", None)
    return Course(root, env, assignment)


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(source: str) -> str:
        assert old in source, old
        return source.replace(old, new)

    return edit


def prepend(code: str) -> Callable[[str], str]:
    return lambda source: code + "\n" + source


def set_source(new: str) -> Callable[[str], str]:
    return lambda source: new
