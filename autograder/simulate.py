"""A class of simulated students: a rehearsal of grading before the real class, the benchmark's and the
tests' workload.

Submissions are built at run time from the release notebooks (``exercises/<assignment>/``) and the
instructor's solutions (``solutions/<assignment>/``): every solution cell of the release gets the reference
answer, and every third student gets one wrong answer spliced in, so that failing tests are graded too.
Nothing is hard-coded about an assignment's cells, so a rewritten assignment needs no change here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SUBMITTED_AT = "2026-03-02 09:30:00.000000 UTC"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def grading_env(**extra: str) -> dict[str, str]:
    """This process's environment for nbgrader and the class grading command: this Python's scripts first on
    the PATH, warnings off, no inherited ``CNNBOOK_REFERENCES`` or ``CNNBOOK_DB_URL`` (the course's
    nbgrader_config.py must decide them), then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("CNNBOOK_REFERENCES", "CNNBOOK_DB_URL")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONWARNINGS": "ignore", **extra}


def nbgrader(course: Path, *args: str, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """One nbgrader command run in the course directory ``course`` (the folder of nbgrader_config.py)."""
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=timeout)


def solution_answers(source: Path) -> dict[str, str]:
    """The reference answer of every solution code cell (markers removed), by grade id."""
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            answers[meta["grade_id"]] = "\n".join(
                ln for ln in cell.source.splitlines() if ln.strip() not in MARKERS)
    return answers


def submission(release: Path, source: Path, wrong: bool) -> nbformat.NotebookNode:
    """The release notebook answered with the solutions; ``wrong``: the first ``return`` answer zeroed."""
    nb = nbformat.read(release, as_version=4)
    answers = solution_answers(source)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
            if wrong and "return " in cell.source:
                cell.source = cell.source.replace("return ", "return 0 * ", 1)
                wrong = False
    return nb


def make_course(root: Path, assignment: str, students: list[str], env: dict[str, str]) -> Path:
    """A copy of the course under ``root`` (autograder/, solutions/<assignment>/, a fresh release), the
    students in its class list and their submissions in submitted/; returns the course directory."""
    ignore = shutil.ignore_patterns("submitted", "autograded", "feedback", "gradebook.db*", "__pycache__", "*.csv",
                                    "grading_state")
    shutil.copytree(REPO / "autograder", root / "autograder", ignore=ignore)
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    (root / "exercises").mkdir(exist_ok=True)
    course = root / "autograder"
    with open(course / "students.csv", "w") as fh:
        fh.write("id,first_name,last_name,email\n" + "".join(f"{s},{s},Simulated,\n" for s in students))
    for args in (("db", "student", "import", "students.csv"), ("generate_assignment", assignment, "--force")):
        proc = nbgrader(course, *args, env=env)
        if proc.returncode:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    for i, student in enumerate(students):
        submit(course, root, assignment, student, wrong=i % 3 == 2)
    return course


def submit(course: Path, root: Path, assignment: str, student: str, wrong: bool) -> Path:
    """Hand in one simulated student's notebooks, as ``nbgrader collect`` leaves them in submitted/."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for release in sorted((root / "exercises" / assignment).glob("*.ipynb")):
        nbformat.write(submission(release, root / "solutions" / assignment / release.name, wrong),
                       folder / release.name)
    (folder / "timestamp.txt").write_text(SUBMITTED_AT)
    return folder
