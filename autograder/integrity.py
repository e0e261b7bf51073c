"""Integrity of the course's grading files and gradebook.

    python autograder/integrity.py manifest     # write RELEASE.sha256 (after `nbgrader generate_assignment`)
    python autograder/integrity.py check        # check RELEASE.sha256 and references/MANIFEST.sha256

``nbgrader_config.py`` calls :func:`guard_autograde` at the start of every ``nbgrader autograde``:
the gradebook is copied to ``gradebook.db.backups/gradebook-<UTC time>.db`` (SQLite backup API) and
every score is snapshotted; when the command ends, every score that changed outside the batch being
graded (another assignment, or another student when ``--student`` was given) is logged as an error
and appended to ``gradebook.db.changes.log``. Grading never changes those scores; a change there means that
something else wrote to the gradebook during the run.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RELEASE_MANIFEST = HERE / "RELEASE.sha256"
KEEP_BACKUPS = 20
_GUARDED = False

_SCORES = """
SELECT student.id, assignment.name, notebook.name, base_cell.name,
       grade.auto_score, grade.manual_score, grade.extra_credit
FROM grade
JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id
JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id
JOIN student ON submitted_assignment.student_id = student.id
JOIN assignment ON submitted_assignment.assignment_id = assignment.id
JOIN notebook ON submitted_notebook.notebook_id = notebook.id
JOIN base_cell ON grade.cell_id = base_cell.id
"""


def write_release_manifest(repo: Path = HERE.parent, manifest: Path = RELEASE_MANIFEST) -> Path:
    """SHA-256 of every release notebook (``exercises/*/*.ipynb``), ``sha256sum -c`` format."""
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(repo).as_posix()}"
             for p in sorted((repo / "exercises").glob("*/*.ipynb"))]
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def scores(db: Path) -> dict[tuple[str, ...], tuple[float | None, ...]]:
    """Every grade in the gradebook: (student, assignment, notebook, cell) -> (auto, manual, extra)."""
    if not db.is_file():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=120)
    try:
        return {tuple(row[:4]): tuple(row[4:]) for row in con.execute(_SCORES)}
    except sqlite3.OperationalError:  # an empty gradebook has no tables yet
        return {}
    finally:
        con.close()


def backup(db: Path, folder: Path) -> Path | None:
    """Copy the gradebook with SQLite's backup API (consistent even while it is in use)."""
    if not db.is_file():
        return None
    folder.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = folder / f"gradebook-{stamp}.db"
    src, dst = sqlite3.connect(db, timeout=120), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    for old in sorted(folder.glob("gradebook-*.db"))[:-KEEP_BACKUPS]:
        old.unlink()
    return target


def _batch(args: list[str]) -> tuple[str | None, str | None]:
    """(assignment, student) of an ``nbgrader autograde`` command line; None where it means all."""
    assignment = student = None
    it = iter(args)
    for arg in it:
        if arg.startswith("--student=") or arg.startswith("--CourseDirectory.student_id="):
            student = arg.split("=", 1)[1]
        elif arg in ("--student", "--CourseDirectory.student_id"):
            student = next(it, None)
        elif arg.startswith("--assignment=") or arg.startswith("--CourseDirectory.assignment_id="):
            assignment = arg.split("=", 1)[1]
        elif not arg.startswith("-") and assignment is None:
            assignment = arg
    if student in (None, "*"):
        student = None
    return assignment, student


def changes_outside(before: dict, after: dict, assignment: str | None, student: str | None) -> list[str]:
    """Scores that differ between the snapshots and lie outside the batch (assignment, student)."""
    lines = []
    for key in sorted(set(before) | set(after), key=str):
        if before.get(key) == after.get(key):
            continue
        sid, aid = key[0], key[1]
        inside = (assignment is None or aid == assignment) and (student is None or sid == student)
        if not inside:
            lines.append(f"{'/'.join(map(str, key))}: {before.get(key)} -> {after.get(key)}")
    return lines


def guard_autograde(course: Path, args: list[str]) -> None:
    """Back the gradebook up now; at exit, report any score changed outside the batch."""
    global _GUARDED
    if _GUARDED:  # nbgrader reads its configuration more than once per command
        return
    _GUARDED = True
    db = course / "gradebook.db"
    assignment, student = _batch(args)
    saved = backup(db, course / "gradebook.db.backups")
    before = scores(db)
    if saved:
        print(f"[integrity] gradebook backed up to {saved}", file=sys.stderr)

    def report() -> None:
        changed = changes_outside(before, scores(db), assignment, student)
        if not changed:
            print(f"[integrity] no score changed outside the batch ({assignment or 'every assignment'}, "
                  f"{student or 'every student'})", file=sys.stderr)
            return
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with open(course / "gradebook.db.changes.log", "a") as fh:
            for line in changed:
                fh.write(f"{stamp} outside batch {assignment}/{student or '*'}: {line}\n")
        print(f"[integrity] ERROR: {len(changed)} score(s) changed OUTSIDE the batch being graded "
              f"(restore from {saved}); see gradebook.db.changes.log:", file=sys.stderr)
        for line in changed[:50]:
            print(f"[integrity]   {line}", file=sys.stderr)

    atexit.register(report)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(HERE.parent / "src"))
    if args[:1] == ["manifest"]:
        print(f"wrote {write_release_manifest()}")
        return 0
    if args[:1] == ["check"]:
        from cnnbook.grading import verify_manifest
        from grader_plugins import verify_release_manifest

        problems = verify_release_manifest(RELEASE_MANIFEST) + verify_manifest(HERE / "references")
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(problems)} problems")
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
