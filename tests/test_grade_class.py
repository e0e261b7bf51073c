"""Grading a class: `python -m autograder grade` on a Dask LocalCluster with a real PostgreSQL gradebook,
checked against a serial `python -m nbgrader autograde` on SQLite; re-runs, --force, a killed grading
process, a failing student; the gradebook guard on both databases.

The class is simulated (autograder/simulate.py): submissions are built from the release and the solutions
at test time, so a rewritten assignment needs no change here. ch05_vgg trains nothing and grades in
seconds. PostgreSQL runs from Debian's binaries (`make postgres`) as a non-root user in a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import db_snapshots  # noqa: E402
import integrity  # noqa: E402
import pg_local  # noqa: E402
import simulate  # noqa: E402

ASSIGNMENT = "ch05_vgg"
STUDENTS = [f"s{i:02d}" for i in range(12)]


# ---- a real PostgreSQL, started and stopped by the tests -------------------------------------------------
@pytest.fixture(scope="module")
def postgres():
    try:
        server = pg_local.LocalPostgres()
    except pg_local.PostgresUnavailable as exc:
        pytest.skip(str(exc))
    server.start()
    yield server
    server.stop()


# ---- the class ------------------------------------------------------------------------------------------
def _grade(course: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, f"--course={course}",
                             "--json", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _summary(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=1500)
    assert out.strip().startswith("{"), f"no summary (exit {proc.returncode}):\n{err[-3000:]}"
    summary = json.loads(out)
    summary["status"] = {o["student"]: o["status"] for o in summary["outcomes"]}
    summary["returncode"] = proc.returncode
    return summary


@pytest.fixture(scope="module")
def serial_sqlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The reference: stock nbgrader, one process for the whole class, SQLite, run as `python -m nbgrader`."""
    root = tmp_path_factory.mktemp("serial")
    course = simulate.make_course(root, ASSIGNMENT, STUDENTS, simulate.grading_env())
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], cwd=course,
                          env=simulate.grading_env(), capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return course, proc


@pytest.fixture(scope="module")
def dask_postgres(tmp_path_factory: pytest.TempPathFactory, postgres: pg_local.LocalPostgres) -> dict:
    """12 students on a LocalCluster of 2 workers, PostgreSQL gradebook; one grading process is killed
    mid-batch and one submission comes from a student missing from the class list; then a re-run."""
    url = postgres.create("cnnbook_class")
    env = simulate.grading_env(CNNBOOK_DB_URL=url)
    root = tmp_path_factory.mktemp("dask")
    course = simulate.make_course(root, ASSIGNMENT, STUDENTS, env)
    simulate.submit(course, root, ASSIGNMENT, "ghost", wrong=False)  # not in the class list
    journal = course / integrity.JOURNAL
    offset = journal.stat().st_size if journal.is_file() else 0
    first = _grade(course, "--workers=2", env=env)
    victim = _kill_first_grading(course, first, offset)
    runs = {"first": _summary(first), "victim": victim}
    runs["again"] = _summary(_grade(course, "--workers=2", env=env))
    return {"course": course, "url": url, "env": env, **runs}


def _kill_first_grading(course: Path, batch: subprocess.Popen, offset: int) -> str:
    """SIGKILL the nbgrader process of the first real student to begin after ``offset`` in the journal, as a
    crash of its worker would."""
    journal = course / integrity.JOURNAL
    deadline = time.time() + 900
    while time.time() < deadline and batch.poll() is None:
        text = journal.read_bytes()[offset:].decode() if journal.is_file() else ""
        for line in text.splitlines():
            parts = line.split()  # the last line may be half written
            if len(parts) == 6 and parts[3] == "begin" and parts[5] in STUDENTS:
                pid, student = parts[2], parts[5]
                os.kill(int(pid), signal.SIGKILL)
                return student
        time.sleep(0.2)
    raise AssertionError("no student began grading")


# ---- end to end ------------------------------------------------------------------------------------------
def test_serial_run_is_guarded_through_nbgrader_hooks(serial_sqlite) -> None:
    """`python -m nbgrader autograde` (no `nbgrader` in argv[0]) runs the guard: backup, journal, report."""
    course, proc = serial_sqlite
    assert f"no score changed outside the batch ({ASSIGNMENT}, 12 student(s))" in proc.stderr
    assert list((course / db_snapshots.BACKUP_FOLDER).glob("gradebook-*-run-*.db"))
    begun = [ln.split()[-1] for ln in (course / integrity.JOURNAL).read_text().splitlines() if " begin " in ln]
    assert sorted(begun) == STUDENTS


def test_dask_postgres_scores_equal_serial_sqlite(serial_sqlite, dask_postgres) -> None:
    course, _ = serial_sqlite
    reference = db_snapshots.totals(db_snapshots.default_url(course))
    assert sorted(reference) == STUDENTS and len(set(reference.values())) > 1  # right and wrong answers
    assert db_snapshots.totals(dask_postgres["url"]) == reference


def test_killed_and_failing_students_do_not_stop_the_batch(dask_postgres) -> None:
    first, victim = dask_postgres["first"], dask_postgres["victim"]
    assert first["status"][victim] == "failed"
    assert "killed by signal 9" in next(o["message"] for o in first["outcomes"] if o["student"] == victim)
    assert first["status"]["ghost"] == "failed"
    assert "No student with ID 'ghost'" in next(o["message"] for o in first["outcomes"] if o["student"] == "ghost")
    assert sorted(s for s, st in first["status"].items() if st == "graded") == sorted(set(STUDENTS) - {victim})
    assert first["returncode"] == 1 and Path(first["export"]).is_file()  # the export still ran


def test_rerun_grades_only_the_rest(dask_postgres) -> None:
    again, victim = dask_postgres["again"], dask_postgres["victim"]
    assert {s for s, st in again["status"].items() if st == "skipped"} == set(STUDENTS) - {victim}
    assert again["status"][victim] == "graded" and again["status"]["ghost"] == "failed"


def test_parallel_runs_report_no_false_changes(dask_postgres) -> None:
    """Two nbgrader --student processes at a time: neither reports the other's student as an outside change."""
    for run in ("first", "again"):
        assert dask_postgres[run]["integrity_problems"] == [], dask_postgres[run]["integrity_problems"]
    assert not (dask_postgres["course"] / integrity.CHANGES_LOG).exists()


def test_postgres_batch_backup_is_a_pg_dump(dask_postgres) -> None:
    dumps = sorted((dask_postgres["course"] / db_snapshots.BACKUP_FOLDER).glob("gradebook-*-batch-*.sql"))
    assert len(dumps) == 2  # one per batch, none per student
    text = dumps[-1].read_text()
    assert "CREATE TABLE public.grade" in text and "COPY public.grade " in text


def test_skip_and_force(dask_postgres) -> None:
    course, env = dask_postgres["course"], dask_postgres["env"]
    stamp = (course / "grading_state" / ASSIGNMENT / "s00.json").stat().st_mtime
    skipped = _summary(_grade(course, "--student=s00", env=env))
    assert skipped["status"] == {"s00": "skipped"} and skipped["returncode"] == 0
    forced = _summary(_grade(course, "--student=s00", "--force", "--workers=1", env=env))
    assert forced["status"] == {"s00": "graded"} and forced["integrity_problems"] == []
    assert (course / "grading_state" / ASSIGNMENT / "s00.json").stat().st_mtime > stamp


def test_formgrader_api_runs_the_guard(serial_sqlite) -> None:
    """The formgrader's Autograde button calls NbGraderAPI.autograde: the hooks run there too."""
    course, _ = serial_sqlite
    script = (
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "from nbgrader.apps import NbGraderAPI\nfrom nbgrader.coursedir import CourseDirectory\n"
        "config = PyFileConfigLoader('nbgrader_config.py', path='.').load_config()\n"
        "api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)\n"
        f"print(api.autograde('{ASSIGNMENT}', 'nobody_enrolled', create=False)['success'])\n"
    )
    simulate.submit(course, course.parent, ASSIGNMENT, "nobody_enrolled", wrong=False)
    proc = subprocess.run([sys.executable, "-c", script], cwd=course, env=simulate.grading_env(), capture_output=True,
                          text=True, timeout=600)
    shutil.rmtree(course / "submitted" / "nobody_enrolled")
    assert proc.stdout.strip().endswith("False"), proc.stderr[-2000:]  # not in the class list
    assert f"begin {ASSIGNMENT} nobody_enrolled" in (course / integrity.JOURNAL).read_text()


# ---- the guard on both databases ------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def gradebook(request: pytest.FixtureRequest) -> tuple[Path, str]:
    if request.param == "sqlite":
        course, _ = request.getfixturevalue("serial_sqlite")
        return course, db_snapshots.default_url(course)
    graded = request.getfixturevalue("dask_postgres")
    return graded["course"], graded["url"]


def _set_manual_score(url: str, student: str, value: float | None) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as con:
        con.execute(sqlalchemy.text(
            "UPDATE grade SET manual_score = :v WHERE notebook_id IN (SELECT sn.id FROM submitted_notebook sn "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id WHERE sa.student_id = :s)"),
            {"v": value, "s": student})


def test_guard_reports_a_change_outside_the_batch(gradebook, capsys: pytest.CaptureFixture[str]) -> None:
    course, url = gradebook
    outside, inside = "s10", "s11"  # far from the first students, one of which had its grading killed
    run = integrity.Run(course, url, time.time(), "backup.db", db_snapshots.scores(url), graded={(ASSIGNMENT, inside)})
    _set_manual_score(url, outside, 0.5)  # nobody is grading it: reported
    _set_manual_score(url, inside, 0.5)  # this run grades it: not reported
    try:
        integrity.report(run, final=True)
        err = capsys.readouterr().err
        assert "changed OUTSIDE" in err and "restoring the whole backup would" in err
        assert f"{outside}/{ASSIGNMENT}" in err and f"{inside}/{ASSIGNMENT}" not in err
        assert "no score changed" not in err
        assert f"{outside}/{ASSIGNMENT}" in (course / integrity.CHANGES_LOG).read_text()
        # a concurrent process grading that student (in the journal) explains the change: no report
        integrity.journal(course, "begin", ASSIGNMENT, outside)
        assert integrity.check(run) == []
    finally:
        _set_manual_score(url, outside, None)
        _set_manual_score(url, inside, None)
        integrity.journal(course, "end", ASSIGNMENT, outside)
        (course / integrity.CHANGES_LOG).unlink(missing_ok=True)


def test_guard_never_says_unchanged_when_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pg_local.free_port()}/nothing_listens_here"
    with pytest.raises(db_snapshots.GradebookUnreadable, match="cannot read"):
        db_snapshots.scores(url)
    run = integrity.Run(tmp_path, url, time.time(), "(none)", {}, graded=set())
    integrity.report(run, final=True)
    err = capsys.readouterr().err
    assert "NOT checked" in err and "no score changed" not in err
    with pytest.raises(db_snapshots.GradebookUnreadable, match="pg_dump failed"):
        db_snapshots.backup(url, tmp_path / "backups")


def test_rotation_keeps_the_batch_backup(tmp_path: Path) -> None:
    dead = 99_999_999  # above any pid_max (at most 2**22): no such process
    names = [f"gradebook-20260302T09{i:02d}00.000000Z-run-{dead}.db" for i in range(3)]
    names += [f"gradebook-20260302T0930{0:02d}.000000Z-batch-{dead}.db"]
    names += [f"gradebook-20260302T10{i:02d}00.000000Z-run-{dead}.db" for i in range(25)]
    for name in names:
        (tmp_path / name).write_text("x")
    deleted = db_snapshots.prune(tmp_path)
    left = {p.name for p in tmp_path.iterdir()}
    assert names[3] in left  # the batch's backup survives 25 per-student runs after it
    assert names[0] in left  # the day's first backup too
    assert len(deleted) == 28 - 20 - 1 and len(left) == 29 - len(deleted)
