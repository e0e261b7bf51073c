"""The instructor workflow, end to end, with the real nbgrader: generate, release, fetch, submit, collect,
autograde, feedback, export; and a class whose submissions fail in every way the course expects.

Everything happens in a temporary copy of the course (autograder/, solutions/<assignment>/; exercises/
is regenerated there), with a temporary exchange, so the repository's gradebook is never touched.
One assignment that trains nothing (ch05_vgg) keeps the suite to a few minutes: each autograde run starts a
kernel per student.

Scores of ch05_vgg/vgg (10 points: 9 autograded, 1 written answer graded by hand): test_receptive_field 2,
test_vgg_parameters 2, test_vgg_features 2, test_sgd_update 3, answer_vgg 1 (manual). Every test cell runs
visible checks and a hidden one.
"""

from __future__ import annotations

import csv
import getpass
import re
import shutil
from typing import Callable

import nbformat
import pytest
from nbgrader_course import COURSE_ID, Course, make_course, prepend, replace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ASSIGNMENT = "ch05_vgg"
NOTEBOOK = "vgg"
TIMEOUT_S = 20  # per-cell timeout of the test course (60 s in the real configuration)
AUTO_CELLS = {
    "test_receptive_field": 2.0,
    "test_vgg_parameters": 2.0,
    "test_vgg_features": 2.0,
    "test_sgd_update": 3.0,
}
MANUAL_CELLS = {"answer_vgg": 1.0}
FULL = AUTO_CELLS
ZERO = {k: 0.0 for k in AUTO_CELLS}

# Wrong answers, as edits of the reference solution.
# AlexNet's overlapping max-pool instead of VGG's 2x2: layers, parameters and shapes right, values wrong (the
# visible value case and the hidden probe, both judged outside the kernel, fail).
OVERLAPPING_POOL = ("nn.MaxPool2d(kernel_size=2, stride=2)", "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)")
# fc1 reads the paper's 512 x 7 x 7 features whatever the table and image size: right for the visible
# VGG-16 and VGG-11 at 224 x 224, wrong for the hidden cases on other sizes.
PAPER_FC1 = ("flat = channels * side * side", "flat = 512 * 7 * 7")


def _scores(**changes: float) -> dict[str, float]:
    return {**FULL, **changes}


# ---- the course (tests/nbgrader_course.py) -----------------------------------------------------------


def _without_cells(nb: nbformat.NotebookNode, *grade_ids: str) -> nbformat.NotebookNode:
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return nb


# Faulty submissions: (student id, how to build the notebook, expected autograded scores, log pattern).
FAULTS: dict[str, tuple[Callable[[Course], object], dict[str, float] | None, str]] = {
    # The vgg_features cell raises before defining the function: its test fails with NameError.
    "f_raises": (lambda c: c.student_notebook({"vgg_features": prepend("raise RuntimeError('half done')")}),
                 _scores(test_vgg_features=0), r"failed: test_vgg_features \(NameError"),
    # sys.exit in a solution cell: IPython turns SystemExit into an error; the kernel lives on.
    "f_sys_exit": (lambda c: c.student_notebook({"sgd_update": prepend("import sys\nsys.exit(3)")}),
                   _scores(test_sgd_update=0), r"failed: test_sgd_update \(NameError"),
    # The kernel dies in the vgg_features cell: earlier tests keep their points, later cells are not run.
    "f_os_exit": (lambda c: c.student_notebook({"vgg_features": prepend("import os\nos._exit(1)")}),
                  _scores(test_vgg_features=0, test_sgd_update=0),
                  r"kernel died in cell \d+ \(vgg_features\)"),
    # An infinite loop inside a graded function: the test cell is interrupted after the timeout.
    "f_loop": (lambda c: c.student_notebook({"sgd_update": replace("    objective_grad = ", "    while True:\n"
                                                                    "        pass\n    objective_grad = ")}),
               _scores(test_sgd_update=0), r"failed: test_sgd_update \(CellTimeoutError"),
    # Correct code that prints 200,000 lines and one 5 MB line: full marks, the output is capped.
    "f_output": (lambda c: c.student_notebook({"sgd_update": prepend(
        "for i in range(200_000):\n    print(i)\nprint('x' * 5_000_000)")}), FULL, r"every test passed"),
    # Correct code whose graded calls emit a PyTorch UserWarning on stderr: full marks.
    "f_warning": (lambda c: c.student_notebook({"vgg_parameters": replace(
        "    return total", "    return int(torch.tensor(torch.tensor(total)))")}),
        FULL, r"every test passed"),
    # Not JSON at all (a truncated file): graded as an unanswered release, 0 points.
    "f_bad_json": (lambda c: nbformat.writes(c.student_notebook())[:5000], ZERO, r"not a readable notebook"),
    # No notebook in the submission folder: no submission is recorded (exported as 0).
    "f_missing": (lambda c: None, None, r"No notebooks were matched by '.*f_missing"),
    # Test cells deleted from a wrong submission: nbgrader puts them back, they run and fail.
    "f_deleted_test": (lambda c: _without_cells(c.student_notebook({"vgg_features": replace(*OVERLAPPING_POOL)}),
                                                "test_vgg_features", "test_receptive_field"),
                       _scores(test_vgg_features=0), r"failed: test_vgg_features"),
    # A locked test cell emptied (and its points raised) in a wrong submission: restored, fails.
    "f_edited_test": (lambda c: _edit_locked(c.student_notebook({"vgg_features": replace(*OVERLAPPING_POOL)})),
                      _scores(test_vgg_features=0), r"failed: test_vgg_features"),
}


def _edit_locked(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_vgg_features")
    cell.source = "pass  # nothing to see here"
    cell.metadata["nbgrader"]["points"] = 20
    return nb


HONEST = {
    # the reference solution, handed in through the exchange (student id = the account's user name)
    getpass.getuser(): FULL,
    # the untouched release
    "bob": ZERO,
    # a VGG body with overlapping pooling (its value checks fail) and a parameter count with the paper's
    # fc1 size (its visible cases pass, its hidden ones fail)
    "carol": _scores(test_vgg_features=0, test_vgg_parameters=0),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    # a short per-cell timeout for the infinite-loop submission
    return make_course(tmp_path_factory.mktemp("course"), ASSIGNMENT, timeout_s=TIMEOUT_S)


@pytest.fixture(scope="module")
def graded(course: Course) -> Course:
    """The whole workflow up to autograding, for the honest and the faulty students in one batch."""
    me = getpass.getuser()
    # class list: import a CSV, then add one more student by hand
    students = [me, "bob", "carol", *FAULTS]
    with open(course.autograder / "students.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "first_name", "last_name", "email"])
        for sid in students[:-1]:
            writer.writerow([sid, sid.title(), "Student", f"{sid}@example.edu"])
    course.nbgrader("db", "student", "import", "students.csv")
    course.nbgrader("db", "student", "add", students[-1], "--first-name=Last", "--last-name=Student")

    # generate and release; the exchange student fetches, answers, submits; the instructor collects
    course.nbgrader("generate_assignment", ASSIGNMENT)
    course.nbgrader("release_assignment", ASSIGNMENT)
    course.as_student("fetch_assignment", ASSIGNMENT)
    nbformat.write(course.student_notebook(), course.root / "home" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    course.as_student("submit", ASSIGNMENT)
    course.nbgrader("collect", ASSIGNMENT)
    assert (course.autograder / "submitted" / me / ASSIGNMENT / f"{NOTEBOOK}.ipynb").is_file()

    # the others hand in through a plain copy into submitted/
    course.submit("bob", course.student_notebook(answered=False))
    course.submit("carol", course.student_notebook({"vgg_features": replace(*OVERLAPPING_POOL),
                                                      "vgg_parameters": replace(*PAPER_FC1)}))
    for sid, (build, _, _) in FAULTS.items():
        course.submit(sid, build(course))

    proc = course.nbgrader("autograde", ASSIGNMENT, check=False)
    course.log["first"], course.returncode["first"] = proc.stderr, proc.returncode
    return course


# ---- the honest students -----------------------------------------------------------------------------
@pytest.mark.parametrize("student", sorted(HONEST))
def test_honest_submissions_get_exact_scores(graded: Course, student: str) -> None:
    scores = graded.scores(student)
    assert scores is not None
    auto = {k: v for k, v in scores.items() if k in AUTO_CELLS}
    assert auto == HONEST[student]
    # the written answer waits for the instructor, or scores 0 when left as released
    assert scores["answer_vgg"] == (0.0 if student == "bob" else None)
    assert re.search(rf"Autograded student '{student}', {ASSIGNMENT}/{NOTEBOOK}: ", graded.log["first"])


def test_autograde_batch_completes(graded: Course) -> None:
    """One student without a notebook is a warning, not a failure of the batch."""
    assert graded.returncode["first"] == 0, graded.log["first"][-3000:]


# ---- the faulty students, graded in the same batch -----------------------------------------------------
@pytest.mark.parametrize("student", list(FAULTS))
def test_fault_is_graded_as_it_deserves(graded: Course, student: str) -> None:
    _, expected, pattern = FAULTS[student]
    scores = graded.scores(student)
    if expected is None:
        assert scores is None  # no submission recorded; exports count it as 0
    else:
        assert scores is not None
        auto = {k: v for k, v in scores.items() if k in AUTO_CELLS}
        assert auto == expected
    student_lines = [ln for ln in graded.log["first"].splitlines() if student in ln]
    assert any(re.search(pattern, ln) for ln in student_lines), "\n".join(student_lines[-20:])


def test_huge_output_is_capped(graded: Course) -> None:
    path = graded.autograder / "autograded" / "f_output" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert path.stat().st_size < 200_000
    text = path.read_text()
    assert "Output truncated" in text or "truncated by the grader" in text


def test_kernel_death_marks_later_cells_not_run(graded: Course) -> None:
    path = graded.autograder / "autograded" / "f_os_exit" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    enames = {c.metadata["nbgrader"]["grade_id"]: [o.get("ename") for o in c.outputs if o.output_type == "error"]
              for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert enames["test_vgg_parameters"] == []
    assert enames["test_vgg_features"] == enames["test_sgd_update"] == ["KernelDied"]


def test_unreadable_submission_gets_a_note_in_its_feedback_notebook(graded: Course) -> None:
    path = graded.autograder / "autograded" / "f_bad_json" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert "could not be read as a notebook" in nb.cells[0].source


# ---- unknown students, feedback, export, re-running ------------------------------------------------------
def test_unknown_student_is_rejected(graded: Course) -> None:
    graded.submit("mallory", graded.student_notebook())
    try:
        proc = graded.nbgrader("autograde", ASSIGNMENT, "--student=mallory", check=False)
    finally:
        shutil.rmtree(graded.autograder / "submitted" / "mallory")
    assert proc.returncode != 0
    assert "No student with ID 'mallory' exists in the database" in proc.stderr
    assert graded.scores("mallory") is None


def test_manual_grade_feedback_and_export(graded: Course) -> None:
    from nbgrader.api import Gradebook

    me = getpass.getuser()
    # what the formgrader does when the instructor marks the written answer
    with Gradebook(f"sqlite:///{graded.autograder / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        grade = gb.find_grade("answer_vgg", NOTEBOOK, ASSIGNMENT, me)
        grade.manual_score = 1.0
        gb.db.commit()
    graded.nbgrader("generate_feedback", ASSIGNMENT)
    html = graded.autograder / "feedback" / me / ASSIGNMENT / f"{NOTEBOOK}.html"
    assert html.is_file()
    text = html.read_text()
    assert "Score: 10.0 / 10.0" in text or "10.0 / 10.0" in text
    # hidden tests stay hidden (the HTML splits code into highlighted tokens; an item name stays whole)
    assert "BEGIN HIDDEN TESTS" not in text and f"{ASSIGNMENT}/receptive_field" not in text
    assert (graded.autograder / "feedback" / "carol" / ASSIGNMENT / f"{NOTEBOOK}.html").is_file()
    # return the feedback through the exchange, to the student who submitted through it, who fetches it
    graded.nbgrader("release_feedback", ASSIGNMENT, f"--student={me}")
    assert list((graded.root / "exchange" / COURSE_ID / "feedback").glob("*.html"))
    graded.as_student("fetch_feedback", ASSIGNMENT)
    assert list((graded.root / "home" / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK}.html"))
    # export every score to CSV
    graded.nbgrader("export", "--to=grades.csv")
    with open(graded.autograder / "grades.csv", newline="") as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert float(rows[me]["score"]) == 10.0
    assert float(rows["carol"]["score"]) == 5.0
    assert float(rows["bob"]["score"]) == 0.0
    assert float(rows["f_missing"]["score"]) == 0.0
    assert float(rows["f_bad_json"]["score"]) == 0.0


def test_autograde_can_run_again(graded: Course) -> None:
    """After every fault, a forced re-run of the whole class succeeds and gives the same scores."""
    before = {s: graded.scores(s) for s in [*HONEST, *FAULTS]}
    proc = graded.nbgrader("autograde", ASSIGNMENT, "--force", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = {s: graded.scores(s) for s in [*HONEST, *FAULTS]}
    for student in before:  # manual scores are kept; autograded ones are recomputed identically
        assert after[student] == before[student], student
