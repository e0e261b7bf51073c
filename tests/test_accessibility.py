"""WCAG 2.1 A and AA on every page of the built book, in the theme's light and dark modes, and real alt text.

- ``test_axe``: axe-core 4 (from npm, pinned by the Makefile's ``axe`` target into ``node_modules/``,
  injected from that local file: no network) runs in Debian's Chromium on every page of
  ``_build/html`` with the tags wcag2a, wcag2aa, wcag21a and wcag21aa. Any serious or critical
  violation fails the test, naming the page, the mode, the rule and the element. Counts by rule (all
  impacts) go to ``_build/test-artifacts/accessibility/axe-<mode>.json``.
- ``test_images_have_alt_text``: every ``<img>`` of every page has an alt text that describes
  something (``cnnbook.display.check_alt_text``): not empty, not a file name, a path or a hash (what
  Sphinx writes when a figure has none). Chapters give it with ``cnnbook.display.show_figure(fig, alt)``.

Both skip with the reason when the book is not built (CI builds it first: ``.ci/run``).
To count the violations of any build, by rule::

    .venv/bin/python tests/test_accessibility.py /tmp/cnnbook-pages-XXXX/_build/html
"""

from __future__ import annotations

import html.parser
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cnnbook.display import check_alt_text

from browser_helpers import AXE, BOOK_HTML, MODES, NOT_BUILT, ROOT, book_pages, browser, offline_context, serve  # noqa: F401

AXE_HINT = "run make axe (npm install of the pinned axe-core into node_modules/)"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING = ("serious", "critical")
ARTIFACTS = ROOT / "_build" / "test-artifacts" / "accessibility"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Runs axe and keeps what a report needs: rule, impact, and for each element its selector and markup.
_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.map(v => ({
    rule: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 160), summary: n.failureSummary}))
  }));
}"""


def axe_page(context: Any, url: str, mode: str) -> list[dict[str, Any]]:
    """axe's violations on one page, loaded in ``context`` (see ``offline_context``) in ``mode``."""
    page = context.new_page()
    try:
        page.goto(url, wait_until="load")
        shown = page.evaluate("document.documentElement.dataset.theme")
        assert shown == mode, f"{url}: the theme shows {shown!r}, not {mode!r} (did the theme's mode switch change?)"
        page.add_script_tag(path=str(AXE))
        return page.evaluate(_RUN_AXE, TAGS)
    finally:
        page.close()


def axe_book(browser: Any, base: str, pages: list[str], mode: str) -> dict[str, list[dict[str, Any]]]:
    """``{page: violations}`` for every page, in one mode."""
    context = offline_context(browser, mode)
    try:
        return {rel: axe_page(context, base + rel, mode) for rel in pages}
    finally:
        context.close()


def counts_by_rule(found: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """``{"rule (impact)": number of failing elements}`` over all pages."""
    counts: Counter[str] = Counter()
    for violations in found.values():
        for v in violations:
            counts[f"{v['rule']} ({v['impact']})"] += len(v["nodes"])
    return dict(sorted(counts.items()))


def failures(found: dict[str, list[dict[str, Any]]], mode: str) -> list[str]:
    """One line per serious or critical failing element: page, mode, rule, element."""
    return [
        f"{rel} [{mode}] {v['rule']} ({v['impact']}): {n['target']} {n['html']} -- {v['help']}"
        for rel, violations in found.items() for v in violations if v["impact"] in FAILING for n in v["nodes"]
    ]


@pytest.fixture(scope="module")
def built_pages() -> list[str]:
    if not (BOOK_HTML / "index.html").is_file():
        pytest.skip(NOT_BUILT)
    return book_pages()


@pytest.mark.parametrize("mode", MODES)
def test_axe(browser: Any, serve: Any, built_pages: list[str], mode: str) -> None:
    pinned = re.search(r"^AXE_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    installed = json.loads(AXE.with_name("package.json").read_text())["version"] if AXE.is_file() else "none"
    assert installed == pinned, f"axe-core {installed} is installed, the Makefile pins {pinned}: {AXE_HINT}"
    found = axe_book(browser, serve(BOOK_HTML), built_pages, mode)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{mode}.json").write_text(json.dumps({"counts": counts_by_rule(found), "pages": found}, indent=1))
    problems = failures(found, mode)
    assert not problems, f"{len(problems)} serious or critical axe violations:\n" + "\n".join(problems)


# ---- alt text -------------------------------------------------------------------------------------

def alt_problem(alt: str | None) -> str | None:
    """Why ``alt`` describes nothing, or ``None`` (``cnnbook.display.check_alt_text`` is the one judge)."""
    if alt is None:
        return "no alt attribute"
    try:
        check_alt_text(alt)
    except ValueError:
        return "an alt text that describes nothing (empty, a file name, a path, a hash, or under four words)"
    return None


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def images(page: Path) -> list[dict[str, str | None]]:
    """The attributes of every ``<img>`` of a page's content (its ``<article>``: not the theme's logos)."""
    text = page.read_text(encoding="utf-8", errors="replace")
    start = text.find("<article")
    parser = _Images()
    parser.feed(text[start:text.find("</article>", start)] if start >= 0 else text)
    return parser.images


def test_images_have_alt_text(built_pages: list[str]) -> None:
    problems = []
    for rel in built_pages:
        for img in images(BOOK_HTML / rel):
            why = alt_problem(img.get("alt"))
            if why:
                src = (img.get("src") or "")[:60]
                problems.append(f"{rel}: <img src={src!r}> has {why} ({img.get('alt')!r})")
    assert not problems, f"{len(problems)} images without a descriptive alt text:\n" + "\n".join(problems)


# ---- counting by hand -----------------------------------------------------------------------------

def main(html_root: str) -> int:
    """Print axe's counts by rule, in both modes, for the book built into ``html_root``."""
    from playwright.sync_api import sync_playwright

    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, start_server

    root = Path(html_root)
    pages = book_pages(root)
    base, server = start_server(root)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for mode in MODES:
            found = axe_book(chromium, base, pages, mode)
            serious = len(failures(found, mode))
            print(f"{mode}: {len(pages)} pages, {serious} serious or critical failing elements")
            for rule, n in counts_by_rule(found).items():
                print(f"  {rule}: {n}")
            for line in failures(found, mode):
                print("   ", line[:240])
        chromium.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(BOOK_HTML)))
