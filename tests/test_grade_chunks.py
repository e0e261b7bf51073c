"""The class grading command's chunks (autograder/batch.py): how a class is cut into chunks, and what
happens to a chunk's students when its grading process dies or runs over the time limit.

The grading process is replaced by a stand-in that speaks grade_students.py's protocol (``@@begin`` and
``@@done`` lines in the results file) and crashes, hangs or fails on the students named so; the real
process is exercised end to end by tests/test_grade_class.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import batch  # noqa: E402

STAND_IN = r'''
import json, os, sys, time
results, assignment, students = sys.argv[2], sys.argv[3], sys.argv[4:]
with open("processes.log", "a") as fh:
    fh.write(" ".join(students) + "\n")
for student in students:
    with open(results, "a") as fh:
        fh.write("@@begin " + student + "\n")
    if student.startswith("crash"):
        os.kill(os.getpid(), 9)
    if student.startswith("hang"):
        time.sleep(600)
    if student.startswith("forge"):  # what an unsandboxed kernel could append to the results file
        forged = {"student": "zed", "ok": True, "seconds": 0.1, "attempts": 1, "log": ""}
        with open(results, "a") as fh:
            fh.write("@@begin zed\n@@done " + json.dumps(forged) + "\n@@done {not json\n"
                     + "@@done " + json.dumps({**forged, "student": student, "ok": "yes"}) + "\n")
    if student.startswith("slow"):  # a real student's pace: its marker, then a while before the next
        os.makedirs(os.path.join("grading_state", assignment), exist_ok=True)
        with open(os.path.join("grading_state", assignment, student + ".json"), "w") as fh:
            fh.write("{}")
        time.sleep(1.5)
    ok = not student.startswith("bad")
    log = "" if ok else "[AutogradeApp | ERROR] No student with ID '%s' exists in the database\n" % student
    log += "[AutogradeApp | INFO] FLAGGED FOR MANUAL REVIEW\n" if student.startswith("odd") else ""
    with open(results, "a") as fh:
        fh.write("@@done " + json.dumps({"student": student, "ok": ok, "seconds": 0.1, "attempts": 1,
                                        "log": log}) + "\n")
'''


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    driver = tmp_path / "stand_in.py"
    driver.write_text(STAND_IN)
    monkeypatch.setattr(batch, "DRIVER", driver)
    return tmp_path


def _grade(course: Path, students: list[str], timeout: float = 60) -> dict[str, batch.Outcome]:
    outcomes = batch.grade_chunk(students, str(course), "ch05_vgg", env={"PATH": "/usr/bin:/bin"}, timeout=timeout)
    assert sorted(o.student for o in outcomes) == sorted(students)  # every student has exactly one outcome
    return {o.student: o for o in outcomes}


def _processes(course: Path) -> list[list[str]]:
    return [line.split() for line in (course / "processes.log").read_text().splitlines()]


def test_one_process_grades_the_whole_chunk(course: Path) -> None:
    out = _grade(course, ["a", "b", "odd1", "bad1", "c"])
    assert [out[s].status for s in ("a", "b", "odd1", "c")] == ["graded"] * 4
    assert out["odd1"].flagged and not out["a"].flagged
    assert out["bad1"].status == "failed" and "No student with ID 'bad1'" in out["bad1"].message
    assert _processes(course) == [["a", "b", "odd1", "bad1", "c"]]


def test_a_killed_process_fails_one_student_and_the_rest_go_on(course: Path) -> None:
    out = _grade(course, ["a", "crash1", "b", "crash2", "c"])
    assert {s: o.status for s, o in out.items()} == {"a": "graded", "crash1": "failed", "b": "graded",
                                                     "crash2": "failed", "c": "graded"}
    assert out["crash1"].message == "nbgrader was killed by signal 9"
    assert _processes(course) == [["a", "crash1", "b", "crash2", "c"], ["b", "crash2", "c"], ["c"]]


def test_a_student_over_the_time_limit_is_stopped(course: Path) -> None:
    out = _grade(course, ["a", "hang1", "b"], timeout=2)
    assert out["hang1"].status == "failed" and out["hang1"].message == "timed out after 2 s"
    assert out["a"].status == out["b"].status == "graded"
    assert _processes(course) == [["a", "hang1", "b"], ["b"]]


def test_forged_result_lines_add_or_change_no_student(course: Path) -> None:
    """Another student's @@begin/@@done, a malformed line, a record of the wrong shape: all ignored."""
    out = _grade(course, ["a", "forge1", "b"])
    assert {s: o.status for s, o in out.items()} == {"a": "graded", "forge1": "graded", "b": "graded"}
    assert _processes(course) == [["a", "forge1", "b"]]


def test_a_process_that_cannot_start_fails_its_students_with_the_reason(course: Path) -> None:
    batch.DRIVER.write_text("raise SystemExit('ERROR: the course plugins could not be imported')\n")
    out = _grade(course, ["a", "b"])
    assert {o.status for o in out.values()} == {"failed"}
    assert all("the course plugins could not be imported" in o.message for o in out.values())


def test_glob_characters_fail_without_running(course: Path) -> None:
    out = _grade(course, ["a", "all*"])
    assert out["all*"].status == "failed" and "glob" in out["all*"].message
    assert _processes(course) == [["a"]]


def test_markers_come_from_the_grading_process_only(course: Path) -> None:
    """batch.py writes no marker itself: a marker means nbgrader finished (grade_students.py writes it)."""
    _grade(course, ["a"])
    assert not (course / batch.STATE).exists()


class _Bar:
    """tqdm's interface as batch._run uses it; remembers every value the bar showed."""

    def __init__(self, total: int, **_: object) -> None:
        self.n, self.shown = 0, []

    def __enter__(self) -> "_Bar":
        _Bar.last = self
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def update(self, k: int) -> None:
        self.n += k
        self.shown.append(self.n)


def test_the_progress_bar_counts_students_not_chunks(course: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One chunk of four students: the bar shows each student as its marker appears, not 4 at the end."""
    from distributed import Client, LocalCluster

    # a worker thread of this process, so that it runs the stand-in driver set by the fixture
    monkeypatch.setattr(batch, "_client", lambda workers, scheduler: Client(LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)))
    students = ["slow1", "slow2", "slow3", "slow4"]
    outcomes = batch._run(students, str(course), "ch05_vgg", {"PATH": "/usr/bin:/bin"}, 60, 1, None, True, _Bar, 4)
    assert [o.status for o in outcomes] == ["graded"] * 4, outcomes
    shown = _Bar.last.shown
    assert shown == sorted(shown) and shown[-1] == 4
    assert {1, 2, 3} <= set(shown), shown  # the values in between were shown while the chunk ran


@pytest.mark.parametrize(("n", "workers", "sizes"), [
    (12, 2, [6, 6]),                 # a small class: one chunk per worker, start-up paid twice
    (24, 2, [12, 12]),               # still one each: three chunks of 8 would leave one worker idle a third
    (48, 2, [8] * 6),                # three chunks per worker once each holds 8
    (200, 2, [25] * 8),              # capped at 25 students per process
    (1000, 16, [21] * 47 + [13]),    # about three chunks per worker
    (40, 16, [3] * 13 + [1]),        # small shares: every worker gets work
    (1, 2, [1]),
])
def test_chunk_sizes(n: int, workers: int, sizes: list[int]) -> None:
    students = [f"s{i:04d}" for i in range(n)]
    parts = batch.chunks(students, workers)
    assert [len(p) for p in parts] == sizes
    assert [s for p in parts for s in p] == students  # in order, each once


def test_every_thread_of_every_worker_takes_a_chunk() -> None:
    """A cluster of one worker with 16 threads (the guide's `dask worker --nworkers 1 --nthreads 16`) grades 16
    chunks at once: the chunks are sized for its threads, not for its one worker."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=3, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert batch.task_slots(client) == 6
    with batch._client(2, None) as client:  # the command's own local cluster: one thread per worker
        assert batch.task_slots(client) == 2
        client.cluster.close()


def test_chunk_size_given() -> None:
    assert [len(p) for p in batch.chunks(list("abcde"), 2, size=2)] == [2, 2, 1]
    with pytest.raises(ValueError, match="at least one student"):
        batch.chunks(list("abc"), 2, size=0)


def test_the_real_driver_needs_its_results_file() -> None:
    """grade_students.py refuses a call without its results file, with its usage."""
    import subprocess

    proc = subprocess.run([sys.executable, str(REPO / "autograder" / "grade_students.py"), "ch05_vgg", "alice"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--results FILE" in proc.stderr
