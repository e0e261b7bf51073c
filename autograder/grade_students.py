"""Autograde several students of one assignment in one process: nbgrader's own autograde, once per student.

    python grade_students.py --results FILE ASSIGNMENT STUDENT [STUDENT ...]   # in the course directory

The class grading command (batch.py) hands each worker a chunk of students and runs this file once per
chunk. For each student it starts nbgrader's ``AutogradeApp`` exactly as ``nbgrader autograde ASSIGNMENT
--student=ID --force`` would (same configuration file, same hooks, same preprocessors), in this process.
What a fresh ``nbgrader`` process pays before its first notebook (importing nbgrader, torch and the
course's plugins, checking the manifests: several seconds of CPU) is paid once per chunk instead of
once per student; every student still gets a fresh app, a fresh kernel and a fresh sandbox.

It appends two kinds of line to the results FILE (not to stdout, which the kernels inherit and a
student's code could write to):

    @@begin STUDENT              before the student's grading starts
    @@done {"student": ..., "ok": true|false, "seconds": ..., "log": ...}    when it ended, either way

``log`` is what nbgrader and the gradebook guard wrote on stderr for that student (also copied to this
process's stderr). After a student's successful run, its marker (``grading_state/``) is written here, so a
process killed later loses no finished grade. A student whose grading raises is an ``ok: false`` line,
and the next student is graded. If this process dies (killed, out of memory, stopped for a timeout), the
caller sees a ``@@begin`` without its ``@@done`` and starts a new process for the students left (batch.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from batch import BEGIN, DONE, write_marker  # noqa: E402 - the protocol batch.py reads, next to this file

LOCK_RETRIES = 3


def _autograde_once(assignment: str, student: str, keep: list) -> tuple[bool, str]:
    """One run of nbgrader's AutogradeApp for one student; (it succeeded, its stderr)."""
    from nbgrader.apps.autogradeapp import AutogradeApp

    buffer = io.StringIO()
    ok = False
    with contextlib.redirect_stderr(buffer):  # the app's log handler is created inside: it writes here
        try:
            app = AutogradeApp()
            keep.append(app)  # alive until exit: the gradebook guard keys its runs on the converter's id
            app.initialize([assignment, f"--student={student}", "--force"])
            app.start()
            ok = True
        except SystemExit as exc:  # nbgrader's "fail": sys.exit(1) after logging the error
            ok = exc.code in (0, None)
        except Exception as exc:  # noqa: BLE001 - one student's error never stops the chunk
            print(f"[grade_students] ERROR grading {student}: {exc!r}", file=sys.stderr)
    return ok, buffer.getvalue()


def grade(assignment: str, student: str, keep: list) -> dict:
    """Autograde one student, retrying while SQLite reports a locked database; the @@done record."""
    t0 = time.perf_counter()
    for attempt in range(1, LOCK_RETRIES + 1):
        ok, log = _autograde_once(assignment, student, keep)
        if ok or "database is locked" not in log:
            break
    return {"student": student, "ok": ok, "seconds": time.perf_counter() - t0, "attempts": attempt, "log": log}


def _append(results: Path, line: str) -> None:
    with open(results, "a") as fh:
        fh.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or args[0] != "--results":
        print(__doc__, file=sys.stderr)
        return 2
    results, assignment, students = Path(args[1]), args[2], args[3:]
    keep: list = []
    for student in students:
        _append(results, BEGIN + student)
        record = grade(assignment, student, keep)
        sys.stderr.write(record["log"])
        sys.stderr.flush()
        if record["ok"]:
            write_marker(Path.cwd(), assignment, student, record["seconds"])
        _append(results, DONE + json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
