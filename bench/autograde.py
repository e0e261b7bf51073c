"""Autograding throughput: a class of simulated students graded serially (stock `nbgrader autograde`, one
process), with `python -m autograder grade --workers 2` (a LocalCluster of 2 worker threads) and on a
separate Dask LocalCluster reached through its scheduler address (`--scheduler`), each on SQLite and on
PostgreSQL, in one run; every run must give every student the same score as the serial SQLite run.

    python bench/autograde.py                        # 200 students of ch05_vgg
    python bench/autograde.py --students 6           # a quick look on a shared machine
    python bench/autograde.py --isolation --students 4   # serially, isolated vs unisolated kernels
    python bench/autograde.py --databases postgresql --modes serial workers   # a subset of the six runs

Prints students per minute, the speed-up of each parallel run over the serial one on the same database,
the CPU seconds per student the whole machine spent (``/proc/stat``: every process, the sandboxed kernels,
the Dask workers and PostgreSQL included; meaningful on an otherwise idle machine, and the load average
printed says whether it was) and the projected time for 1,000
students on 16 cores from wall time: each worker's seconds per student (the run's seconds per student x
workers, from the slower parallel run) x 1,000 / 16, assuming each core of the larger machine grades as
fast as one here.

Everything runs in temporary copies of the course (autograder/simulate.py) and a throwaway PostgreSQL
(autograder/pg_local.py; skipped with a note when its binaries are absent), so the repository's gradebook
is never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import batch  # noqa: E402
import db_snapshots  # noqa: E402
import pg_local  # noqa: E402
import simulate  # noqa: E402


def _machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle and iowait).

    Not RUSAGE_CHILDREN, which counts only the processes their parents reaped and missed most of the
    sandboxed kernels' time; the machine's counter misses nothing, and counts other work too.
    """
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fh.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _serial(course: Path, assignment: str, env: dict[str, str]) -> None:
    proc = simulate.nbgrader(course, "autograde", assignment, env=env)
    if proc.returncode:
        raise SystemExit(f"serial autograde failed:\n{proc.stderr[-3000:]}")


def _parallel(course: Path, assignment: str, url: str, workers: int, scheduler: str | None) -> None:
    summary = batch.grade_class(course, assignment, workers=workers, scheduler=scheduler, db_url=url,
                                progress=False)
    if summary.count("failed") or summary.integrity_problems:
        raise SystemExit("\n".join(summary.lines()))


def run(assignment: str, n_students: int, workers: int, only_db: list[str] | None = None,
        only_modes: list[str] | None = None) -> int:
    from distributed import LocalCluster

    students = [f"s{i:03d}" for i in range(n_students)]
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        try:
            server = pg_local.LocalPostgres().start()
        except pg_local.PostgresUnavailable as exc:
            print(f"PostgreSQL skipped: {exc}")
        databases = [db for db in ["sqlite"] + (["postgresql"] if server else []) if db in (only_db or [db])]
        modes = [("serial, one nbgrader process", None), (f"--workers {workers} (LocalCluster)", "workers"),
                 (f"--scheduler (Dask LocalCluster, {workers} workers)", "scheduler")]
        modes = [(label, mode) for label, mode in modes if (mode or "serial") in (only_modes or [mode or "serial"])]
        try:
            for db in databases:
                for label, mode in modes:
                    name = f"{db}-{mode or 'serial'}"
                    url = server.create(name.replace("-", "_")) if db == "postgresql" else None
                    env = simulate.grading_env(**({"CNNBOOK_DB_URL": url} if url else {}))
                    course = simulate.make_course(Path(tmp) / name, assignment, students, env)
                    url = url or db_snapshots.default_url(course)
                    # the separate cluster of --scheduler exists during its own runs only: an idle cluster of
                    # worker processes costs CPU that the other runs would lose
                    separate = (LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
                                if mode == "scheduler" else contextlib.nullcontext())
                    with separate as cluster:
                        cpu0, t0 = _machine_cpu(), time.perf_counter()
                        if mode is None:
                            _serial(course, assignment, env)
                        else:
                            _parallel(course, assignment, url, workers, cluster.scheduler_address if cluster else None)
                        wall, cpu = time.perf_counter() - t0, _machine_cpu() - cpu0
                    print(f"{name}: {wall:.1f} s", flush=True)  # each run as it ends: a long run shows progress
                    rows.append((db, label, wall, cpu))
                    results[(db, label)] = db_snapshots.totals(url)
        finally:
            if server:
                server.stop()
    return _print(assignment, n_students, workers, rows, results)


def _print(assignment: str, n: int, workers: int, rows: list, results: dict) -> int:
    sizes = sorted({len(c) for c in batch.chunks([f"s{i}" for i in range(n)], workers)}, reverse=True)
    print(f"\nAutograding {assignment}: {n} simulated students, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end; the parallel runs grade chunks of "
          f"{' or '.join(map(str, sizes))} students per nbgrader process\n")
    print(f"{'database':10} {'mode':44} {'total s':>8} {'s/student':>9} {'students/min':>12} {'speed-up':>8} "
          f"{'machine CPU s/student':>22}")
    serial = {db: wall for db, label, wall, _ in rows if label.startswith("serial")}
    for db, label, wall, cpu in rows:
        cpu_text = f"{cpu / n:.1f}"
        print(f"{db:10} {label:44} {wall:>8.1f} {wall / n:>9.1f} {60 * n / wall:>12.1f} "
              f"{serial[db] / wall:>7.2f}x {cpu_text:>22}")
    # Wall time, not the CPU column: a core of the larger machine is assumed to grade as fast as a worker
    # here, waits included (the gradebook's lock, the kernel's start).
    parallel = [wall * workers / n for _, label, wall, _ in rows if not label.startswith("serial")]
    if parallel:  # --modes serial alone measures no worker
        core_s = max(parallel)
        print(f"\nprojected for 1,000 students on 16 cores: {1000 * core_s / 16 / 60:.0f} min (1,000 x {core_s:.1f} "
              f"s per student on one of {workers} workers, the slower parallel run, / 16 cores)")
    reference = results[next(iter(results))]
    differ = {key: totals for key, totals in results.items() if totals != reference}
    if differ:
        print(f"SCORES DIFFER from the first run: {differ}")
        return 1
    print(f"every run gives every student the same score as the first run ({next(iter(results))[0]}, serial) "
          f"(class total {sum(reference.values()):g})")
    return 0


def isolation_cost(assignment: str, n_students: int, repeats: int = 2, max_ratio: float = 1.5) -> int:
    """Grade the same class serially with unisolated kernels, then in the bubblewrap sandbox; report the
    wall-time ratio (the issue's budget: at most ``max_ratio``) and check that the scores agree."""
    students = [f"s{i:03d}" for i in range(n_students)]
    env = simulate.grading_env()
    runs: dict[str, list[float]] = {"none": [], "bwrap": []}
    results: dict[str, dict[str, float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        course = simulate.make_course(Path(tmp), assignment, students, env)
        # A B B A ...: a machine whose load drifts during the benchmark favours neither mode
        order = [m for i in range(repeats) for m in (("none", "bwrap") if i % 2 == 0 else ("bwrap", "none"))]
        for mode in order:
            t0 = time.perf_counter()
            proc = simulate.nbgrader(course, "autograde", assignment, "--force", env={**env, "CNNBOOK_ISOLATION": mode})
            runs[mode].append(time.perf_counter() - t0)
            if proc.returncode:
                raise SystemExit(f"autograde ({mode}) failed:\n{proc.stderr[-3000:]}")
            results[mode] = db_snapshots.totals(db_snapshots.default_url(course))
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
    parser.add_argument("--assignment", default="ch05_vgg",
                        help="the assignment graded (default: %(default)s, which trains nothing, so the run "
                             "measures the grading itself)")
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--isolation", action="store_true", help="isolated vs unisolated grading, serially")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, in A B B A order (--isolation)")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"],
                        help="only these gradebooks (default: both); the first run's scores are the reference")
    parser.add_argument("--modes", nargs="+", choices=["serial", "workers", "scheduler"],
                        help="only these modes (default: all three); serial is needed for the speed-up")
    args = parser.parse_args()
    if args.modes and "serial" not in args.modes:
        parser.error("--modes needs serial: the speed-up is measured against it")
    if args.isolation:
        return isolation_cost(args.assignment, args.students, args.repeats)
    return run(args.assignment, args.students, args.workers, args.databases, args.modes)


if __name__ == "__main__":
    sys.exit(main())
