"""The book as one PDF (``make pdf``): every chapter in reading order, its title and its computed numbers.

``scripts/make_pdf.py`` prints each page of the built book (``_build/html``) with Chromium and merges them
into ``_build/pdf/book.pdf``, with ``book.json`` beside it (each page's title and page range). This test
makes the PDF when it is missing or older than the build, reads it with ``pdftotext`` (poppler-utils),
and checks that the pages come in the order of ``_toc.yml``, that each one's title is on its pages, and
that each executed chapter's first glued number (a value the chapter computed at build time and pasted
into its prose with ``{glue:text}``) is there too. Skipped, with the reason, when the book is not built
(CI builds it first: ``.ci/run``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser_helpers import BOOK_HTML, CHROMIUM, INSTALL_HINT, NOT_BUILT, ROOT

# A Jupyter Book builds <root>/_build/html from <root>/_toc.yml; the PDF goes beside the HTML.
TOC = BOOK_HTML.parents[1] / "_toc.yml"
PDF = BOOK_HTML.parent / "pdf" / "book.pdf"
MAKE_PDF = ROOT / "scripts" / "make_pdf.py"
# A value pasted by {glue:text}: myst-nb writes <span class="pasted-text">VALUE</span>.
_GLUED = re.compile(r'<span class="pasted-text">([^<]*\d[^<]*)</span>')

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require(tool: str, hint: str) -> None:
    if shutil.which(tool) is None and not Path(tool).exists():
        message = f"{tool} not found: {hint}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def book_pdf() -> tuple[Path, list[dict]]:
    index_html = BOOK_HTML / "index.html"
    if not index_html.is_file():
        pytest.skip(NOT_BUILT)
    _require("pdftotext", "apt-get install -y poppler-utils (make browser installs it)")
    _require(str(CHROMIUM), INSTALL_HINT)
    built = max(p.stat().st_mtime for p in BOOK_HTML.rglob("*.html"))
    if not PDF.is_file() or PDF.stat().st_mtime < built:
        command = [sys.executable, str(MAKE_PDF), "--html", str(BOOK_HTML), "--toc", str(TOC), "--out", str(PDF)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"make_pdf.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return PDF, json.loads(PDF.with_suffix(".json").read_text())


def pdf_text(pdf: Path, first: int, last: int) -> str:
    """The text of pages ``first``..``last`` (1-based), whitespace collapsed (lines wrap anywhere)."""
    out = subprocess.run(["pdftotext", "-f", str(first), "-l", str(last), "-enc", "UTF-8", str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def _squash(text: str) -> str:
    """``text`` without whitespace or hyphens: "squeeze-and-excitation" wrapped as "squeeze-" / "and-excitation"
    comes out of pdftotext as "squeezeand-excitation", which still reads as the same title."""
    return re.sub(r"[\s\-\u2010\u2011]", "", text)


def is_notebook(name: str) -> bool:
    source = ROOT / f"{name}.md"
    return source.is_file() and "kernelspec" in source.read_text()[:500]


def first_glued_number(name: str) -> str | None:
    match = _GLUED.search((BOOK_HTML / f"{name}.html").read_text(encoding="utf-8"))
    return " ".join(html.unescape(match.group(1)).split()) if match else None


def test_pdf_holds_every_page_in_reading_order(book_pdf: tuple[Path, list[dict]]) -> None:
    sys.path.insert(0, str(MAKE_PDF.parent))
    from make_pdf import toc_files

    pdf, index = book_pdf
    assert [entry["file"] for entry in index] == toc_files(TOC), "the PDF's pages are not those of _toc.yml, in order"
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                                                              check=True).stdout).group(1))
    assert index[-1]["last"] == pages, "book.json does not match the PDF"


def test_every_chapter_title_and_a_glued_number_are_in_the_pdf(book_pdf: tuple[Path, list[dict]]) -> None:
    pdf, index = book_pdf
    missing = []
    for entry in index:
        text = pdf_text(pdf, entry["first"], entry["last"])
        if _squash(entry["title"]) not in _squash(text):  # pdftotext drops the hyphen of a word split at a line end
            missing.append(f"{entry['file']}: title {entry['title']!r} not on pages {entry['first']}-{entry['last']}")
        if is_notebook(entry["file"]):
            number = first_glued_number(entry["file"])
            if number is None:
                missing.append(f"{entry['file']}: an executed chapter with no glued number")
            elif number not in text:
                missing.append(f"{entry['file']}: glued number {number!r} not on pages {entry['first']}-{entry['last']}")
    assert not missing, "\n".join(missing)
