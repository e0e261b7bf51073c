"""Execute the book's chapters in parallel into Jupyter Book's execution cache, before the build.

    .venv/bin/python scripts/execute_book.py [--jobs N] [--cache DIR] [--timeout S]

``make book`` runs this, then ``jupyter-book build``. In budget mode every chapter trains on one CPU
thread (``cnnbook.config.set_threads``), and Jupyter Book executes the chapters one after another, so on
a machine with two cores half of it idles for the whole build. This script puts each chapter that has
no cached run into the same cache (``_build/.jupyter_cache``, the one the build reads) with
jupyter-cache's own execution worker and myst-nb's own reader, ``--jobs`` chapters at a time (default:
the number of CPUs), the longest first so the two cores finish together.

Nothing here decides what the book shows. The build matches each chapter against the cache by the
hash of its code, as it always does: a chapter executed here is a cache hit; a chapter that failed
here, or whose notebook the build reads differently, is simply executed again by the build, which then
fails on a raising cell with the full error exactly as without this script. So the script only
saves time; it exits 0 unless it could not run at all.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from chapters import toc_chapters  # noqa: E402 - the book's notebooks in _toc.yml order, as bench/chapters.py runs them
READER = {"name": "myst_nb_md", "type": "plugin"}  # myst-nb's reader, registered with jupyter-cache

# Seconds per chapter in budget mode on one idle core (bench/chapters.py); only the order of execution
# depends on them (longest first). A chapter that is not listed counts as 60 s.
EXPECTED_SECONDS = {
    "08_resnet": 150, "03_alexnet_zfnet": 140, "09_densenet_se": 130, "13_nas": 115, "14_transfer": 105,
    "12_augmentation": 90, "10_unet": 85, "07_batchnorm": 85, "04_nin": 65, "02_lenet": 35, "06_inception": 35,
    "15_zoo": 30, "11_mobilenet": 25, "appendix_data_parallel": 20, "05_vgg": 18, "01_history": 15,
    "00_how_to_use": 13,
}


def pending(cache, pages: list[Path]) -> list[tuple[int, Path]]:  # noqa: ANN001 - jupyter_cache's cache
    """Add ``pages`` to the cache's project; the (record id, page) of those with no cached run."""
    todo = []
    for page in pages:
        record = cache.add_nb_to_project(str(page), read_data=READER)
        nb = cache.get_project_notebook(record.pk).nb
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            todo.append((record.pk, page))
    return todo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="chapters executed at once")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache",
                        help="Jupyter Book's execution cache (default: _build/.jupyter_cache)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell, as in _config.yml")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    cache = get_cache(str(args.cache))
    todo = pending(cache, toc_chapters())
    if not todo:
        print("execute_book: every chapter is in the cache already")
        return 0
    if args.jobs == 1 or len(todo) == 1:
        print(f"execute_book: {len(todo)} chapter(s) to run, one at a time: left to the build")
        return 0
    todo.sort(key=lambda item: -EXPECTED_SECONDS.get(item[1].stem, 60))
    jobs = min(args.jobs, len(todo))
    print(f"execute_book: {len(todo)} chapter(s) to run, {jobs} at a time: "
          + ", ".join(p.stem for _, p in todo), flush=True)
    work = [ProcessData(pk, str(page), cache, args.timeout, False) for pk, page in todo]
    start = time.perf_counter()
    failed = []
    with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=1) as pool:
        for status, uri in pool.imap_unordered(ExecutionWorkerLocalMProc(), work, chunksize=1):
            name = Path(uri).stem
            print(f"execute_book: {name} {'cached' if status == 0 else 'FAILED (the build runs it again)'} "
                  f"at {time.perf_counter() - start:.0f} s", flush=True)
            if status != 0:
                failed.append(name)
    print(f"execute_book: done in {time.perf_counter() - start:.0f} s"
          + (f"; failed here, left to the build: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
