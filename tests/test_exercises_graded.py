"""Every assignment graded for real: nbgrader autograde, one batch per assignment, four submissions.

Data-driven: each assignment with a case file ``tests/exercise_cases/<assignment>.py`` is graded in a
throw-away copy of the course (tests/nbgrader_course.py) for

- ``honest``: the reference solution; every autograded point;
- ``wrong``: the solution with the cells in ``WRONG`` replaced; loses exactly ``WRONG_LOSES`` points;
- ``blank``: the release as handed out; 0 points;
- ``forbidden``: the solution with the cells in ``FORBIDDEN`` replaced by code that calls what the
  prompt forbids (the package's reference block, torch's built-in); loses exactly ``FORBIDDEN_LOSES``
  points, and the feedback names the forbidden call (``FORBIDDEN_MESSAGE``).

A case file defines::

    WRONG = {"<solution cell grade_id>": "<replacement source>"}
    WRONG_LOSES = <points>
    FORBIDDEN = {"<solution cell grade_id>": "<source using the forbidden reference>"}
    FORBIDDEN_LOSES = <points>
    FORBIDDEN_MESSAGE = "<text the grader's message holds, e.g. the dotted name torch.autograd>"  # optional;
                                                                    # default "forbidden"
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from nbgrader_course import (REPO, Course, autograded_points, grade_id, make_course, notebook_name, set_source,
                             solution_answers)

CASES_DIR = Path(__file__).resolve().parent / "exercise_cases"
ASSIGNMENTS = sorted(p.stem for p in CASES_DIR.glob("ch*.py"))
STUDENTS = ("honest", "wrong", "blank", "forbidden")
DEFAULT_MESSAGE = "forbidden"  # when a case file names no FORBIDDEN_MESSAGE


def load_case(assignment: str) -> ModuleType:
    """The case file of an assignment, checked against its solution notebook."""
    path = CASES_DIR / f"{assignment}.py"
    spec = importlib.util.spec_from_file_location(f"exercise_case_{assignment}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = REPO / "solutions" / assignment / f"{notebook_name(assignment)}.ipynb"
    solutions = solution_answers(source)
    total = sum(autograded_points(source).values())
    for name in ("WRONG", "FORBIDDEN"):
        edits = getattr(module, name, None)
        if not isinstance(edits, dict) or not edits:
            raise AssertionError(f"{path.name}: {name} must be a non-empty dict grade_id -> replacement source")
        unknown = sorted(set(edits) - set(solutions))
        if unknown:
            raise AssertionError(f"{path.name}: {name} names {unknown}, which are not solution cells of "
                                 f"{source.name}; the solution cells are {sorted(solutions)}")
        loses = getattr(module, f"{name}_LOSES", None)
        if not isinstance(loses, (int, float)) or not 0 < loses <= total:
            raise AssertionError(f"{path.name}: {name}_LOSES must be a number of points in (0, {total}], got {loses!r}")
    module.FORBIDDEN_MESSAGE = getattr(module, "FORBIDDEN_MESSAGE", DEFAULT_MESSAGE)
    if not isinstance(module.FORBIDDEN_MESSAGE, str) or not module.FORBIDDEN_MESSAGE:
        raise AssertionError(f"{path.name}: FORBIDDEN_MESSAGE must be text the feedback shows, e.g. the forbidden call")
    return module


@dataclass
class Graded:
    course: Course
    case: ModuleType
    points: dict[str, float]  # autograded test cells of the release -> points

    def total(self, student: str) -> float:
        scores = self.course.scores(student)
        assert scores is not None, f"no submission recorded for {student}:\n{self.course.log['autograde'][-3000:]}"
        return sum(scores[name] or 0.0 for name in self.points)

    def test_outputs(self, student: str) -> str:
        """What the autograded test cells printed or raised (not their source, not the prompts)."""
        cells = [c for c in self.course.autograded_notebook(student).cells if grade_id(c) in self.points]
        return json.dumps([c.outputs for c in cells])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_case_file_names_real_cells_and_points(assignment: str) -> None:
    """Fast check of every case file, so a renamed cell fails here and not after minutes of grading."""
    load_case(assignment)


@pytest.fixture(scope="class")
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """The four submissions of the class's assignment, graded in one nbgrader batch."""
    assignment = request.cls.assignment
    case = load_case(assignment)
    course = make_course(tmp_path_factory.mktemp(assignment), assignment)
    course.nbgrader("generate_assignment", assignment)
    for student in STUDENTS:
        course.nbgrader("db", "student", "add", student, f"--first-name={student}", "--last-name=Student")
    course.submit("honest", course.student_notebook())
    course.submit("wrong", course.student_notebook({k: set_source(v) for k, v in case.WRONG.items()}))
    course.submit("blank", course.student_notebook(answered=False))
    course.submit("forbidden", course.student_notebook({k: set_source(v) for k, v in case.FORBIDDEN.items()}))
    proc = course.nbgrader("autograde", assignment, check=False)
    course.log["autograde"], course.returncode["autograde"] = proc.stderr, proc.returncode
    assert proc.returncode == 0, proc.stderr[-5000:]
    return Graded(course, case, autograded_points(course.release))


class GradedAssignment:
    """The four graded submissions of one assignment (subclassed once per assignment below).

    One class per assignment, not one parametrized module: ``make test`` runs pytest-xdist with
    ``--dist loadscope``, which keeps a class on one worker, so each assignment is graded once, and the
    assignments spread over the workers.
    """

    assignment = ""

    @pytest.mark.slow
    @pytest.mark.timeout(1800)
    def test_honest_submission_gets_every_autograded_point(self, graded: Graded) -> None:
        assert graded.total("honest") == sum(graded.points.values()), graded.course.scores("honest")

    @pytest.mark.slow
    @pytest.mark.timeout(1800)
    def test_one_wrong_block_loses_exactly_its_points(self, graded: Graded) -> None:
        expected = sum(graded.points.values()) - graded.case.WRONG_LOSES
        assert graded.total("wrong") == expected, graded.course.scores("wrong")

    @pytest.mark.slow
    @pytest.mark.timeout(1800)
    def test_blank_release_scores_zero(self, graded: Graded) -> None:
        assert graded.total("blank") == 0.0, graded.course.scores("blank")

    @pytest.mark.slow
    @pytest.mark.timeout(1800)
    def test_forbidden_reference_scores_zero_for_its_block_and_is_named(self, graded: Graded) -> None:
        expected = sum(graded.points.values()) - graded.case.FORBIDDEN_LOSES
        assert graded.total("forbidden") == expected, graded.course.scores("forbidden")
        assert graded.case.FORBIDDEN_MESSAGE in graded.test_outputs("forbidden")


for _assignment in ASSIGNMENTS:  # TestGraded_ch02_lenet, ...: pytest collects each as its own class
    globals()[f"TestGraded_{_assignment}"] = type(f"TestGraded_{_assignment}", (GradedAssignment,),
                                                   {"assignment": _assignment})
