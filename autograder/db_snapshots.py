"""Reading, backing up and rotating the gradebook, on SQLite (the default) and on PostgreSQL.

nbgrader keeps its gradebook wherever ``CourseDirectory.db_url`` points: ``sqlite:///.../gradebook.db`` for
one instructor, ``postgresql://user@host/db`` for a class graded by several processes or machines at once.
The integrity guard (``integrity.py``) and the class grading command (``batch.py``) read every score and take
backups through the functions here, so both work the same on either database:

- :func:`scores` reads every grade (SQLite read-only, PostgreSQL through SQLAlchemy); it raises
  :class:`GradebookUnreadable` instead of returning an empty answer when the gradebook cannot be read;
- :func:`backup` copies the gradebook: SQLite's backup API (consistent while in use), ``pg_dump`` for
  PostgreSQL; :func:`prune` rotates the copies without ever deleting a batch's pre-grading backup.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

BACKUP_FOLDER = "gradebook.db.backups"
KEEP_BACKUPS = 20  # per kind ("run" = one nbgrader process, "batch" = one class grading command)
PG_BIN = Path("/usr/lib/postgresql/15/bin")  # Debian's PostgreSQL 15; the PATH is searched first

Key = tuple[str, ...]
Scores = dict[Key, tuple[float | None, ...]]

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


class GradebookUnreadable(RuntimeError):
    """The gradebook exists (or should) but its scores could not be read."""


def default_url(course: Path) -> str:
    return f"sqlite:///{Path(course) / 'gradebook.db'}"


def sqlite_path(url: str | Path) -> Path | None:
    """The file of a SQLite gradebook (a path, or a ``sqlite:///`` URL with or without a query); else None."""
    if isinstance(url, Path):
        return url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg2://...``) as libpq and pg_dump read it."""
    scheme, rest = url.split("://", 1)
    if not scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {url!r} (expected postgresql://user@host:port/database)")
    return f"postgresql://{rest}"


def scores(db: str | Path) -> Scores:
    """Every grade: (student, assignment, notebook, cell) -> (auto, manual, extra credit).

    A SQLite file that does not exist yet, or a database without nbgrader's tables, has no grades ({}).
    Anything else that prevents reading raises GradebookUnreadable.
    """
    path = sqlite_path(db)
    if path is not None:
        return _sqlite_scores(path)
    return _sqlalchemy_scores(str(db))


def totals(db: str | Path) -> dict[str, float]:
    """Every student's total autograded score in the gradebook (None counts as 0)."""
    out: dict[str, float] = {}
    for (student, *_), (auto, _, _) in scores(db).items():
        out[student] = out.get(student, 0.0) + (auto or 0.0)
    return out


def _sqlite_scores(path: Path) -> Scores:
    if not path.is_file():
        return {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=120)
    except sqlite3.Error as exc:
        raise GradebookUnreadable(f"cannot open {path}: {exc}") from exc
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'grade'").fetchone():
            return {}
        return {tuple(row[:4]): tuple(row[4:]) for row in con.execute(_SCORES)}
    except sqlite3.Error as exc:
        raise GradebookUnreadable(f"cannot read {path}: {exc}") from exc
    finally:
        con.close()


_ENGINES: dict[str, Any] = {}  # one per URL and process: a grading process reads the scores 2-3 times a student


def _engine(url: str) -> Any:
    """This process's engine for ``url``: one connection kept open (checked before each use), so that reading
    the scores does not start a new PostgreSQL backend process every time."""
    import sqlalchemy

    if url not in _ENGINES:
        _ENGINES[url] = sqlalchemy.create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    return _ENGINES[url]


def _sqlalchemy_scores(url: str) -> Scores:
    import sqlalchemy

    try:
        with _engine(url).connect() as con:
            if not sqlalchemy.inspect(con).has_table("grade"):
                return {}
            return {tuple(row[:4]): tuple(row[4:]) for row in con.execute(sqlalchemy.text(_SCORES))}
    except Exception as exc:  # driver missing, server down, wrong password, ...
        raise GradebookUnreadable(f"cannot read {_redact(url)}: {exc}") from exc


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


def _pg_dump() -> str:
    found = shutil.which("pg_dump") or (str(PG_BIN / "pg_dump") if (PG_BIN / "pg_dump").exists() else None)
    if found is None:
        raise GradebookUnreadable("pg_dump is not installed (Debian: apt-get install postgresql-client)")
    return found


def backup(db: str | Path, folder: Path, kind: str = "run") -> Path | None:
    """Copy the gradebook into ``folder``; None when a SQLite gradebook does not exist yet.

    ``kind`` is "run" (one nbgrader process) or "batch" (before a class is graded); see :func:`prune`.
    Raises GradebookUnreadable when the copy fails.
    """
    if kind not in ("run", "batch"):
        raise ValueError(f"backup kind must be 'run' or 'batch', not {kind!r}")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    path = sqlite_path(db)
    if path is not None and not path.is_file():
        return None
    folder.mkdir(exist_ok=True)
    target = folder / f"gradebook-{stamp}-{kind}-{os.getpid()}.{'db' if path is not None else 'sql'}"
    try:
        if path is not None:
            src, dst = sqlite3.connect(path, timeout=120), sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        else:
            proc = subprocess.run([_pg_dump(), "--no-owner", f"--file={target}", f"--dbname={libpq_url(str(db))}"],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode:
                raise GradebookUnreadable(f"pg_dump failed: {proc.stderr.strip()[-500:]}")
    except (sqlite3.Error, OSError, subprocess.TimeoutExpired) as exc:
        target.unlink(missing_ok=True)
        raise GradebookUnreadable(f"backup of the gradebook failed: {exc}") from exc
    prune(folder)
    return target


def prune(folder: Path, keep: int = KEEP_BACKUPS) -> list[Path]:
    """Delete old backups; return what was deleted.

    Kept: the ``keep`` newest of each kind ("run", "batch"), the first backup of every UTC day (which
    precedes that day's grading, however many per-student runs follow), and any backup whose process is
    still running on this machine. A batch backup is therefore never rotated out by per-student runs.
    """
    deleted = []
    files = sorted(folder.glob("gradebook-*-*-*.*"))
    first_of_day = {}
    for f in files:
        first_of_day.setdefault(f.name.split("T", 1)[0], f)
    for kind in ("run", "batch"):
        mine = [f for f in files if f.name.split("-")[2] == kind]
        for old in mine[:-keep] if keep else mine:
            pid = old.name.split("-")[3].split(".")[0]
            if old in first_of_day.values() or (pid.isdigit() and pid_alive(int(pid))):
                continue
            old.unlink(missing_ok=True)
            deleted.append(old)
    return deleted


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (this process counts; one of another user too)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
