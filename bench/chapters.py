"""Execute every chapter of the book in a fresh kernel and print its time and peak memory.

    .venv/bin/python bench/chapters.py                      # every chapter of _toc.yml
    .venv/bin/python bench/chapters.py book/02_lenet.md     # some chapters
    CNNBOOK_MODE=full .venv/bin/python bench/chapters.py    # the same in full mode

Each chapter (a MyST markdown notebook) is read with jupytext and executed top to bottom by nbclient in
a new ``python3`` kernel, started in the chapter's folder as the book build does, without the book's
execution cache. While it runs, a thread samples every 0.1 s the memory of the kernel process and its
children with psutil, and reports two peaks:

- **PSS** (proportional set size, summed over the processes): each page shared by several processes
  is divided between them. This is what a Binder or Docker memory limit (a cgroup) is charged, so the
  1.5 GB target applies to it.
- **RSS** summed over the processes, for comparison: it counts the libraries shared by the kernel and
  its children (torch's 1 GB of code and data, for one) once per process, so it overstates chapters that
  start worker processes (chapter 3's data-parallel training, for one).

Time is the wall-clock time of the execution, kernel start included; CPU time is the user + system time
of the kernel and of every child process it started (a child's time is sampled while it runs). The
targets of budget mode are 3 minutes and 1.5 GB per chapter (on a 2-core CPU with nothing else
running); a chapter over either is marked ``over``. Wall time depends on the load of the machine, CPU
time much less: compare the two when the machine is shared.

The table is printed at the end; ``--json PATH`` also writes it as JSON, ``--output DIR`` keeps the
executed notebooks, and ``--cells N`` lists, per chapter, the N code cells with the highest peak PSS (to
find which cell to slim when a chapter is over the memory target). Run it on an otherwise idle
machine: timings measured next to other work say little.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jupytext
import psutil
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 180.0
MEMORY_LIMIT_MB = 1536.0


@dataclass
class Result:
    chapter: str
    seconds: float
    cpu_seconds: float
    peak_mb: float       # summed PSS
    peak_rss_mb: float   # summed RSS
    cells: int
    error: str = ""
    top_cells: list[tuple[int, float, str]] = field(default_factory=list)  # (cell index, peak PSS MB, first line)

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "ok" if self.seconds <= TIME_LIMIT_S and self.peak_mb <= MEMORY_LIMIT_MB else "over"


def toc_chapters() -> list[Path]:
    """The pages of _toc.yml that are notebooks (they have a kernelspec), in book order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    files += [c["file"] for c in toc.get("chapters", [])]
    pages = [ROOT / f"{f}.md" for f in files]
    return [p for p in pages if p.exists() and "kernelspec" in p.read_text()[:500]]


class TreeMonitor:
    """Samples a process tree in a background thread: the peaks of its summed PSS and summed RSS, and the
    CPU time of every process seen (the last sample of each)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.pid = interval, None
        self.peak_pss = self.peak_rss = 0
        self.cell_peak_pss = 0  # peak since the last reset (the current cell's)
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return
        pss = rss = 0
        for proc in processes:
            try:
                with proc.oneshot():
                    memory = proc.memory_full_info()  # reads /proc/PID/smaps_rollup
                    times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            pss, rss = pss + memory.pss, rss + memory.rss
            self.cpu[proc.pid] = times.user + times.system
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        self.cell_peak_pss = max(self.cell_peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.pid is not None:
                self.sample()
            self._stop.wait(self.interval)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_chapter(path: Path, timeout: int, output: Path | None = None, top: int = 0) -> Result:
    notebook = jupytext.read(path)
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    error = ""
    cell_peaks: list[tuple[int, float, str]] = []
    start = time.perf_counter()
    with TreeMonitor() as monitor:
        with client.setup_kernel():
            monitor.pid = client.km.provisioner.pid  # the kernel process
            try:
                for index, cell in enumerate(client.nb.cells):
                    monitor.cell_peak_pss = 0
                    client.execute_cell(cell, index)
                    if cell.cell_type == "code":
                        monitor.sample()  # a cell shorter than the sampling interval still gets one sample
                        first = next((line for line in cell.source.splitlines() if line.strip()), "")
                        cell_peaks.append((index, monitor.cell_peak_pss / 2**20, first[:60]))
            except CellExecutionError as exc:
                error = str(exc).strip().splitlines()[-1][:120]
            monitor.sample()  # the last CPU times, before the kernel shuts down
    seconds = time.perf_counter() - start
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        import nbformat

        nbformat.write(client.nb, output / f"{path.stem}.ipynb")
    return Result(str(path.relative_to(ROOT)), seconds, monitor.cpu_seconds, monitor.peak_pss / 2**20,
                  monitor.peak_rss / 2**20, code_cells, error,
                  sorted(cell_peaks, key=lambda c: -c[1])[:top])


def print_table(results: list[Result]) -> None:
    print()
    print(f"mode: {os.environ.get('CNNBOOK_MODE', 'budget')}; targets per chapter: "
          f"{TIME_LIMIT_S:.0f} s and {MEMORY_LIMIT_MB:.0f} MB; {psutil.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'chapter':30s} {'cells':>5s} {'time (s)':>9s} {'cpu (s)':>8s} {'peak PSS (MB)':>14s} "
          f"{'peak RSS (MB)':>14s}  verdict")
    for r in results:
        print(f"{r.chapter:30s} {r.cells:5d} {r.seconds:9.1f} {r.cpu_seconds:8.1f} {r.peak_mb:14.0f} "
              f"{r.peak_rss_mb:14.0f}  {r.verdict} {r.error}")
    print(f"{'whole book':30s} {sum(r.cells for r in results):5d} {sum(r.seconds for r in results):9.1f} "
          f"{sum(r.cpu_seconds for r in results):8.1f} {max((r.peak_mb for r in results), default=0.0):14.0f} "
          f"{max((r.peak_rss_mb for r in results), default=0.0):14.0f}  (times: sum; memory: largest chapter)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter files (default: every notebook of _toc.yml)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--output", type=Path, help="write the executed notebooks (.ipynb) into this folder")
    parser.add_argument("--cells", type=int, default=0, metavar="N",
                        help="also list the N code cells of each chapter with the highest peak PSS")
    args = parser.parse_args(argv)
    os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"  # the project's kernel
    chapters = [Path(c).resolve() for c in args.chapters] or toc_chapters()
    results = []
    for path in chapters:
        print(f"running {path.relative_to(ROOT)} ...", flush=True)
        results.append(run_chapter(path, args.timeout, args.output, args.cells))
        r = results[-1]
        print(f"  {r.seconds:.1f} s, {r.cpu_seconds:.1f} s CPU, peak PSS {r.peak_mb:.0f} MB "
              f"(RSS {r.peak_rss_mb:.0f} MB) {r.error}", flush=True)
        for index, peak, first in r.top_cells:
            print(f"    cell {index:3d}: peak PSS {peak:6.0f} MB  {first}", flush=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
