"""Every graded exercise, run as a student runs it: time and peak memory per notebook.

    python bench/exercises.py                 # every notebook of exercises/
    python bench/exercises.py ch07_batchnorm  # only these assignments

A student opens the released notebook, fills in the answers and runs every cell. Here the release
(exercises/) gets the reference answers of solutions/ pasted into its answer cells, then runs in a fresh
kernel, as "Restart & Run All" would. The time includes the kernel start and the imports; the peak
memory is the kernel's maximum resident set size (``ru_maxrss``), read by a cell appended at the end.
Target, so that the exercises run on Binder: at most 60 s and 1.5 GB per notebook. The grading run
(which adds the hidden tests) is timed by bench/autograde.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 60.0
TARGET_MB = 1536.0
PEAK_CELL = "import resource\nprint('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def student_notebook(release: Path, source: Path) -> nbformat.NotebookNode:
    """The release with the reference answers pasted into its answer cells."""
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = "\n".join(
                ln for ln in cell.source.splitlines() if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    return nb


def run_one(release: Path) -> tuple[float, float, list[str]]:
    source = REPO / "solutions" / release.relative_to(REPO / "exercises")
    nb = student_notebook(release, source)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(release.parent)}}).execute()
    seconds = time.perf_counter() - start
    errors = [f"{c.get('id')}: {o.ename}: {o.evalue[:200]}" for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    peak_kb = next(float(line.split()[1]) for o in nb.cells[-1].outputs if o.output_type == "stream"
                   for line in o.text.splitlines() if line.startswith("PEAK_RSS_KB"))
    return seconds, peak_kb / 1024, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="assignment folders of exercises/ (default: all)")
    args = parser.parse_args()
    folders = args.assignments or sorted(p.name for p in (REPO / "exercises").iterdir() if p.is_dir())
    notebooks = [nb for folder in folders for nb in sorted((REPO / "exercises" / folder).glob("*.ipynb"))]
    print(f"{'notebook':42} {'time s':>7} {'peak MB':>8}  within target (<= {TARGET_S:.0f} s, <= {TARGET_MB:.0f} MB)")
    failed = 0
    for path in notebooks:
        seconds, peak_mb, errors = run_one(path)
        ok = seconds <= TARGET_S and peak_mb <= TARGET_MB and not errors
        failed += not ok
        print(f"{str(path.relative_to(REPO / 'exercises')):42} {seconds:>7.1f} {peak_mb:>8.0f}  "
              f"{'yes' if ok else 'NO'}{'  errors: ' + '; '.join(errors) if errors else ''}")
    print(f"\n{len(notebooks) - failed} of {len(notebooks)} notebooks within the target")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
