"""Integrity of the course's grading files and gradebook.

    python autograder/integrity.py manifest     # write RELEASE.sha256 (after `nbgrader generate_assignment`)
    python autograder/integrity.py check        # check RELEASE.sha256 and references/MANIFEST.sha256

The gradebook guard runs inside every autograde, however it is started (``nbgrader autograde``,
``python -m nbgrader autograde``, the formgrader's Autograde button, ``python -m autograder grade``):
``nbgrader_config.py`` installs :func:`before_submission` and :func:`after_submission` as nbgrader's
``Autograde.pre_convert_hook`` / ``post_convert_hook``, which nbgrader calls around each submission.

- Before the first submission of a run, the gradebook is backed up (db_snapshots.py: SQLite backup
  API or pg_dump) into ``gradebook.db.backups/`` and every score is snapshotted. A run started by the class
  grading command reuses the batch's backup (``CNNBOOK_GRADING_BATCH``) instead of one copy per student.
- Every submission graded is recorded in the journal ``gradebook.db.grading.log`` (begin / end, with
  host and process id), so that several ``--student`` runs in parallel know what the others are grading.
- After each submission and at the end of the run, every score that changed and that no run (this one or
  a concurrent one in the journal) was grading is reported as an error and appended to
  ``gradebook.db.changes.log``. When the gradebook cannot be read, the guard says so: it never reports
  "no score changed" without having compared.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from db_snapshots import (  # noqa: E402
    BACKUP_FOLDER,
    GradebookUnreadable,
    Scores,
    backup,
    scores,
)

RELEASE_MANIFEST = HERE / "RELEASE.sha256"
JOURNAL = "gradebook.db.grading.log"
CHANGES_LOG = "gradebook.db.changes.log"
BATCH_ENV = "CNNBOOK_GRADING_BATCH"  # set by the class grading command: path of the batch's backup

def write_release_manifest(repo: Path = HERE.parent, manifest: Path = RELEASE_MANIFEST) -> Path:
    """SHA-256 of every release notebook (``exercises/*/*.ipynb``), ``sha256sum -c`` format."""
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(repo).as_posix()}"
             for p in sorted((repo / "exercises").glob("*/*.ipynb"))]
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _differences(before: Scores, after: Scores) -> list[tuple[str, ...]]:
    return [key for key in sorted(set(before) | set(after), key=str) if before.get(key) != after.get(key)]


def _describe(key: tuple[str, ...], before: Scores, after: Scores) -> str:
    return f"{'/'.join(map(str, key))}: {before.get(key)} -> {after.get(key)}"


def changes_outside(before: Scores, after: Scores, assignment: str | None, student: str | None) -> list[str]:
    """Scores that differ between the snapshots and lie outside the batch (assignment, student; None = all)."""
    return [_describe(key, before, after) for key in _differences(before, after)
            if not ((assignment is None or key[1] == assignment) and (student is None or key[0] == student))]


def unexplained_changes(before: Scores, after: Scores, explained: set[tuple[str, str]]) -> list[str]:
    """Scores that differ between the snapshots although no run was grading their (assignment, student)."""
    return [_describe(key, before, after) for key in _differences(before, after) if (key[1], key[0]) not in explained]


# ---- the journal of what is being graded ---------------------------------------------------------------
def journal(course: Path, event: str, assignment: str, student: str) -> None:
    """Append one line (one write, O_APPEND: lines of concurrent processes do not interleave)."""
    line = f"{time.time():.3f} {socket.gethostname()} {os.getpid()} {event} {assignment} {student}\n"
    fd = os.open(course / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def graded_during(course: Path, since: float) -> set[tuple[str, str]]:
    """(assignment, student) of every submission whose grading overlapped [since, now], by any process:
    begun before now and not ended before ``since`` (a run killed mid-submission never ends)."""
    path = course / JOURNAL
    if not path.is_file():
        return set()
    open_runs: dict[tuple[str, str, str, str], float] = {}
    overlapping = set()
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 6:
            continue
        stamp, host, pid, event, assignment, student = parts
        run = (host, pid, assignment, student)
        if event == "begin":
            open_runs[run] = float(stamp)
        elif event == "end" and run in open_runs:
            del open_runs[run]
            if float(stamp) >= since:
                overlapping.add((assignment, student))
    return overlapping | {(a, s) for (_, _, a, s) in open_runs}


# ---- the guard: nbgrader's pre/post convert hooks --------------------------------------------------------
@dataclass
class Run:
    """One autograde run (one Autograde converter): what it backed up, saw and graded."""
    course: Path
    db_url: str
    started: float
    saved: str
    before: Scores | None  # None: the gradebook could not be read at the start
    graded: set[tuple[str, str]] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)
    problem: str | None = None


_RUNS: dict[int, Run] = {}


def _say(message: str) -> None:
    print(f"[integrity] {message}", file=sys.stderr, flush=True)


def _converter() -> tuple[object, dict[str, str]]:
    """The Autograde converter calling the hook, and the (assignment_id, student_id) it is converting.

    nbgrader 0.9 calls ``self.pre_convert_hook(assignment=coursedir.assignment_id, ...)`` from
    ``BaseConverter.run_pre_convert_hook``, itself called by ``convert_notebooks`` whose local ``gd`` holds
    the submission's ids (the keyword arguments carry the command-line patterns, "*" for every student).
    """
    from nbgrader.converters.base import BaseConverter

    frame = sys._getframe(1)
    converter = None
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, BaseConverter):
            converter = owner
            if isinstance(frame.f_locals.get("gd"), dict):
                return converter, frame.f_locals["gd"]
        frame = frame.f_back
    raise RuntimeError("the integrity hook was not called by an nbgrader converter's convert_notebooks "
                       "(nbgrader's hook interface changed? the guard supports nbgrader 0.9)")


def _start(converter: object) -> Run:
    course = Path(converter.coursedir.root)
    db_url = converter.coursedir.db_url
    started = time.time()
    saved, problem = os.environ.get(BATCH_ENV, ""), None
    if not saved:
        try:
            copy = backup(db_url, course / BACKUP_FOLDER, kind="run")
            saved = str(copy) if copy else "(no backup: the gradebook was empty)"
            if copy:
                _say(f"gradebook backed up to {copy}")
        except (GradebookUnreadable, ValueError) as exc:
            problem = f"NO BACKUP of the gradebook: {exc}"
            _say(f"ERROR: {problem}")
    try:
        before = scores(db_url)
    except GradebookUnreadable as exc:
        before, problem = None, f"cannot snapshot the gradebook: {exc}"
        _say(f"ERROR: {problem}; changes outside the batch are NOT checked")
    return Run(course, db_url, started, saved or "(none)", before, problem=problem)


def before_submission(assignment: str, student: str, notebooks: list[str]) -> None:
    """``Autograde.pre_convert_hook``: back up and snapshot at the run's first submission; journal it."""
    try:
        converter, gd = _converter()
        run = _RUNS.get(id(converter))
        if run is None:
            run = _RUNS[id(converter)] = _start(converter)
            if len(_RUNS) == 1:
                atexit.register(_final_reports)
        key = (gd["assignment_id"], gd["student_id"])
        run.graded.add(key)
        journal(run.course, "begin", *key)
    except Exception as exc:  # nbgrader logs hook failures at INFO level only: say it loudly
        _say(f"ERROR: the gradebook guard failed before a submission: {exc!r}")
        raise


def after_submission(assignment: str, student: str, notebooks: list[str]) -> None:
    """``Autograde.post_convert_hook``: journal the end; report changes outside what is being graded."""
    try:
        converter, gd = _converter()
        run = _RUNS.get(id(converter))
        if run is not None:
            journal(run.course, "end", gd["assignment_id"], gd["student_id"])
            report(run, final=False)
    except Exception as exc:
        _say(f"ERROR: the gradebook guard failed after a submission: {exc!r}")
        raise


def check(run: Run, after: Scores | None = None) -> list[str] | None:
    """Changes outside everything being graded since the run began (against ``after``, read now when not
    given); None when unreadable."""
    if run.before is None:
        return None
    try:
        after = scores(run.db_url) if after is None else after
    except GradebookUnreadable as exc:
        run.problem = f"cannot read the gradebook after grading: {exc}"
        return None
    explained = run.graded | graded_during(run.course, run.started)
    return unexplained_changes(run.before, after, explained)


def report(run: Run, final: bool, after: Scores | None = None) -> None:
    changed = check(run, after)
    if changed is None:
        _say(f"ERROR: {run.problem}; changes outside the batch were NOT checked")
        return
    new = [line for line in changed if line not in run.reported]
    run.reported.update(new)
    if new:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(run.course / CHANGES_LOG, "a") as fh:
            fh.writelines(f"{stamp} outside the batch: {line}\n" for line in new)
        _say(f"ERROR: {len(new)} score(s) changed OUTSIDE what was being graded (see {CHANGES_LOG}). Compare them "
             f"with the backup {run.saved}; restore single grades by hand: restoring the whole backup would "
             f"also undo every grade written since, by this run and by any other")
        for line in new[:50]:
            _say(f"  {line}")
    if final and not run.reported:
        batch = sorted({a for a, _ in run.graded})
        _say(f"no score changed outside the batch ({', '.join(batch) or 'nothing graded'}, "
             f"{len({s for _, s in run.graded})} student(s)); backup: {run.saved}")


def _final_reports() -> None:
    """At exit, one report per run, from one reading of each gradebook: a process that graded a chunk of
    students (grade_students.py) holds one run per student."""
    now: dict[str, Scores | None] = {}
    for run in _RUNS.values():
        if run.db_url not in now:
            try:
                now[run.db_url] = scores(run.db_url)
            except GradebookUnreadable:
                now[run.db_url] = None  # check() reads again, and says why it cannot
        report(run, final=True, after=now[run.db_url])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(HERE.parent / "src"))
    if args[:1] == ["manifest"]:
        print(f"wrote {write_release_manifest()}")
        return 0
    if args[:1] == ["check"]:
        from cnnbook.grading import verify_manifest
        from grader_trusted import verify_release_manifest

        problems = verify_release_manifest(RELEASE_MANIFEST) + verify_manifest(HERE / "references")
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(problems)} problems")
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
