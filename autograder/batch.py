"""Grade a whole class in parallel: one nbgrader autograde process per student, run by dask.distributed.

``python -m autograder grade ASSIGNMENT`` (``__main__.py``) calls :func:`grade_class`, which

1. lists the students who handed in (``submitted/<student>/<assignment>/``) and skips those already graded
   by an earlier batch (a marker in ``grading_state/<assignment>/``) unless ``force``;
2. backs the gradebook up once (kind "batch", never rotated out by per-student runs) and snapshots it;
3. runs :func:`grade_one` for every other student with ``client.map`` on a Dask cluster: a LocalCluster of
   ``workers`` processes on this machine, or the cluster whose scheduler is at ``scheduler``. Each call
   runs nbgrader's own ``nbgrader autograde ASSIGNMENT --student=ID --force`` and returns an
   :class:`Outcome`; a failure (nbgrader error, timeout, a killed process or worker) is an Outcome too, so
   one student never stops the batch. The marker is written only after nbgrader finished, so a worker
   killed mid-student leaves no marker and the next run grades that student again;
4. reports changes to the gradebook outside the batch (integrity.py) and exports every grade to CSV with
   ``nbgrader export``.

Several processes writing one SQLite gradebook: it is switched to write-ahead logging (readers never block
the writer) and every process waits up to 120 s for the write lock (``?timeout=120``); a process that still
meets "database is locked" is retried. A class graded on several machines keeps its gradebook in
PostgreSQL (``db_url``), which takes concurrent writers as they come.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import integrity  # noqa: E402
from db_snapshots import BACKUP_FOLDER, GradebookUnreadable, backup, default_url, scores, sqlite_path  # noqa: E402

STATE = "grading_state"
LOCK_RETRIES = 3
SAFE_ID = re.compile(r"^[A-Za-z0-9_.@+-]+$")  # nbgrader reads --student as a glob: no * ? [ ]


@dataclass
class Outcome:
    """What happened to one student's submission."""
    student: str
    status: str  # "graded", "failed" or "skipped"
    seconds: float = 0.0
    flagged: bool = False  # FlagForReview marked a notebook for manual review
    message: str = ""  # why it failed, or the integrity guard's errors
    attempts: int = 0


@dataclass
class Summary:
    assignment: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    backup: str = ""
    export: Path | None = None
    integrity_problems: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def flagged(self) -> list[str]:
        return sorted(o.student for o in self.outcomes if o.flagged)

    def lines(self) -> list[str]:
        out = [f"{self.assignment}: {self.count('graded')} graded, {self.count('failed')} failed, "
               f"{self.count('skipped')} skipped (graded before; --force grades them again), "
               f"{len(self.flagged)} flagged for review, in {self.seconds:.0f} s"]
        out += [f"  FAILED {o.student}: {o.message}" for o in self.outcomes if o.status == "failed"]
        out += [f"  flagged for review: {', '.join(self.flagged)}"] if self.flagged else []
        out += [f"  integrity: {line}" for line in self.integrity_problems] or [
            "  integrity: no score changed outside the batch"]
        out += [f"  gradebook backup before the batch: {self.backup}"]
        out += [f"  grades exported to {self.export}"] if self.export else []
        return out


def marker(course: Path, assignment: str, student: str) -> Path:
    return course / STATE / assignment / f"{student}.json"


def submitted_students(course: Path, assignment: str) -> list[str]:
    """Every student with a submission folder for the assignment, sorted."""
    return sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}") if p.is_dir())


def grade_one(student: str, course: str, assignment: str, env: dict[str, str], timeout: float) -> Outcome:
    """Autograde one student with nbgrader's own command; every failure is returned, never raised."""
    t0 = time.perf_counter()
    if not SAFE_ID.match(student):
        return Outcome(student, "failed", message=f"student id {student!r} has characters nbgrader reads as a "
                                                  "glob pattern; rename the submission folder")
    nbgrader = Path(sys.executable).parent / "nbgrader"
    cmd = [str(nbgrader), "autograde", assignment, f"--student={student}", "--force"]
    for attempt in range(1, LOCK_RETRIES + 1):
        try:
            proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(student, "failed", time.perf_counter() - t0, message=f"timed out after {timeout:.0f} s",
                           attempts=attempt)
        except OSError as exc:
            return Outcome(student, "failed", time.perf_counter() - t0, message=str(exc), attempts=attempt)
        if proc.returncode != 0 and "database is locked" in proc.stderr and attempt < LOCK_RETRIES:
            continue
        break
    seconds = time.perf_counter() - t0
    guard = [ln.split("[integrity] ", 1)[1] for ln in proc.stderr.splitlines() if "[integrity] ERROR" in ln]
    if proc.returncode != 0:
        return Outcome(student, "failed", seconds, message=_reason(proc), attempts=attempt)
    path = marker(Path(course), assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"graded_at": time.time(), "seconds": seconds}))
    tmp.replace(path)  # atomic: a marker exists only for a finished student
    return Outcome(student, "graded", seconds, flagged="FLAGGED FOR MANUAL REVIEW" in proc.stderr,
                   message="; ".join(guard), attempts=attempt)


def _reason(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode < 0:
        return f"nbgrader was killed by signal {-proc.returncode}"
    errors = [ln.strip() for ln in proc.stderr.splitlines() if "ERROR" in ln or "Error" in ln]
    return (errors[0] if errors else proc.stderr.strip()[-300:] or f"exit status {proc.returncode}")[:300]


def prepare_sqlite(url: str) -> str:
    """Write-ahead logging (persistent) and a 120 s lock wait, for several writer processes."""
    path = sqlite_path(url)
    if path.is_file():
        with sqlite3.connect(path, timeout=120) as con:
            con.execute("PRAGMA journal_mode=WAL")
    base = url.split("?", 1)[0]
    return f"{base}?timeout=120"


def _client(workers: int, scheduler: str | None):
    import cloudpickle
    from distributed import Client, LocalCluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import this file
    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def grade_class(course: Path, assignment: str, *, workers: int = 2, scheduler: str | None = None,
                db_url: str | None = None, force: bool = False, students: list[str] | None = None,
                export: Path | None = None, timeout: float = 3600, progress: bool = True) -> Summary:
    """Autograde every submitted student (or ``students``) of ``assignment``; see the module docstring."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ValueError(f"{course} has no nbgrader_config.py: pass the course directory (--course)")
    url = db_url or default_url(course)
    if sqlite_path(url) is not None:
        url = prepare_sqlite(url)
    everyone = submitted_students(course, assignment)
    if students:
        unknown = sorted(set(students) - set(everyone))
        if unknown:
            raise ValueError(f"no submission of {assignment} in {course / 'submitted'} for: {', '.join(unknown)}")
        everyone = sorted(students)
    if not everyone:
        raise ValueError(f"nobody has handed in {assignment}: {course / 'submitted'}/<student>/{assignment}/ is "
                         "empty (run `nbgrader collect` or `nbgrader zip_collect` first)")
    summary = Summary(assignment)
    todo = [s for s in everyone if force or not marker(course, assignment, s).is_file()]
    summary.outcomes += [Outcome(s, "skipped") for s in everyone if s not in todo]

    run = _guard_start(course, url, summary)
    env = {**os.environ, "CNNBOOK_DB_URL": url, integrity.BATCH_ENV: summary.backup,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if todo:
        summary.outcomes += _run(todo, str(course), assignment, env, timeout, workers, scheduler, progress, tqdm)
    if run is not None:
        run.graded = {(assignment, s) for s in todo}
        changed = integrity.check(run)
        summary.integrity_problems += ([f"could not compare the gradebook: {run.problem}"] if changed is None
                                       else [f"changed outside the batch: {line}" for line in changed])
    summary.integrity_problems += [f"{o.student}: {o.message}" for o in summary.outcomes
                                   if o.status == "graded" and o.message]
    if export is not None:
        summary.export = _export(course, export, env)
    summary.seconds = time.perf_counter() - t0
    return summary


def _guard_start(course: Path, url: str, summary: Summary) -> integrity.Run | None:
    started = time.time()
    try:
        saved = backup(url, course / BACKUP_FOLDER, kind="batch")
        summary.backup = str(saved) if saved else "(none: the gradebook was empty)"
        return integrity.Run(course, url, started, summary.backup, scores(url))
    except (GradebookUnreadable, ValueError) as exc:
        summary.backup = "(NONE)"
        summary.integrity_problems.append(f"no backup or snapshot of the gradebook before the batch: {exc}")
        return None


def _run(todo, course, assignment, env, timeout, workers, scheduler, progress, tqdm) -> list[Outcome]:
    from distributed import as_completed

    outcomes = []
    with _client(workers, scheduler) as client:
        futures = client.map(grade_one, todo, course=course, assignment=assignment, env=env, timeout=timeout,
                             pure=False)
        student_of = {f.key: s for f, s in zip(futures, todo)}
        for future in tqdm(as_completed(futures), total=len(todo), unit="student", disable=not progress,
                           desc=assignment):
            if future.status == "finished":
                outcomes.append(future.result())
            else:  # the worker died (KilledWorker) or the task could not run: a value, not an exception
                outcomes.append(Outcome(student_of[future.key], "failed", message=repr(future.exception())[:300]))
        del futures, future  # released before the cluster closes: no "lost computed tasks" warnings
        if client.cluster is not None:
            client.cluster.close()
    return sorted(outcomes, key=lambda o: o.student)


def _export(course: Path, path: Path, env: dict[str, str]) -> Path | None:
    target = path if path.is_absolute() else course / path
    proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", f"--to={target}"], cwd=course,
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"nbgrader export failed:\n{proc.stderr[-2000:]}")
    return target


def as_json(summary: Summary) -> str:
    data = asdict(summary)
    data["export"] = str(summary.export) if summary.export else None
    return json.dumps(data, indent=1)
