"""Build a few chapters as a throwaway book, with the real configuration, to check them quickly.

    .venv/bin/python scripts/build_pages.py book/05_vgg.md [book/11_mobilenet.md ...]

The pages are built into a temporary directory (printed at the end) with the same _config.yml, the
same warnings-as-errors flags as ``make book``, and a table of contents holding only the landing page,
the given pages, the pages they link to and the bibliography. A linked page that is a notebook (a
chapter) is replaced by a stub with its title, so it is not executed and its links still resolve.
The full book is built by ``make book``.
"""

from __future__ import annotations

import os
import re
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
    (out / "book").mkdir()
    for item in (ROOT / "book").iterdir():  # the real files, except the stubs written below
        (out / "book" / item.name).symlink_to(item)
    linked = sorted({link for page in pages for link in linked_pages(ROOT / page)} - set(pages))
    for link in linked:
        if is_notebook(ROOT / link):
            (out / link).unlink()
            (out / link).write_text(f"# {title(ROOT / link)}\n\n(not built by build_pages.py)\n")
    print("linked pages added:", ", ".join(linked) or "none")
    chapters = [*pages, *linked] + (["book/bibliography.md"] if (ROOT / "book/bibliography.md").exists() else [])
    toc = "format: jb-book\nroot: book/intro\nchapters:\n" + "".join(
        f"  - file: {Path(p).with_suffix('').as_posix()}\n" for p in dict.fromkeys(chapters) if p != "book/intro.md"
    )
    (out / "_toc.yml").write_text(toc)
    env = dict(os.environ, PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}")
    cmd = [str(ROOT / ".venv/bin/jupyter-book"), "build", str(out), "--all", "-W", "-n", "--keep-going"]
    rc = subprocess.call(cmd, env=env)
    print(f"\nbuilt into {out}/_build/html (exit code {rc})")
    return rc


# [text](page.md) and {doc}`page` or {doc}`text <page>`, relative to the linking page
_MD_LINK = re.compile(r"\]\(([\w./-]+\.md)(?:#[^)]*)?\)")
_DOC_ROLE = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")


def linked_pages(page: Path) -> list[str]:
    """The pages of the book a page links to, as paths relative to the repository root."""
    text = page.read_text()
    targets = _MD_LINK.findall(text) + [f"{t.strip()}.md" for t in _DOC_ROLE.findall(text)]
    found = []
    for target in targets:
        path = (page.parent / target).resolve()
        if path.is_file() and path.is_relative_to(ROOT / "book"):
            found.append(path.relative_to(ROOT).as_posix())
    return found


def is_notebook(page: Path) -> bool:
    return "kernelspec" in page.read_text()[:500]


def title(page: Path) -> str:
    return next((ln.lstrip("# ").strip() for ln in page.read_text().splitlines() if ln.startswith("# ")), page.stem)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
