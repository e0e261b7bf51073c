"""Grade a whole class in parallel: chunks of students, each graded by nbgrader's autograde in one process,
run by dask.distributed.

``python -m autograder grade ASSIGNMENT`` (``__main__.py``) calls :func:`grade_class`, which

1. lists the students who handed in (``submitted/<student>/<assignment>/``) and skips those already graded
   by an earlier batch (a marker in ``grading_state/<assignment>/``) unless ``force``;
2. backs the gradebook up once (kind "batch", never rotated out by per-student runs) and snapshots it;
3. splits the other students into chunks and runs :func:`grade_chunk` on each with ``client.map`` on a
   Dask cluster: a LocalCluster of ``workers`` worker threads in this process, or the cluster whose scheduler
   is at ``scheduler``. A chunk is one process (grade_students.py) that runs nbgrader's own
   ``AutogradeApp``, as ``nbgrader autograde ASSIGNMENT --student=ID --force`` does, for each of its
   students in turn: the start-up of an nbgrader process (imports of nbgrader, torch and the plugins,
   manifest checks; several seconds of CPU) is paid once per chunk, not once per student. Each student
   gives an :class:`Outcome`; a failure (nbgrader error, timeout, a killed process or worker) is an
   Outcome too, and when the process dies on a student, the rest of its chunk is graded in a new process,
   so one student never stops the batch. A student's marker is written as soon as nbgrader finished it,
   so a process or worker killed mid-chunk loses no finished grade, and the next run grades the rest;
4. reports changes to the gradebook outside the batch (integrity.py) and exports every grade to CSV with
   ``nbgrader export``.

Several processes writing one SQLite gradebook: it is switched to write-ahead logging (readers never block
the writer) and every process waits up to 120 s for the write lock (``?timeout=120``); a process that still
meets "database is locked" is retried. A class graded on several machines keeps its gradebook in
PostgreSQL (``db_url``), which takes concurrent writers as they come.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import integrity  # noqa: E402
from db_snapshots import BACKUP_FOLDER, GradebookUnreadable, backup, default_url, scores, sqlite_path  # noqa: E402

STATE = "grading_state"
DRIVER = HERE / "grade_students.py"  # grades one chunk of students in one process
BEGIN, DONE = "@@begin ", "@@done "  # grade_students.py's result lines
SAFE_ID = re.compile(r"^[A-Za-z0-9_.@+-]+$")  # nbgrader reads --student as a glob: no * ? [ ]


@dataclass
class Outcome:
    """What happened to one student's submission."""
    student: str
    status: str  # "graded", "failed" or "skipped"
    seconds: float = 0.0
    flagged: bool = False  # FlagForReview marked a notebook for manual review
    message: str = ""  # why it failed, or the integrity guard's errors
    attempts: int = 0  # nbgrader runs for this student (SQLite's "database is locked" is retried)


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


def write_marker(course: Path, assignment: str, student: str, seconds: float) -> None:
    """The student's grade is in the gradebook: written atomically, so a marker exists only for a finished one."""
    path = marker(Path(course), assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"graded_at": time.time(), "seconds": seconds}))
    tmp.replace(path)


def grade_chunk(students: list[str], course: str, assignment: str, env: dict[str, str],
                timeout: float) -> list[Outcome]:
    """Autograde ``students`` with nbgrader's own autograde, one process for the chunk (grade_students.py).

    Every failure is an Outcome, never an exception. A student over ``timeout`` seconds, or whose process
    dies, fails; the students after it are graded in a new process.
    """
    outcomes = [Outcome(s, "failed", message=f"student id {s!r} has characters nbgrader reads as a glob "
                                             "pattern; rename the submission folder")
                for s in students if not SAFE_ID.match(s)]
    left = [s for s in students if SAFE_ID.match(s)]
    while left:
        done, problem = _grade_in_one_process(left, Path(course), assignment, env, timeout)
        if not done:  # the process ended before its first student: a retry would end the same way
            return outcomes + [Outcome(s, "failed", message=problem) for s in left]
        outcomes += done
        finished = {o.student for o in done}
        left = [s for s in left if s not in finished]
    return outcomes


def _grade_in_one_process(students: list[str], course: Path, assignment: str, env: dict[str, str],
                          timeout: float) -> tuple[list[Outcome], str]:
    """Run grade_students.py for ``students`` until it ends or a student runs over ``timeout``; the
    outcomes of the students it reached, and why it ended early when it reached none."""
    with tempfile.TemporaryDirectory(prefix="cnnbook-chunk-") as tmp:
        results, errors = Path(tmp) / "results", Path(tmp) / "stderr"
        results.touch()
        cmd = [sys.executable, str(DRIVER), "--results", str(results), assignment, *students]
        with open(errors, "w") as err:
            try:
                proc = subprocess.Popen(cmd, cwd=course, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            except OSError as exc:
                return [], f"could not start the grading process: {exc}"
            outcomes, current, since, timed_out = [], None, time.monotonic(), False
            begun = 0  # students[:begun] were begun, in the order the process grades them
            with open(results) as feed:
                while True:
                    ended = proc.poll() is not None
                    for line in feed.readlines():  # whole lines only: each is written with one write()
                        # only the next student's @@begin and the current student's well-formed @@done count:
                        # a line forged by an unsandboxed kernel cannot add or skip another student
                        if (line.startswith(BEGIN) and current is None and begun < len(students)
                                and line[len(BEGIN):].strip() == students[begun]):
                            current, since, begun = students[begun], time.monotonic(), begun + 1
                        elif line.startswith(DONE) and current is not None:
                            record = _record(line[len(DONE):], current)
                            if record is not None:
                                outcomes.append(_outcome(record))
                                current = None
                    if ended:
                        break
                    if begun and time.monotonic() - since > timeout:  # from the last @@begin, done or not
                        timed_out = True
                        _stop(proc)
                    time.sleep(0.2)
        why = f"timed out after {timeout:.0f} s" if timed_out else _reason(proc.returncode, errors.read_text())
        if current is not None:  # begun, never done: this student is the one the process died on
            outcomes.append(Outcome(current, "failed", time.monotonic() - since, message=why, attempts=1))
    return outcomes, why


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the process, its kernel and whatever the kernel started
    except ProcessLookupError:
        pass
    proc.wait()


def _record(text: str, student: str) -> dict | None:
    """A @@done line's record for ``student``, or None when it is not one (malformed, or another student's)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    kinds = {"student": str, "ok": bool, "seconds": (int, float), "attempts": int, "log": str}
    if not isinstance(record, dict) or any(not isinstance(record.get(k), t) for k, t in kinds.items()):
        return None
    return record if record["student"] == student else None


def _outcome(record: dict) -> Outcome:
    log = record["log"]
    if not record["ok"]:
        return Outcome(record["student"], "failed", record["seconds"], message=_reason(1, log),
                       attempts=record["attempts"])
    guard = [ln.split("[integrity] ", 1)[1] for ln in log.splitlines() if "[integrity] ERROR" in ln]
    return Outcome(record["student"], "graded", record["seconds"], flagged="FLAGGED FOR MANUAL REVIEW" in log,
                   message="; ".join(guard), attempts=record["attempts"])


def _reason(returncode: int | None, stderr: str) -> str:
    if returncode is not None and returncode < 0:
        return f"nbgrader was killed by signal {-returncode}"
    errors = [ln.strip() for ln in stderr.splitlines() if "ERROR" in ln or "Error" in ln]
    return (errors[0] if errors else stderr.strip()[-300:] or f"exit status {returncode}")[:300]


def prepare_sqlite(url: str) -> str:
    """Write-ahead logging (persistent) and a 120 s lock wait, for several writer processes."""
    path = sqlite_path(url)
    if path.is_file():
        with sqlite3.connect(path, timeout=120) as con:
            con.execute("PRAGMA journal_mode=WAL")
    base = url.split("?", 1)[0]
    return f"{base}?timeout=120"


# The local cluster's periodic work, slowed down: with Dask's defaults (an event-loop tick every 20 ms, a
# system monitor every 0.5 s in every process) an idle LocalCluster of 2 worker processes costs 0.16 of a
# CPU core, measured on the 2-core build machine: 8 % of what grading has, for the whole batch.
QUIET_CLUSTER = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "5s",
                 "distributed.admin.system-monitor.disk": False, "distributed.worker.memory.monitor-interval": "1s"}


def _client(workers: int, scheduler: str | None):
    """A client of the cluster at ``scheduler``, or of a local cluster of ``workers`` worker threads.

    Local workers are threads of this process, not processes: a task (:func:`grade_chunk`) only starts a
    grading process and waits for it, so a thread does it as well, without a worker process and its nanny
    per worker (an idle local cluster costs 0.05 of a core with threads and the settings of
    :data:`QUIET_CLUSTER`, 0.16 with processes and Dask's defaults). No memory limit: the memory a thread
    would be measured by is this process's, and the grading processes have limits of their own.
    """
    import cloudpickle
    import dask
    from distributed import Client, LocalCluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import this file
    if scheduler:
        return Client(scheduler)
    with dask.config.set(QUIET_CLUSTER):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, memory_limit=0,
                               dashboard_address=None)
        return Client(cluster)


def task_slots(client) -> int:
    """Chunks the cluster grades at once: every thread of every worker, since a task only drives one grading
    process (a worker of 16 threads grades 16 chunks at a time, like 16 workers of one thread)."""
    workers = client.scheduler_info()["workers"].values()
    return max(1, sum(int(info.get("nthreads", 1)) for info in workers))


def chunks(students: list[str], workers: int, size: int | None = None) -> list[list[str]]:
    """Consecutive chunks of ``size`` students, each graded by one process.

    By default every worker gets one to three chunks of equal size: one in a small class, so that each
    process's start-up is paid once per worker; up to three once a chunk would still hold 8 students, so
    that a slow chunk at the end keeps few workers waiting. A chunk holds at most 25 students.
    """
    n, workers = len(students), max(1, workers)
    if size is None:
        per_worker = min(3, max(1, n // (8 * workers)))
        size = min(25, max(1, math.ceil(n / (per_worker * workers))))
    if size < 1:
        raise ValueError(f"a chunk holds at least one student; got {size}")
    return [students[i:i + size] for i in range(0, n, size)]


def grade_class(course: Path, assignment: str, *, workers: int = 2, scheduler: str | None = None,
                db_url: str | None = None, force: bool = False, students: list[str] | None = None,
                export: Path | None = None, timeout: float = 3600, progress: bool = True,
                chunk: int | None = None) -> Summary:
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
        summary.outcomes += _run(todo, str(course), assignment, env, timeout, workers, scheduler, progress, tqdm,
                                 chunk)
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


def _run(todo, course, assignment, env, timeout, workers, scheduler, progress, tqdm, chunk) -> list[Outcome]:
    from distributed import as_completed

    outcomes = []
    before = {s: _marker_stamp(course, assignment, s) for s in todo}  # markers of an earlier batch (--force)
    with _client(workers, scheduler) as client:
        parts = chunks(todo, task_slots(client), chunk)
        futures = client.map(grade_chunk, parts, course=course, assignment=assignment, env=env, timeout=timeout,
                             pure=False)
        students_of = {f.key: part for f, part in zip(futures, parts)}
        running, finished = set(students_of), as_completed(futures)
        with tqdm(total=len(todo), unit="student", disable=not progress, desc=assignment) as bar:
            while not finished.is_empty():
                for future in finished.next_batch(block=False):
                    if future.status == "finished":
                        done = future.result()
                    else:  # the worker died (KilledWorker) or the task could not run: a value, not an exception
                        why = repr(future.exception())[:300]
                        done = [Outcome(s, "failed", message=why) for s in students_of[future.key]]
                    outcomes += done
                    running.discard(future.key)
                # per student, not per chunk: the markers the chunks still running have written so far
                in_flight = sum(_marker_stamp(course, assignment, s) not in (None, before[s])
                                for key in running for s in students_of[key])
                bar.update(len(outcomes) + in_flight - bar.n)
                if not finished.is_empty():
                    time.sleep(0.5)
        futures = finished = future = None  # released before the cluster closes: no "lost computed tasks" warnings
        if client.cluster is not None:
            client.cluster.close()
    return sorted(outcomes, key=lambda o: o.student)


def _marker_stamp(course: str | Path, assignment: str, student: str) -> int | None:
    """When the student's marker was last written (nanoseconds), or None: compared, never read as a clock."""
    try:
        return marker(Path(course), assignment, student).stat().st_mtime_ns
    except OSError:
        return None


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
