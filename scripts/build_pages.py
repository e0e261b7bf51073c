"""Build a few chapters as a throwaway book, with the real configuration, to check them quickly.

    .venv/bin/python scripts/build_pages.py book/05_vgg.md [book/11_mobilenet.md ...]

The pages are built into a temporary directory (printed at the end) with the same _config.yml, the
same warnings-as-errors flags as ``make book``, and a table of contents holding only the landing page,
the given pages and the bibliography. The full book is built by ``make book``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(pages: list[str]) -> int:
    if not pages:
        print(__doc__)
        return 2
    for page in pages:
        if not (ROOT / page).is_file():
            print(f"error: no such page {page!r} (give paths relative to the repository root)")
            return 2
    out = Path(tempfile.mkdtemp(prefix="cnnbook-pages-"))
    shutil.copy(ROOT / "_config.yml", out / "_config.yml")
    (out / "book").symlink_to(ROOT / "book")
    chapters = [p for p in pages] + (["book/bibliography.md"] if (ROOT / "book/bibliography.md").exists() else [])
    toc = "format: jb-book\nroot: book/intro\nchapters:\n" + "".join(
        f"  - file: {Path(p).with_suffix('').as_posix()}\n" for p in chapters if p != "book/intro.md"
    )
    (out / "_toc.yml").write_text(toc)
    env = dict(os.environ, PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}")
    cmd = [str(ROOT / ".venv/bin/jupyter-book"), "build", str(out), "--all", "-W", "-n", "--keep-going"]
    rc = subprocess.call(cmd, env=env)
    print(f"\nbuilt into {out}/_build/html (exit code {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
