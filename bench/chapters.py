"""Execute every chapter of the book in a fresh kernel and print its time and peak memory.

    .venv/bin/python bench/chapters.py                      # every chapter of _toc.yml
    .venv/bin/python bench/chapters.py book/02_lenet.md     # some chapters
    CNNBOOK_MODE=full .venv/bin/python bench/chapters.py    # the same in full mode

Each chapter (a MyST markdown notebook) is read with jupytext and executed top to bottom by nbclient in
a new ``python3`` kernel, started in the chapter's folder as the book build does, without the book's
execution cache. While it runs, a thread samples every 0.1 s the resident memory (RSS) of the kernel
process and its children with psutil; the peak is reported. Time is the wall-clock time of the
execution, kernel start included. The targets of budget mode are 3 minutes and 1.5 GB per chapter
(on a 2-core CPU with nothing else running); a chapter over either is marked ``over``.

The table is printed at the end; ``--json PATH`` also writes it as JSON, ``--output DIR`` keeps the
executed notebooks. Run it on an otherwise idle
machine: timings measured next to other work say little.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
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
    peak_mb: float
    cells: int
    error: str = ""

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


class PeakMemory:
    """Samples the RSS of a process tree in a background thread and keeps the maximum."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak, self.pid = interval, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        try:
            root = psutil.Process(self.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.pid is not None:
                self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_chapter(path: Path, timeout: int, output: Path | None = None) -> Result:
    notebook = jupytext.read(path)
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    error = ""
    start = time.perf_counter()
    with PeakMemory() as memory:
        with client.setup_kernel():
            memory.pid = client.km.provisioner.pid  # the kernel process
            try:
                for index, cell in enumerate(client.nb.cells):
                    client.execute_cell(cell, index)
            except CellExecutionError as exc:
                error = str(exc).strip().splitlines()[-1][:120]
    seconds = time.perf_counter() - start
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        import nbformat

        nbformat.write(client.nb, output / f"{path.stem}.ipynb")
    return Result(str(path.relative_to(ROOT)), seconds, memory.peak / 2**20, code_cells, error)


def print_table(results: list[Result]) -> None:
    print()
    print(f"mode: {os.environ.get('CNNBOOK_MODE', 'budget')}; targets per chapter: "
          f"{TIME_LIMIT_S:.0f} s and {MEMORY_LIMIT_MB:.0f} MB; {psutil.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'chapter':34s} {'cells':>5s} {'time (s)':>9s} {'peak RSS (MB)':>14s}  verdict")
    for r in results:
        print(f"{r.chapter:34s} {r.cells:5d} {r.seconds:9.1f} {r.peak_mb:14.0f}  {r.verdict} {r.error}")
    total = sum(r.seconds for r in results)
    peak = max((r.peak_mb for r in results), default=0.0)
    print(f"{'whole book':34s} {sum(r.cells for r in results):5d} {total:9.1f} {peak:14.0f}  "
          f"(time: sum; memory: largest chapter)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter files (default: every notebook of _toc.yml)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--output", type=Path, help="write the executed notebooks (.ipynb) into this folder")
    args = parser.parse_args(argv)
    os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"  # the project's kernel
    chapters = [Path(c).resolve() for c in args.chapters] or toc_chapters()
    results = []
    for path in chapters:
        print(f"running {path.relative_to(ROOT)} ...", flush=True)
        results.append(run_chapter(path, args.timeout, args.output))
        r = results[-1]
        print(f"  {r.seconds:.1f} s, peak {r.peak_mb:.0f} MB {r.error}", flush=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
