"""What the browser tests share: Debian's Chromium through Playwright, a static server on 127.0.0.1,
the pages of the built book, and the theme's light and dark modes.

Imported by ``test_widgets_browser.py``, ``test_accessibility.py`` and ``test_pdf.py`` (the fixtures
``browser`` and ``serve`` are used by importing them into the test module).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The built book; CNNBOOK_HTML points the tests at another build (e.g. one of scripts/build_pages.py).
BOOK_HTML = Path(os.environ.get("CNNBOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = Path(os.environ.get("CNNBOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
INSTALL_HINT = "Install Debian's Chromium as root: apt-get update && apt-get install -y chromium"
NOT_BUILT = "the book is not built (_build/html/index.html is missing): run make book first"
# Folders of the HTML build that hold no page of the book (assets, highlighted sources, raw sources).
NOT_PAGES = {"_static", "_sources", "_images", "_modules"}
MODES = ("light", "dark")
# Playwright waits 30 s by default; a page of the book on a loaded 2-core runner can take longer.
LOAD_TIMEOUT_MS = 180_000
# axe-core, installed from npm by the Makefile's axe target (make test depends on it).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found. {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_server(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    """A static server of ``folder`` on 127.0.0.1, in a daemon thread: its base URL and the server."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


@pytest.fixture(scope="module")
def serve() -> Iterator[Any]:
    """``serve(folder) -> base URL``: a static server on 127.0.0.1, one per folder."""
    servers = []

    def start(folder: Path) -> str:
        url, server = start_server(folder)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def book_pages(html_root: Path = BOOK_HTML) -> list[str]:
    """Every page of a built book, as paths relative to ``html_root`` (``book/05_vgg.html``, ``genindex.html``).

    Redirects (the root ``index.html`` that Jupyter Book writes to send readers to the landing page) are
    not pages.
    """
    return sorted(
        p.relative_to(html_root).as_posix() for p in html_root.rglob("*.html")
        if not NOT_PAGES & set(p.relative_to(html_root).parts) and not _is_redirect(p)
    )


def _is_redirect(page: Path) -> bool:
    head = page.read_text(encoding="utf-8", errors="replace")[:300].lower()
    return 'http-equiv="refresh"' in head and "<body" not in head


def offline_context(browser: Any, mode: str = "light", **options: Any) -> Any:
    """A browser context that reaches only 127.0.0.1 and opens every page in the theme's ``mode``.

    The theme (pydata-sphinx-theme) reads the reader's choice from ``localStorage`` ("mode" and
    "theme") before it paints, and writes it to ``<html data-mode data-theme>``; setting it there is
    what its light/dark toggle does.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, **options)
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    context.add_init_script(f'localStorage.setItem("mode", "{mode}"); localStorage.setItem("theme", "{mode}");')
    context.route("**/*", _local_only)
    return context


def _local_only(route: Any) -> None:
    url = route.request.url
    if url.startswith(("data:", "blob:", "http://127.0.0.1")):
        route.continue_()
    else:
        route.abort()
