"""``python -m autograder grade ASSIGNMENT``: autograde a whole class in parallel (batch.py).

Run from the repository root (the folder that holds autograder/):

    python -m autograder grade ch02_lenet                        # workers = CPU cores, SQLite
    python -m autograder grade ch02_lenet --workers 8 --db-url postgresql://grader@dbhost/cnnbook
    python -m autograder grade ch02_lenet --scheduler tcp://10.0.0.5:8786    # an existing Dask cluster
    python -m autograder grade ch02_lenet --force --student alice           # grade alice again
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch import as_json, grade_class  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="autograde every submitted student of an assignment")
    g.add_argument("assignment")
    g.add_argument("--course", type=Path, default=HERE, help="the nbgrader course directory (default: %(default)s)")
    g.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="students graded at once: workers of the local Dask cluster, each driving one grading "
                        "process (default: CPU cores, %(default)s)")
    g.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786) instead")
    g.add_argument("--db-url", default=os.environ.get("CNNBOOK_DB_URL"),
                   help="gradebook URL (default: $CNNBOOK_DB_URL, else the course's SQLite gradebook.db)")
    g.add_argument("--force", action="store_true", help="grade again the students graded by an earlier batch")
    g.add_argument("--student", action="append", help="only this student (repeatable)")
    g.add_argument("--export", type=Path, default=Path("grades.csv"),
                   help="CSV written by `nbgrader export` at the end, relative to the course (default: grades.csv)")
    g.add_argument("--timeout", type=float, default=3600, help="seconds per student before it counts as failed")
    g.add_argument("--chunk", type=int, default=None,
                   help="students graded by one nbgrader process (default: one to three chunks per worker, "
                        "at most 25 students each)")
    g.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workers < 1:
        parser().error("--workers must be at least 1")
    if args.chunk is not None and args.chunk < 1:
        parser().error("--chunk must be at least 1")
    try:
        summary = grade_class(args.course, args.assignment, workers=args.workers, scheduler=args.scheduler,
                              db_url=args.db_url, force=args.force, students=args.student, export=args.export,
                              timeout=args.timeout, chunk=args.chunk, progress=sys.stderr.isatty() or not args.json)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(as_json(summary) if args.json else "\n".join(summary.lines()))
    return 1 if summary.count("failed") or summary.integrity_problems else 0


if __name__ == "__main__":
    sys.exit(main())
