"""The commands of book/autograder_guide.md's "Grading a class" that grade nobody: due dates, zip_collect from
a learning platform's downloads, and the grading command's clear errors. The grading itself is run by
tests/test_grade_class.py; the guide lists the commands no test runs (SLURM, the hub, a real server).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import simulate  # noqa: E402

ASSIGNMENT = "ch02_lenet"
GUIDE = REPO / "book" / "autograder_guide.md"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("guide")
    env = simulate.grading_env()
    course = simulate.make_course(root, ASSIGNMENT, ["alice", "bob_2"], env)
    shutil.rmtree(course / "submitted")
    return course, env


def _guide_block(heading: str) -> str:
    """The first bash block after a heading of the guide: the test runs what the guide shows."""
    text = GUIDE.read_text()
    section = text[text.index(heading):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def _run(course: Path, env: dict[str, str], line: str) -> subprocess.CompletedProcess[str]:
    line = line.split("#", 1)[0].strip()
    proc = subprocess.run(["bash", "-c", line], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{line}\n{proc.stderr[-3000:]}"
    return proc


def test_due_date_is_recorded(course: tuple[Path, dict[str, str]]) -> None:
    from nbgrader.api import Gradebook

    root, env = course
    block = _guide_block("### Due dates")
    for line in block.strip().splitlines():
        _run(root, env, line)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id="cnnbook") as gb:
        assert str(gb.find_assignment(ASSIGNMENT).duedate) == "2026-03-01 23:59:00"


def test_zip_collect_files_from_a_learning_platform(course: tuple[Path, dict[str, str]]) -> None:
    root, env = course
    archive = root / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    release = root.parent / "exercises" / ASSIGNMENT / "lenet.ipynb"
    shutil.copy(release, archive / "alice_20260302T093000Z_lenet.ipynb")
    shutil.copy(release, archive / "bob_2_20260302T101500Z_lenet.ipynb")
    for line in _guide_block("### Uploads from a learning platform").strip().splitlines():
        _run(root, env, line)
    for student, stamp in (("alice", "2026-03-02 09:30:00"), ("bob_2", "2026-03-02 10:15:00")):
        folder = root / "submitted" / student / ASSIGNMENT
        assert (folder / "lenet.ipynb").read_bytes() == release.read_bytes()
        assert (folder / "timestamp.txt").read_text().startswith(stamp)


def test_grading_command_errors_name_the_fix(course: tuple[Path, dict[str, str]]) -> None:
    root, env = course
    base = [sys.executable, "-m", "autograder", "grade", "ch03_pooling", f"--course={root}"]
    proc = subprocess.run(base, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "nobody has handed in ch03_pooling" in proc.stderr
    assert "nbgrader collect" in proc.stderr
    proc = subprocess.run([*base[:5], f"--course={root.parent}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "has no nbgrader_config.py" in proc.stderr
