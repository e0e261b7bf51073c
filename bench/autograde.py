"""Autograding throughput: time per submission, and a class of simulated students graded serially and
in parallel (one `nbgrader autograde --student` process per worker).

    python bench/autograde.py                       # 20 students of ch02_lenet, workers = CPU count
    python bench/autograde.py --students 40 --workers 4 --assignment ch07_batchnorm
    python bench/autograde.py --isolation           # 20 students serially, isolated vs unisolated kernels

Everything runs in a temporary copy of the course (autograder/, solutions/<assignment>/, a fresh
release), so the repository's gradebook is never touched. Submissions are the reference solution
(every third one with a wrong answer spliced in, so that failing tests are part of the timing).

Safe gradebook writes in parallel: the gradebook is SQLite. Before the parallel run it is switched to
write-ahead logging (`PRAGMA journal_mode=WAL`, persistent: readers never block the writer), and every
worker opens it with a 120 s busy timeout (`--CourseDirectory.db_url=sqlite:///...?timeout=120`), so a
worker waits for the lock instead of failing with "database is locked". A worker that still fails is
retried once. After each run the scores of every student are read back and compared with those of the
serial run: the benchmark fails if any differs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _nbgrader(course: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=course / "autograder", env=env,
                          capture_output=True, text=True)


def _solution_answers(source: Path) -> dict[str, str]:
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            answers[meta["grade_id"]] = "\n".join(
                ln for ln in cell.source.splitlines() if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return answers


def _make_course(root: Path, assignment: str, students: list[str], env: dict[str, str]) -> None:
    ignore = shutil.ignore_patterns("submitted", "autograded", "feedback", "gradebook.db*", "__pycache__", "*.csv")
    shutil.copytree(REPO / "autograder", root / "autograder", ignore=ignore)
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    (root / "exercises").mkdir()
    with open(root / "autograder" / "students.csv", "w") as fh:
        fh.write("id,first_name,last_name,email\n" + "".join(f"{s},{s},Bench,\n" for s in students))
    for args in (("db", "student", "import", "students.csv"), ("generate_assignment", assignment)):
        proc = _nbgrader(root, *args, env=env)
        if proc.returncode:
            raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    for i, student in enumerate(students):
        for release in sorted((root / "exercises" / assignment).glob("*.ipynb")):
            nb = nbformat.read(release, as_version=4)
            answers = _solution_answers(root / "solutions" / assignment / release.name)
            spoil = i % 3 == 2  # every third student gets one wrong answer: some tests fail
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in answers:
                    cell.source = answers[gid]
                    if spoil and "return " in cell.source:
                        cell.source = cell.source.replace("return ", "return 0 * ", 1)
                        spoil = False
            folder = root / "autograder" / "submitted" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / release.name)
            (folder / "timestamp.txt").write_text("2026-03-02 09:30:00.000000 UTC")


def _scores(course: Path, assignment: str, students: list[str]) -> dict[str, float | None]:
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[str, float | None] = {}
    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}", course_id="cnnbook") as gb:
        for student in students:
            try:
                out[student] = gb.find_submission(assignment, student).score
            except MissingEntry:
                out[student] = None
    return out


def _reset(course: Path) -> None:
    shutil.rmtree(course / "autograder" / "autograded", ignore_errors=True)


def run(assignment: str, n_students: int, workers: int) -> int:
    students = [f"s{i:03d}" for i in range(n_students)]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    env.pop("CNNBOOK_REFERENCES", None)
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        t0 = time.perf_counter()
        _make_course(course, assignment, students, env)
        setup = time.perf_counter() - t0
        rows = []

        # one submission on its own: the cost an instructor sees for `--student`
        t0 = time.perf_counter()
        proc = _nbgrader(course, "autograde", assignment, f"--student={students[0]}", env=env)
        single = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"autograde failed:\n{proc.stderr[-3000:]}")
        rows.append(("one submission, one process", 1, 1, single))
        _reset(course)

        # serial: one nbgrader process grades the whole class
        t0 = time.perf_counter()
        proc = _nbgrader(course, "autograde", assignment, "--force", env=env)
        serial = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"autograde failed:\n{proc.stderr[-3000:]}")
        reference = _scores(course, assignment, students)
        rows.append(("serial, one process", 1, n_students, serial))
        _reset(course)

        # parallel: one `--student` process per worker, gradebook in WAL mode with a busy timeout
        db = course / "autograder" / "gradebook.db"
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        db_url = f"--CourseDirectory.db_url=sqlite:///{db}?timeout=120"
        retried = []

        def grade(student: str) -> None:
            for attempt in range(2):
                p = _nbgrader(course, "autograde", assignment, f"--student={student}", "--force", db_url, env=env)
                if p.returncode == 0:
                    return
                retried.append(student)
            raise RuntimeError(f"{student}: autograde failed twice:\n{p.stderr[-2000:]}")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(grade, students))
        parallel = time.perf_counter() - t0
        rows.append((f"parallel, --student per worker", workers, n_students, parallel))
        after = _scores(course, assignment, students)

    print(f"\nAutograding {assignment}: {n_students} simulated students, {os.cpu_count()} CPU cores "
          f"(course set-up {setup:.0f} s)\n")
    print(f"{'mode':34} {'workers':>7} {'subs':>5} {'total s':>8} {'s / sub':>8} {'subs / min':>10}")
    for mode, w, n, total in rows:
        print(f"{mode:34} {w:>7} {n:>5} {total:>8.1f} {total / n:>8.1f} {60 * n / total:>10.1f}")
    print(f"\nspeed-up of the parallel run: {serial / parallel:.2f}x with {workers} workers"
          + (f"; retried: {sorted(set(retried))}" if retried else "; no worker needed a retry"))
    differ = {s: (reference[s], after[s]) for s in students if reference[s] != after[s]}
    if differ:
        print(f"SCORES DIFFER between the serial and the parallel run: {differ}")
        return 1
    print(f"every student's score is the same in both runs (total {sum(v or 0 for v in after.values()):g})")
    return 0


def isolation_cost(assignment: str, n_students: int, repeats: int = 2, max_ratio: float = 1.5) -> int:
    """Grade the same class serially with unisolated kernels, then in the bubblewrap sandbox; report the
    wall-time ratio (the issue's budget: at most ``max_ratio``) and check that the scores agree."""
    students = [f"s{i:03d}" for i in range(n_students)]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    env.pop("CNNBOOK_REFERENCES", None)
    runs: dict[str, list[float]] = {"none": [], "bwrap": []}
    results: dict[str, dict[str, float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        os.chmod(course, 0o755)
        _make_course(course, assignment, students, env)
        # A B B A ...: a machine whose load drifts during the benchmark favours neither mode
        order = [m for i in range(repeats) for m in (("none", "bwrap") if i % 2 == 0 else ("bwrap", "none"))]
        for mode in order:
            _reset(course)
            t0 = time.perf_counter()
            proc = _nbgrader(course, "autograde", assignment, "--force", env={**env, "CNNBOOK_ISOLATION": mode})
            runs[mode].append(time.perf_counter() - t0)
            if proc.returncode:
                raise SystemExit(f"autograde ({mode}) failed:\n{proc.stderr[-3000:]}")
            results[mode] = _scores(course, assignment, students)
    times = {mode: sum(ts) / len(ts) for mode, ts in runs.items()}
    ratio = times["bwrap"] / times["none"]
    print(f"\nAutograding {assignment}: {n_students} simulated students, serially, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    for mode, label in (("none", "unisolated kernels"), ("bwrap", "isolated (bwrap)  ")):
        each = ", ".join(f"{t:.1f}" for t in runs[mode])
        print(f"{label}: {times[mode]:.1f} s mean of {len(runs[mode])} runs ({each}); "
              f"{times[mode] / n_students:.1f} s per submission")
    print(f"ratio isolated / unisolated: {ratio:.2f} (budget {max_ratio})")
    if results["none"] != results["bwrap"]:
        print(f"SCORES DIFFER: {results}")
        return 1
    print(f"every student's score is the same in both runs (total {sum(v or 0 for v in results['none'].values()):g})")
    return 0 if ratio <= max_ratio else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="ch02_lenet")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--isolation", action="store_true", help="isolated vs unisolated grading, serially")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, in A B B A order (--isolation)")
    args = parser.parse_args()
    if args.isolation:
        return isolation_cost(args.assignment, args.students, args.repeats)
    return run(args.assignment, args.students, args.workers)


if __name__ == "__main__":
    sys.exit(main())
