"""The static widgets in a real browser: build a book, serve it on 127.0.0.1, drive headless Chromium.

A small Jupyter Book with the project's own ``_config.yml`` (one page per widget, two widgets on one
page) is built and executed the way ``make book`` builds the real one, with no Jupyter frontend, so the
widgets take their static path. Pages of the real book (``_build/html``) that hold widgets are checked
too, when that build exists. On every page, for every widget, the test moves each control and checks
that the display shows what the Python calculators give for that setting; it fails on any console
error and on any request to a host other than 127.0.0.1 (such requests are also blocked, so the page
is effectively offline). A screenshot of each page, on screen and in print, goes to
``_build/test-artifacts/widgets/``.

Needs Debian's Chromium: ``apt-get install -y chromium`` (as root). Without it the test fails when the
``CI`` environment variable is set, and is skipped with that command otherwise.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from cnnbook.calc.costs import (
    depthwise_conv_cost,
    inception_branch_costs,
    pointwise_conv_cost,
    separable_conv_cost,
    separable_ratio,
    standard_conv_cost,
)
from cnnbook.calc.pooling import overlap, pool1d, pool2d, pool_windows
from cnnbook.calc.receptive_field import input_region

from browser_helpers import AXE, BOOK_HTML, ROOT, browser, serve  # noqa: F401  (pytest fixtures)

ARTIFACTS = ROOT / "_build" / "test-artifacts" / "widgets"
# The networks of the test book's receptive-field page (the real book offers every classifier).
RF_NETWORKS = ["lenet5", "alexnet", "vgg11", "googlenet", "resnet18", "mobilenet_v2"]
EXTENSION = "cnnbook.widgets.sphinx_ext"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FOREIGN_ASSET = re.compile(r"<(script|img|iframe)[^>]+src=\"(https?:)?//|<link[^>]+href=\"(https?:)?//", re.I)

PAGE_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""
PAGES = {
    "pooling": (
        "Pooling overlap",
        ["import cnnbook.widgets\ncnnbook.widgets.pooling_overlap()", "cnnbook.widgets.pooling_overlap(window=2, stride=2, mode='avg')"],
    ),
    "receptive_field": (
        "Receptive fields",
        [f"import cnnbook.widgets\ncnnbook.widgets.receptive_field('alexnet', networks={RF_NETWORKS!r})"],
    ),
    "cost_ratios": ("Cost ratios", ["import cnnbook.widgets\ncnnbook.widgets.cost_ratios()"]),
}


# ---- the books --------------------------------------------------------------------------------------


def _build_env() -> dict[str, str]:
    """The environment of ``make book``: no Jupyter frontend, the venv's tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "VSCODE_PID", "CNNBOOK_WIDGETS")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_test_book(folder: Path) -> None:
    """A book with the project's configuration and one page per widget."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = "cnnbook widgets (browser test)"
    config.setdefault("execute", {})["execute_notebooks"] = "force"
    # The widgets' Sphinx extension (test_widgets_logic checks that the real book loads it).
    extensions = config.setdefault("sphinx", {}).setdefault("extra_extensions", [])
    if EXTENSION not in extensions:
        extensions.append(EXTENSION)
    for bib in config.get("bibtex_bibfiles", []):
        (folder / bib).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / bib, folder / bib)
    # The book's own style and script overrides (accessibility), where _config.yml finds them.
    for static in config.get("sphinx", {}).get("config", {}).get("html_static_path", []):
        shutil.copytree(ROOT / static, folder / static)
    (folder / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    toc = {"format": "jb-book", "root": "index", "chapters": [{"file": name} for name in PAGES]}
    (folder / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (folder / "index.md").write_text("# Widgets\n\n```{tableofcontents}\n```\n")
    for name, (title, cells) in PAGES.items():
        body = "\n".join(f"```{{code-cell}} ipython3\n{cell}\n```\n" for cell in cells)
        (folder / f"{name}.md").write_text(f"{PAGE_HEADER}\n# {title}\n\n{body}")


@pytest.fixture(scope="module")
def test_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("widget_book")
    write_test_book(folder)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(folder), "--builder", "html", "-W", "-n", "--keep-going"],
        env=_build_env(), capture_output=True, text=True, timeout=1500,
    )
    assert result.returncode == 0, f"jupyter-book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return folder / "_build" / "html"


def _widget_pages(html_root: Path) -> list[Path]:
    # Real widgets are <div class="cnnbook-widget" ...> elements; the highlighted source pages of
    # sphinx.ext.viewcode (_modules/) only quote that markup as escaped text.
    skip = {"_static", "_modules", "_sources"}
    return sorted(
        p for p in html_root.rglob("*.html")
        if not skip & set(p.parts) and '<div class="cnnbook-widget"' in p.read_text(errors="ignore")
    )


# ---- one page ---------------------------------------------------------------------------------------


class PageCheck:
    """Loads a page, blocks and records requests to other hosts, records console errors."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 1000})
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(url, wait_until="load")
        self.page.wait_for_selector(".cnnbook-widget[data-ready='1']", timeout=20_000)

    def _route(self, route: Any) -> None:
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


# Moves controls the way a reader's slider or drop-down does (sets it, fires "input" and "change"), then
# reads every displayed number (the elements marked data-out). One call runs a whole sweep: a list of
# settings, each an ordered list of [key, value] moves, and returns what was shown after each.
_SWEEP = """(root, settings) => {
  const read = () => {
    const out = {};
    for (const node of root.querySelectorAll("[data-out]")) {
      if (!(node.dataset.out in out)) { out[node.dataset.out] = node.textContent.trim(); }
    }
    out.__controls = {};
    for (const control of root.querySelectorAll("[data-key]")) {
      const values = JSON.parse(control.getAttribute("data-values"));
      const index = control.tagName === "SELECT" ? control.selectedIndex : Number(control.value);
      out.__controls[control.dataset.key] = values[index];
    }
    return out;
  };
  return settings.map(moves => {
    for (const [key, value] of moves) {
      const control = root.querySelector(`[data-key="${key}"]`);
      const values = JSON.parse(control.getAttribute("data-values")).map(String);
      const index = values.indexOf(String(value));
      if (index < 0) { throw new Error(`${key} cannot take ${value}: ${values}`); }
      if (control.tagName === "SELECT") { control.selectedIndex = index; } else { control.value = String(index); }
      control.dispatchEvent(new Event("input", {bubbles: true}));
      control.dispatchEvent(new Event("change", {bubbles: true}));
    }
    return read();
  });
}"""


def _sweep(root: Any, settings: list[list[tuple[str, Any]]]) -> list[dict[str, Any]]:
    """Apply each setting in turn; what the widget showed after each (see ``_SWEEP``)."""
    return root.evaluate(_SWEEP, [[list(move) for move in moves] for moves in settings])


def _read(root: Any) -> dict[str, Any]:
    return _sweep(root, [[]])[0]


def _move(root: Any, key: str, value: Any) -> None:
    """Move one control with Playwright's user actions: ``fill`` on a slider, ``select_option`` on a drop-down."""
    control = root.locator(f"[data-key='{key}']")
    if control.evaluate("e => e.tagName") == "SELECT":
        control.select_option(str(value))
    else:
        control.fill(str(_values(root, key).index(value)))
    assert _read(root)["__controls"][key] == value


def _values(root: Any, key: str) -> list[Any]:
    return json.loads(root.locator(f"[data-key='{key}']").get_attribute("data-values"))


def _numbers(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))]


def _close(shown: list[float], expected: list[float], tol: float) -> bool:
    return len(shown) == len(expected) and all(abs(a - b) <= tol for a, b in zip(shown, expected))


# ---- the three widgets ------------------------------------------------------------------------------


def check_pooling(root: Any) -> int:
    data = json.loads(root.locator("script.cnnbook-data").text_content())
    signal = [float(v) for v in data["signal"]]
    image = [[float(v) for v in row] for row in data["image"]]
    checked = 0
    for last in _values(root, "last"):
        _move(root, "last", last)
        for mode in _values(root, "mode"):
            _move(root, "mode", mode)
            for z in _values(root, "window"):
                _move(root, "window", z)
                strides = _values(root, "stride")
                for s, shown in zip(strides, _sweep(root, [[("stride", s)] for s in strides])):
                    setting = f"z={z} s={s} {mode} {last}"
                    ceil = last == "ceil"
                    expected = pool1d(signal, z, s, mode, ceil)
                    assert _close(_numbers(shown["output1d"]), expected, 0.006), f"{setting}: 1D output {shown} != {expected}"
                    grid = pool2d(image, z, s, mode, ceil)
                    assert _close(_numbers(shown["output2d"]), list(grid.flatten()), 0.006), f"{setting}: 2D output"
                    assert int(shown["overlap"]) == overlap(z, s), setting
                    checked += 1
    # Which inputs each output sees: point at the last window bar (1D) and click the last output cell (2D).
    z, s = 3, 2
    _sweep(root, [[("last", "ceil"), ("window", z), ("stride", s)]])
    windows = pool_windows(len(signal), z, s, True)
    root.locator("rect.cnnbook-bar").nth(len(windows) - 1).hover()
    start, end = windows[-1]
    assert _numbers(_read(root)["window1d"]) == [start, end - 1]
    rows, cols = pool_windows(len(image), z, s, True), pool_windows(len(image[0]), z, s, True)
    root.locator(f"rect[data-cell='{len(rows) - 1},{len(cols) - 1}']").click()
    (r0, r1), (c0, c1) = rows[-1], cols[-1]
    assert _numbers(_read(root)["window2d"]) == [r0, r1 - 1, c0, c1 - 1]
    # The lecture's example, reached with the keyboard: window 2 -> 3.
    if signal == [0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0]:
        _sweep(root, [[("mode", "max"), ("window", 2)]])
        root.locator("[data-key='window']").press("ArrowRight")
        assert _read(root)["output1d"] == "5 5 6 3 3 4 0"
    return checked


def check_receptive_field(root: Any) -> int:
    from cnnbook.registry import get_model_info
    from cnnbook.widgets.receptive_field import COLUMNS, network_rows, row_cells

    checked = 0
    for name in _values(root, "network"):
        _move(root, "network", name)
        rows = network_rows(name)
        hw = get_model_info(name).input_size[1:]
        _move(root, "layer", 0)
        for index, row in enumerate(rows):
            cells = dict(zip(COLUMNS, row_cells(row)))
            shown = _sweep(root, [[("layer", index)]])[0]
            assert shown["layer"] == row.name
            for field in ("size", "jump", "start"):
                assert shown[field] == cells[field], f"{name} {row.name}: {field}"
            assert root.locator(f"tr[data-layer='{index}'] td").all_text_contents() == row_cells(row)
            # Every sampled unit: each row position down the first column, each column along the last row.
            ys, xs = _values(root, "unit_y"), _values(root, "unit_x")
            units = [(uy, xs[0]) for uy in ys] + [(ys[-1], ux) for ux in xs]
            for (uy, ux), shown in zip(units, _sweep(root, [[("unit_y", uy), ("unit_x", ux)] for uy, ux in units])):
                y0, y1, x0, x1 = input_region(row, uy, ux, hw)
                assert _numbers(shown["region"]) == [y0, y1 - 1, x0, x1 - 1], f"{name} {row.name} unit {uy},{ux}"
                checked += 1
            rect = root.locator("[data-out='region-rect']")
            drawn = [float(rect.get_attribute(a)) for a in ("x", "y", "width", "height")]
            assert drawn == [x0, y0, x1 - x0, y1 - y0], f"{name} {row.name}: region drawn"
    return checked


def _expected_cost(panel: str, v: dict[str, int]) -> dict[str, Any]:
    k, d = v["k"], v["size"]
    if panel == "separable":
        standard = standard_conv_cost(k, v["c_in"], v["c_out"], d, d)
        separable = separable_conv_cost(k, v["c_in"], v["c_out"], d, d)
        return {
            "standard": standard, "separable": separable,
            "depthwise": depthwise_conv_cost(k, v["c_in"], d, d), "pointwise": pointwise_conv_cost(v["c_in"], v["c_out"], d, d),
            "ratio": separable.ratio_to(standard), "formula": separable_ratio(k, v["c_out"]),
        }
    plain, reduce, reduced = inception_branch_costs(
        v["c_in"], d, d, [[(k, v["c_out"])], [(1, v["reduce"])], [(1, v["reduce"]), (k, v["c_out"])]]
    )
    return {
        "plain": plain, "reduce": reduce, "reduced": reduced, "conv": standard_conv_cost(k, v["reduce"], v["c_out"], d, d),
        "ratio": reduced.ratio_to(plain),
    }


def _check_cost_setting(panel: str, shown: dict[str, Any]) -> None:
    v = shown["__controls"]
    expected = _expected_cost(panel, v)
    for name, cost in expected.items():
        if name in ("ratio", "formula"):
            continue
        assert _numbers(shown[f"{name}-params"]) == [cost.params], f"{panel} {v}: {name} parameters"
        assert _numbers(shown[f"{name}-mult_adds"]) == [cost.mult_adds], f"{panel} {v}: {name} mult-adds"
    ratio_params, ratio_mult_adds = expected["ratio"]
    assert abs(float(shown["ratio_params"]) - ratio_params) <= 1e-4, f"{panel} {v}: ratio of parameters"
    assert abs(float(shown["ratio_mult_adds"]) - ratio_mult_adds) <= 1e-4, f"{panel} {v}: ratio of mult-adds"
    if "formula" in expected:
        assert abs(float(shown["formula"]) - expected["formula"]) <= 1e-4, f"{panel} {v}: 1/N + 1/K^2"


def check_cost(root: Any) -> int:
    checked = 0
    rng = random.Random(0)
    panels = root.locator(".cnnbook-panel")
    for i in range(panels.count()):
        panel_root = panels.nth(i)
        panel = panel_root.get_attribute("data-panel")
        keys = [c.get_attribute("data-key") for c in panel_root.locator("[data-key]").all()]
        grid = {key: _values(panel_root, key) for key in keys}
        _check_cost_setting(panel, _read(panel_root))
        for key in keys:  # each slider through all its values, the others where they are
            _move(panel_root, key, grid[key][-1])
            _check_cost_setting(panel, _read(panel_root))
            for shown in _sweep(panel_root, [[(key, value)] for value in grid[key]]):
                _check_cost_setting(panel, shown)
                checked += 1
        # every combination of K and N (the two that set 1/N + 1/K^2), then random settings
        if {"k", "c_out"} <= set(keys):
            combos = [[("k", k), ("c_out", n)] for k in grid["k"] for n in grid["c_out"]]
            for shown in _sweep(panel_root, combos):
                _check_cost_setting(panel, shown)
                checked += 1
        settings = [[(key, rng.choice(grid[key])) for key in keys] for _ in range(40)]
        for shown in _sweep(panel_root, settings):
            _check_cost_setting(panel, shown)
            checked += 1
    return checked


CHECKS = {"pooling": check_pooling, "rf": check_receptive_field, "cost": check_cost}


# ---- the keyboard alone, and both colour modes ------------------------------------------------------

# What has the keyboard focus inside a widget: ``null`` once the focus has left the widget, ``{}`` on an
# element that is not a control, else the control's key, id, position, last position and label.
_FOCUSED = """root => {
  const a = document.activeElement;
  if (!root.contains(a)) { return null; }
  if (!a.dataset.key) { return {}; }
  const select = a.tagName === "SELECT";
  const label = a.labels && a.labels.length ? a.labels[0] : null;
  return {key: a.dataset.key, id: a.id, select: select, index: select ? a.selectedIndex : Number(a.value),
          last: select ? a.options.length - 1 : Number(a.max),
          label: label ? label.innerText.trim() : "", labelShown: !!label && label.offsetParent !== null};
}"""


def check_keyboard(page: Any, root: Any) -> int:
    """Tab through a widget from its title and move every control with one arrow key; each move must
    change the control and the sentence of its ``role="status"`` (aria-live) region. Returns the
    number of controls driven."""
    ids = set(root.locator("[data-key]").evaluate_all("nodes => nodes.map(n => n.id)"))
    root.evaluate("r => { const t = r.querySelector('.cnnbook-title'); t.tabIndex = -1; t.focus(); }")
    driven: set[str] = set()
    for _ in range(300):  # the pooling widget's outputs are focusable too
        page.keyboard.press("Tab")
        focused = root.evaluate(_FOCUSED)
        if focused is None:
            break
        if not focused or focused["id"] in driven:
            continue
        name = focused["key"]
        assert focused["label"] and focused["labelShown"], f"control {name!r} has no visible label"
        assert page.evaluate("() => document.activeElement.labels[0].htmlFor") == focused["id"], name
        status = root.locator("[role='status'][aria-live='polite']").evaluate_all("nodes => nodes.map(n => n.textContent)")
        forward = focused["index"] < focused["last"]
        page.keyboard.press(("ArrowDown" if forward else "ArrowUp") if focused["select"] else ("ArrowRight" if forward else "ArrowLeft"))
        moved = root.evaluate(_FOCUSED)
        assert moved and moved["id"] == focused["id"], f"{name}: the arrow key moved the focus away"
        assert moved["index"] == focused["index"] + (1 if forward else -1), f"{name}: the arrow key did not move it"
        now = root.locator("[role='status'][aria-live='polite']").evaluate_all("nodes => nodes.map(n => n.textContent)")
        assert now != status and all(now), f"{name}: the announced result did not change ({status} -> {now})"
        driven.add(focused["id"])
    assert driven == ids, f"controls not reached with Tab: {sorted(ids - driven)}"
    return len(driven)


def set_theme_mode(page: Any, mode: str) -> None:
    """Switch the theme to ``mode`` with its own colour-mode button (it cycles light, dark, system)."""
    button = page.locator(".theme-switch-button:visible").first
    for _ in range(3):
        if page.evaluate("document.documentElement.dataset.theme") == mode:
            return
        button.click()
    raise AssertionError(f"the theme's colour-mode button never reached {mode!r}")


def check_contrast(page: Any, shot: str) -> None:
    """axe's colour-contrast rule on every widget, in the light and the dark mode of the theme."""
    page.add_script_tag(path=str(AXE))
    for mode in ("dark", "light"):
        set_theme_mode(page, mode)
        found = page.evaluate(
            "async () => (await axe.run('.cnnbook-widget', {runOnly: ['color-contrast']})).violations"
            ".flatMap(v => v.nodes.map(n => n.target.join(' ') + ' ' + n.failureSummary))"
        )
        page.screenshot(path=str(ARTIFACTS / f"{shot}-{mode}.png"), full_page=True)
        assert not found, f"{mode} mode: text without enough contrast: {found}"


def check_page(browser: Any, url: str, shot: str) -> dict[str, int]:
    check = PageCheck(browser, url)
    try:
        page = check.page
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        roots = page.locator(".cnnbook-widget")
        counts: dict[str, int] = {}
        for i in range(roots.count()):
            root = roots.nth(i)
            kind = root.get_attribute("data-widget")
            assert root.get_attribute("data-ready") == "1", f"widget {i} ({kind}) did not start"
            assert root.locator(".cnnbook-print-figure").is_hidden(), "the print figure shows on screen"
            counts[f"{kind}#{i}"] = CHECKS[kind](root)
            counts[f"{kind}#{i} keyboard"] = check_keyboard(page, root)
        check_contrast(page, shot)
        page.emulate_media(media="print")
        for i in range(roots.count()):
            assert roots.nth(i).locator(".cnnbook-print-figure").is_visible(), "no figure in print"
            assert roots.nth(i).locator(".cnnbook-interactive").is_hidden(), "controls in print"
        page.screenshot(path=str(ARTIFACTS / f"{shot}-print.png"), full_page=True)
        assert not check.errors, f"console errors on {url}: {check.errors}"
        assert not check.foreign, f"{url} requested other hosts: {check.foreign}"
        return counts
    finally:
        check.close()


# ---- the tests --------------------------------------------------------------------------------------


def test_test_book_has_static_widgets(test_book: Path) -> None:
    pages = {p.stem: p.read_text() for p in _widget_pages(test_book)}
    assert set(pages) == set(PAGES), f"pages with widgets: {sorted(pages)}"
    for name, text in pages.items():
        assert "application/vnd.jupyter.widget" not in text, f"{name}: ipywidgets output in the static book"
        assert not FOREIGN_ASSET.search(text), f"{name}: loads a script or style sheet from another host"
        assert text.count("const THEBE_JS_URL") <= 1, f"{name}: an inline script twice"
        assert text.count('data-widget="') == len(PAGES[name][1]), name


@pytest.mark.parametrize("page", list(PAGES))
def test_widget_page_in_browser(browser: Any, test_book: Path, serve: Any, page: str) -> None:
    base = serve(test_book)
    counts = check_page(browser, f"{base}{page}.html", f"test-book-{page}")
    assert counts and all(n > 0 for n in counts.values()), counts


def test_built_book_widget_pages(browser: Any, serve: Any) -> None:
    """Every page of the real book (``make book``) that holds a widget, if the book has been built."""
    html_root = BOOK_HTML
    pages = _widget_pages(html_root) if html_root.is_dir() else []
    if not pages:
        pytest.skip("_build/html has no page with a widget yet (run make book first)")
    base = serve(html_root)
    for page in pages:
        rel = page.relative_to(html_root).as_posix()
        counts = check_page(browser, base + rel, "book-" + rel.replace("/", "-").removesuffix(".html"))
        assert counts, f"{rel}: no widget checked (stale build? run make book)"
