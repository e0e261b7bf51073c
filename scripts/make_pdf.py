"""One PDF of the whole book, in reading order, from the built HTML (``make pdf``, after ``make book``).

    .venv/bin/python scripts/make_pdf.py [--html _build/html] [--out _build/pdf/book.pdf]

Each page of ``_toc.yml`` (the landing page, then every chapter in order) is opened in Debian's
Chromium through Playwright, from a static server on 127.0.0.1 (nothing else is reachable: the book
works offline), and printed with ``page.pdf`` in the print media the theme styles: no sidebars, the
widgets as their print figures (``@media print`` in the widgets' CSS). Before printing, hidden code
cells are opened, so the PDF keeps every cell's code, and the alt text of each figure is written under
it, so a reader of the PDF (or of its text) has the description too. The pages are merged with pypdf
into one file with a bookmark per chapter; ``book.json`` beside it lists each chapter's title and its
first and last page (what tests/test_pdf.py reads).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, LOAD_TIMEOUT_MS, start_server  # noqa: E402

# Run in each page before printing: open the hidden code cells and the collapsed outputs, and write each
# figure's alt text under it as a caption, shown in print only.
_PREPARE = """() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  for (const img of document.querySelectorAll(".bd-article img[alt]")) {
    const alt = img.getAttribute("alt").trim();
    if (!alt) {
      continue;
    }
    const caption = document.createElement("p");
    caption.className = "cnnbook-print-alt";
    caption.textContent = "Figure description: " + alt;
    img.insertAdjacentElement("afterend", caption);
  }
  const style = document.createElement("style");
  style.textContent = ".cnnbook-print-alt { font-size: 0.8em; font-style: italic; margin: 0.2em 0 1em 0; }";
  document.head.appendChild(style);
}"""
_MATH_READY = "() => !window.MathJax || !MathJax.startup || MathJax.startup.promise.then(() => true)"


def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """The book's pages in reading order (``book/intro``, ``book/00_how_to_use``, ...), from ``_toc.yml``."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [toc["root"]]

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        walk(part.get("chapters", []))
    return files


class _Title(HTMLParser):
    """The text of a page's first ``<h1>``, without Sphinx's "#" permalink."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.skip = 0
        self.parts: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "h1":
            self.depth += 1
        elif self.depth and tag == "a" and "headerlink" in (dict(attrs).get("class") or ""):
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1" and self.depth:
            self.depth -= 1
            self.done = not self.depth
        elif tag == "a" and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skip and not self.done:
            self.parts.append(data)


def page_title(page: Path) -> str:
    """A built page's title: its first heading."""
    parser = _Title()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    title = " ".join("".join(parser.parts).split())
    if not title:
        raise ValueError(f"{page} has no <h1> title")
    return title


def print_pages(html_root: Path, files: list[str], folder: Path) -> list[dict[str, Any]]:
    """Print each page to ``folder/NN.pdf``; returns ``[{file, title, pdf}]`` in order."""
    from playwright.sync_api import sync_playwright

    base, server = start_server(html_root)
    printed = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context()
            context.set_default_timeout(LOAD_TIMEOUT_MS)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                (base, "data:", "blob:")) else route.abort())
            for index, name in enumerate(files):
                html = html_root / f"{name}.html"
                if not html.is_file():
                    raise FileNotFoundError(f"{html} is missing: build the book first (make book)")
                page = context.new_page()
                page.goto(f"{base}{name}.html", wait_until="load")
                page.evaluate(_MATH_READY)
                page.emulate_media(media="print")
                page.evaluate(_PREPARE)
                pdf = folder / f"{index:02d}.pdf"
                page.pdf(path=str(pdf), format="A4", print_background=True,
                         margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"})
                page.close()
                printed.append({"file": name, "title": page_title(html), "pdf": pdf})
            browser.close()
    finally:
        server.shutdown()
    return printed


def merge(printed: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """One PDF with a bookmark per page of the book; returns ``[{file, title, first, last}]`` (1-based pages)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    index = []
    for item in printed:
        first = len(writer.pages)
        for pdf_page in PdfReader(item["pdf"]).pages:
            writer.add_page(pdf_page)
        writer.add_outline_item(item["title"], first)
        index.append({"file": item["file"], "title": item["title"], "first": first + 1, "last": len(writer.pages)})
    writer.add_metadata({"/Title": index[0]["title"] if index else "cnnbook"})
    with out.open("wb") as handle:
        writer.write(handle)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf" / "book.pdf", help="the PDF to write")
    parser.add_argument("--toc", type=Path, default=ROOT / "_toc.yml")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"error: {args.html} holds no built book: run make book first", file=sys.stderr)
        return 2
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} not found: apt-get install -y chromium (make browser does it)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    parts = args.out.parent / "pages"
    parts.mkdir(exist_ok=True)
    printed = print_pages(args.html, toc_files(args.toc), parts)
    index = merge(printed, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(index, indent=1))
    pages = index[-1]["last"] if index else 0
    print(f"{args.out}: {len(index)} chapters, {pages} pages, {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
