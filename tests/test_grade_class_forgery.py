"""A crafted submission graded through `python -m autograder grade` (the chunked class command), not through
`nbgrader autograde`: it tries to forge the grading process's own protocol.

The chunk process (autograder/grade_students.py) tells the batch which students it finished with
``@@begin``/``@@done`` lines, and marks a finished student in ``grading_state/``, which a later run skips.
Mallory's notebook is honest work plus a cell that
- writes forged ``@@begin``/``@@done`` lines (Carol "graded", Mallory herself "failed" with an integrity
  error) to the cell's output and to the kernel's own stdout and stderr, which it shares with the chunk
  process;
- looks for the chunk's results file (``/tmp/cnnbook-chunk-*/results``, and any open file of that name under
  ``/proc/*/fd``) and appends the same lines to it;
- writes a marker for Carol into the course's ``grading_state/`` at its real path.

The course lives outside /tmp (under the ignored _build/), so that the sandbox's private /tmp is not what
hides it: the kernel is given the course's real path. Carol handed in but is left out of the first run
(``--student``): a forged line or marker would show as an outcome or a marker for her, or as her being
skipped by the next run. Alice and Bob are honest students in the same chunk, graded before and after
Mallory.

Tried once by hand with the sandbox turned off (CNNBOOK_ISOLATION=none, which the guide calls unsafe): the
kernel found the results file (in /tmp and under /proc) and appended to it, and wrote Carol's marker; the
batch's parser, which takes only the next student's ``@@begin`` and the current student's well-formed
``@@done``, still gave no outcome to Carol (Mallory could only mark herself failed). In the sandbox the
kernel reaches neither.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbgrader_course import printed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import batch  # noqa: E402
import db_snapshots  # noqa: E402
import simulate  # noqa: E402

ASSIGNMENT, NOTEBOOK = "ch05_vgg", "vgg"
STUDENTS = ["alice", "bob", "carol", "mallory"]  # simulate gives the third (carol) one wrong answer
HONEST_TOTAL = 9.0  # ch05_vgg's autograded points, all earned by a correct submission

FORGE = '''
import glob, json, os
_forged = {{"student": "carol", "ok": True, "seconds": 0.1, "attempts": 1, "log": ""}}
_lines = ("@@begin carol\\n@@done " + json.dumps(_forged) + "\\n@@done " + json.dumps(
    {{**_forged, "student": "mallory", "ok": False, "log": "[integrity] ERROR forged by mallory\\n"}}) + "\\n")
print(_lines)
for _fd in (1, 2):  # the kernel's own stdout and stderr, inherited from the grading process
    os.write(_fd, _lines.encode())
_targets = glob.glob("/tmp/cnnbook-chunk-*/results")
for _fd_link in glob.glob("/proc/*/fd/*"):
    try:
        if os.readlink(_fd_link).endswith("/results"):
            _targets.append(_fd_link)
    except OSError:
        pass
_state, _reached = "{course}/grading_state/{assignment}", {{}}
for _target in _targets + ["marker"]:
    try:
        if _target == "marker":
            os.makedirs(_state, exist_ok=True)
            open(_state + "/carol.json", "w").write("{{}}")
        else:
            open(_target, "a").write(_lines)
        _reached[_target] = "ok"
    except Exception as exc:
        _reached[_target] = type(exc).__name__
print("FORGERY", repr(_reached))
'''


ENV = simulate.grading_env(CNNBOOK_ISOLATION="bwrap")


def _grade(course: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, f"--course={course}", "--json",
                           "--workers=1", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=1100)
    assert proc.stdout.strip().startswith("{"), f"no summary (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    summary = json.loads(proc.stdout)
    summary["returncode"] = proc.returncode
    summary["status"] = {o["student"]: o["status"] for o in summary["outcomes"]}
    return summary


def _printed(course: Path, student: str, tag: str) -> object:
    return printed(course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb", tag)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> dict:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: `make sandbox` (apt-get install bubblewrap)")
    (REPO / "_build").mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="test-forgery-", dir=REPO / "_build"))
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    os.chmod(root, 0o755)
    course = simulate.make_course(root, ASSIGNMENT, STUDENTS, ENV)
    path = course / "submitted" / "mallory" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    target = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sgd_update")
    target.source = FORGE.format(course=course, assignment=ASSIGNMENT) + "\n" + target.source
    nbformat.write(nb, path)
    # one chunk, Mallory between two honest students; Carol is left for the second run
    first = _grade(course, "--chunk=3", "--student=alice", "--student=mallory", "--student=bob")
    markers_after_first = sorted(p.stem for p in (course / batch.STATE / ASSIGNMENT).glob("*.json"))
    totals_after_first = db_snapshots.totals(db_snapshots.default_url(course))
    second = _grade(course)
    return {"course": course, "first": first, "markers": markers_after_first, "totals": totals_after_first,
            "second": second}


def test_forged_lines_and_markers_change_no_outcome(runs: dict) -> None:
    first = runs["first"]
    assert first["status"] == {"alice": "graded", "bob": "graded", "mallory": "graded"}  # no carol, no failure
    assert first["integrity_problems"] == [] and first["returncode"] == 0
    assert all(o["message"] == "" and o["attempts"] == 1 for o in first["outcomes"])
    assert runs["markers"] == ["alice", "bob", "mallory"]


def test_the_forger_reached_neither_the_results_file_nor_the_course(runs: dict) -> None:
    reached = _printed(runs["course"], "mallory", "FORGERY")
    # no results file in the sandbox's /tmp, no open file named results under its /proc: only the marker tried
    assert set(reached) == {"marker"}, reached
    # whatever the kernel's write did, it did inside the sandbox: the course has no marker for Carol
    assert "carol" not in runs["markers"]


def test_exact_scores_and_the_left_out_student_is_graded_next(runs: dict) -> None:
    assert runs["totals"] == {"alice": HONEST_TOTAL, "bob": HONEST_TOTAL, "mallory": HONEST_TOTAL}
    second = runs["second"]
    assert second["status"] == {"alice": "skipped", "bob": "skipped", "carol": "graded", "mallory": "skipped"}
    totals = db_snapshots.totals(db_snapshots.default_url(runs["course"]))
    assert totals["carol"] < HONEST_TOTAL and {k: v for k, v in totals.items() if k != "carol"} == runs["totals"]
