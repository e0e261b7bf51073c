"""The teaching widgets without a screen: tables equal the calculators, live views follow their controls.

The static widgets ship a table of every display their controls can take; these tests recompute each
entry with :mod:`cnnbook.calc` and compare. The live ipywidgets views are driven by setting ``.value``.
The browser tests (test_widgets_browser.py) check the same numbers on the page.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import cnnbook
import cnnbook.widgets as widgets
from cnnbook.calc.costs import (
    depthwise_conv_cost,
    inception_branch_costs,
    pointwise_conv_cost,
    separable_conv_cost,
    separable_ratio,
    standard_conv_cost,
)
from cnnbook.calc.pooling import coverage, overlap, pool1d, pool2d, pool_windows
from cnnbook.calc.receptive_field import input_region, receptive_fields
from cnnbook.widgets._base import Control, display_mode, fmt_value, state_key
from cnnbook.widgets.cost_ratio import FIELDS, INCEPTION_GRID, SEPARABLE_GRID
from cnnbook.widgets.pooling import LECTURE_SIGNAL, SMALL_IMAGE
from cnnbook.widgets.receptive_field import COLUMNS, default_networks, network_rows, row_cells, unit_positions
from cnnbook.widgets.static import json_for_script, static_html

SMALL_RF = ["lenet5", "alexnet", "resnet18"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _static_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CNNBOOK_WIDGETS", "JPY_SESSION_NAME", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)


def _out(html: str, name: str) -> str:
    match = re.search(rf'data-out="{name}">([^<]*)<', html)
    assert match, f"no data-out={name} in the view"
    return match.group(1)


# ---- pooling ----------------------------------------------------------------------------------------


def test_lecture_example() -> None:
    widget = widgets.pooling_overlap()
    entry = widget.payload()["table"][state_key(3, 2, "max", "ceil")]
    assert " ".join(entry["output"]) == "5 5 6 3 3 4 0"
    assert entry["overlap"] == 1
    assert " ".join(widget.payload()["table"][state_key(2, 2, "max", "ceil")]["output"]) == "0 5 6 0 3 4 0"
    assert _out(widget.live().cnnbook_view.value, "output1d") == "5 5 6 3 3 4 0"


def test_pooling_table_equals_calculators() -> None:
    payload = widgets.pooling_overlap().payload()
    table = payload["table"]
    assert payload["signal"] == [fmt_value(v) for v in LECTURE_SIGNAL]
    assert len(table) == 6 * 6 * 2 * 2
    image = np.array(SMALL_IMAGE, dtype=float)
    for z in range(1, 7):
        for s in range(1, 7):
            for mode in ("max", "avg"):
                for last in ("ceil", "floor"):
                    ceil = last == "ceil"
                    entry = table[state_key(z, s, mode, last)]
                    n = len(LECTURE_SIGNAL)
                    assert entry["windows"] == [list(w) for w in pool_windows(n, z, s, ceil)]
                    assert entry["coverage"] == coverage(n, z, s, ceil)
                    assert entry["overlap"] == overlap(z, s)
                    assert entry["output"] == [fmt_value(v) for v in pool1d(LECTURE_SIGNAL, z, s, mode, ceil)]
                    assert entry["rows2d"] == [list(w) for w in pool_windows(8, z, s, ceil)]
                    assert entry["cols2d"] == entry["rows2d"]
                    expected = pool2d(image, z, s, mode, ceil)
                    assert entry["output2d"] == [[fmt_value(v) for v in row] for row in expected]
                    # Bars drawn in one lane never overlap.
                    for lane in set(entry["lanes"]):
                        spans = [w for w, l_ in zip(entry["windows"], entry["lanes"]) if l_ == lane]
                        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_pooling_live_view_follows_its_controls() -> None:
    box = widgets.pooling_overlap().live()
    controls, view = box.cnnbook_controls, box.cnnbook_view
    for z, s, mode in [(2, 2, "max"), (3, 1, "avg"), (1, 3, "max"), (6, 6, "avg")]:
        controls["window"].value = z
        controls["stride"].value = s
        controls["mode"].value = mode
        expected = " ".join(fmt_value(v) for v in pool1d(LECTURE_SIGNAL, z, s, mode))
        assert _out(view.value, "output1d") == expected
        assert _out(view.value, "overlap") == str(overlap(z, s))
    controls["last"].value = "floor"
    assert _out(view.value, "output1d") == " ".join(fmt_value(v) for v in pool1d(LECTURE_SIGNAL, 6, 6, "avg", ceil_mode=False))


def test_pooling_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        widgets.pooling_overlap(window=7)
    with pytest.raises(ValueError, match="mode"):
        widgets.pooling_overlap(mode="min")
    short = widgets.pooling_overlap(window=2, stride=1, signal=[1, 2, 3, 4])
    assert short.sizes == (1, 2, 3, 4)


# ---- cost ratios ------------------------------------------------------------------------------------


def test_separable_table_equals_calculators() -> None:
    panel = next(p for p in widgets.cost_ratios().payload()["panels"] if p["name"] == "separable")
    table, fields = panel["table"], panel["fields"]
    assert fields == list(FIELDS["separable"])
    assert len(table) == np.prod([len(v) for v in SEPARABLE_GRID.values()])
    for k in SEPARABLE_GRID["k"]:
        for m in SEPARABLE_GRID["c_in"]:
            for n in SEPARABLE_GRID["c_out"]:
                for d in SEPARABLE_GRID["size"]:
                    entry = dict(zip(fields, table[state_key(k, m, n, d)]))
                    standard = standard_conv_cost(k, m, n, d, d)
                    separable = separable_conv_cost(k, m, n, d, d)
                    assert entry["standard"] == [standard.params, standard.mult_adds]
                    assert entry["separable"] == [separable.params, separable.mult_adds]
                    dw, pw = depthwise_conv_cost(k, m, d, d), pointwise_conv_cost(m, n, d, d)
                    assert entry["depthwise"] == [dw.params, dw.mult_adds]
                    assert entry["pointwise"] == [pw.params, pw.mult_adds]
                    ratio_params, ratio_mult_adds = separable.ratio_to(standard)
                    assert float(entry["ratio_params"]) == pytest.approx(ratio_params, abs=1e-4)
                    assert float(entry["ratio_mult_adds"]) == pytest.approx(ratio_mult_adds, abs=1e-4)
                    assert float(entry["formula"]) == pytest.approx(separable_ratio(k, n), abs=1e-4)
                    # Without biases the counted ratio is the closed form.
                    assert entry["formula"] == entry["ratio_mult_adds"]


def test_inception_table_equals_calculators() -> None:
    panel = next(p for p in widgets.cost_ratios().payload()["panels"] if p["name"] == "inception")
    table, fields = panel["table"], panel["fields"]
    keys = list(INCEPTION_GRID)
    assert len(table) == np.prod([len(v) for v in INCEPTION_GRID.values()])
    for key, values in table.items():
        v = dict(zip(keys, map(int, key.split("|"))))
        entry = dict(zip(fields, values))
        d = v["size"]
        plain = standard_conv_cost(v["k"], v["c_in"], v["c_out"], d, d)
        reduce = pointwise_conv_cost(v["c_in"], v["reduce"], d, d)
        conv = standard_conv_cost(v["k"], v["reduce"], v["c_out"], d, d)
        (reduced,) = inception_branch_costs(v["c_in"], d, d, [[(1, v["reduce"]), (v["k"], v["c_out"])]])
        assert reduced == reduce + conv
        assert entry["plain"] == [plain.params, plain.mult_adds]
        assert entry["reduce"] == [reduce.params, reduce.mult_adds]
        assert entry["conv"] == [conv.params, conv.mult_adds]
        assert entry["reduced"] == [reduced.params, reduced.mult_adds]
        assert float(entry["ratio_mult_adds"]) == pytest.approx(reduced.mult_adds / plain.mult_adds, abs=1e-4)


def test_googlenet_3a_5x5_branch_is_the_default() -> None:
    # GoogLeNet's block 3a: 192 channels reduced to 16 before 32 5x5 filters, at 28x28.
    state = widgets.cost_ratios("inception").state("inception", k=5, c_in=192, reduce=16, c_out=32, size=28)
    assert state["plain"] == [5 * 5 * 192 * 32, 5 * 5 * 192 * 32 * 28 * 28]
    assert state["reduced"][0] == 192 * 16 + 5 * 5 * 16 * 32


def test_cost_live_view_follows_its_controls() -> None:
    box = widgets.cost_ratios().live()
    separable = box.cnnbook_panels["separable"]
    controls, view = separable.cnnbook_controls, separable.cnnbook_view
    for k, n in [(5, 64), (7, 512), (1, 16)]:
        controls["k"].value = k
        controls["c_out"].value = n
        assert float(_out(view.value, "formula")) == pytest.approx(separable_ratio(k, n), abs=1e-4)
        m, d = controls["c_in"].value, controls["size"].value
        cost = standard_conv_cost(k, m, n, d, d)
        assert _out(view.value, "standard-mult_adds") == f"{cost.mult_adds:,}"
    inception = box.cnnbook_panels["inception"]
    inception.cnnbook_controls["reduce"].value = 64
    cost = pointwise_conv_cost(192, 64, 28, 28)
    assert _out(inception.cnnbook_view.value, "reduce-params") == f"{cost.params:,}"


def test_cost_arguments_are_checked() -> None:
    assert [p["name"] for p in widgets.cost_ratios("separable").payload()["panels"]] == ["separable"]
    with pytest.raises(ValueError, match="show"):
        widgets.cost_ratios("both panels")
    with pytest.raises(ValueError, match="c_in"):
        widgets.cost_ratios(separable={"c_in": 100})


# ---- receptive fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_RF + ["googlenet", "mobilenet_v2"])
def test_meta_device_rows_equal_cpu_rows(name: str) -> None:
    """The widget traces networks built on the meta device; that gives the calculator's CPU answer."""
    assert list(network_rows(name)) == receptive_fields(name)


def test_rf_payload_equals_calculators() -> None:
    widget = widgets.receptive_field("alexnet", networks=SMALL_RF)
    payload = widget.payload()
    assert [n["name"] for n in payload["networks"]] == SMALL_RF
    assert payload["network"] == SMALL_RF.index("alexnet")
    assert payload["image"].startswith("data:image/jpeg;base64,")
    for net in payload["networks"]:
        rows = receptive_fields(net["name"])
        hw = cnnbook.get_model_info(net["name"]).input_size[1:]
        assert net["input"] == list(hw)
        assert net["columns"] == list(COLUMNS)
        assert net["rows"] == [row_cells(r) for r in rows]
        for row, units in zip(rows, net["units"]):
            assert [u[0] for u in units["ys"]] == unit_positions(row.out_hw[0])
            assert [u[0] for u in units["xs"]] == unit_positions(row.out_hw[1])
            # The region of every pair of sampled units is the rows of one and the columns of the other.
            for y, y0, y1 in units["ys"]:
                for x, x0, x1 in units["xs"]:
                    assert tuple(input_region(row, y, x, hw)) == (y0, y1, x0, x1)


def test_rf_default_layer_and_layer_argument() -> None:
    widget = widgets.receptive_field("alexnet", networks=SMALL_RF)
    rows = network_rows("alexnet")
    assert rows[widget.layer].out_hw[0] > 1  # the last layer that is still a map
    widget = widgets.receptive_field("alexnet", layer="features.0", networks=SMALL_RF)
    assert widget.layer == 1
    with pytest.raises(ValueError, match="layer"):
        widgets.receptive_field("alexnet", layer="no.such.layer", networks=SMALL_RF)
    with pytest.raises(ValueError, match="Unknown model"):
        widgets.receptive_field("alexnett", networks=SMALL_RF)


def test_unit_positions() -> None:
    assert unit_positions(1) == [0]
    assert unit_positions(3) == [0, 1, 2]
    assert unit_positions(55) == [0, 14, 27, 40, 54]
    for n in range(1, 300):
        positions = unit_positions(n)
        assert positions[0] == 0 and positions[-1] == n - 1 and (n - 1) // 2 in positions
        assert len(positions) <= 6


def test_default_networks_cover_every_classifier() -> None:
    """Every registered classifier is offered, or its table equals one that is (and its label says so)."""
    widget = widgets.receptive_field("vgg16")
    names = widget.networks
    assert names == default_networks()
    labels = " ".join(widget.label(n) for n in names)
    for name in cnnbook.list_models(task="classification"):
        assert name in names or re.search(rf"[=,] {re.escape(name)}\b", labels), name
    chapters = [cnnbook.get_model_info(n).chapter for n in names]
    assert chapters == sorted(chapters)
    assert len(json_for_script(widget.payload())) < 400_000  # the page stays light


def test_rf_live_view_follows_its_controls() -> None:
    box = widgets.receptive_field("alexnet", networks=SMALL_RF).live()
    controls, view = box.cnnbook_controls, box.cnnbook_view
    controls["network"].value = "lenet5"
    rows = network_rows("lenet5")
    assert list(controls["layer"].options) == [(r.name, i) for i, r in enumerate(rows)]
    for i, row in enumerate(rows):
        controls["layer"].value = i
        assert _out(view.value, "layer") == row.name
        assert _out(view.value, "size") == row_cells(row)[COLUMNS.index("size")]
        assert list(controls["unit_y"].options) == unit_positions(row.out_hw[0])
    controls["unit_y"].value = 0
    controls["unit_x"].value = rows[-1].out_hw[1] - 1
    y0, y1, x0, x1 = input_region(rows[-1], 0, rows[-1].out_hw[1] - 1, (32, 32))
    assert _out(view.value, "region") == f"{y0} to {y1 - 1}, columns {x0} to {x1 - 1}"


# ---- display: live or static ------------------------------------------------------------------------


def test_display_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert display_mode() == "static"  # no kernel here
    monkeypatch.setenv("CNNBOOK_WIDGETS", "live")
    assert display_mode() == "live"
    monkeypatch.setenv("CNNBOOK_WIDGETS", "static")
    assert display_mode() == "static"
    monkeypatch.setenv("CNNBOOK_WIDGETS", "maybe")
    with pytest.raises(ValueError, match="CNNBOOK_WIDGETS"):
        display_mode()


def test_mimebundles(monkeypatch: pytest.MonkeyPatch) -> None:
    widget = widgets.pooling_overlap()
    static = widget._repr_mimebundle_()
    assert set(static) == {"text/plain", "text/html", "image/png"}
    assert base64.b64decode(static["image/png"]).startswith(b"\x89PNG")
    assert 'data-widget="pooling"' in static["text/html"]
    monkeypatch.setenv("CNNBOOK_WIDGETS", "live")
    live = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in live and "text/html" not in live


@pytest.mark.parametrize("make", [widgets.pooling_overlap, widgets.cost_ratios])
def test_static_html_is_self_contained(make) -> None:
    html = static_html(make())
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # the SVG namespace is a name, not a request
    assert html.count("<script") == 2 and "cnnbookWidgets.mount" in html
    data = re.search(r'<script type="application/json" class="cnnbook-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data
    assert json.loads(data)["widget"] in ("pooling", "cost")
    assert 'class="cnnbook-print-figure"' in html and "@media print" in html


def test_json_for_script_escapes_markup() -> None:
    text = json_for_script({"a": "</script><!-- & >"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & >"}


def test_controls_are_checked() -> None:
    with pytest.raises(ValueError, match="initial value"):
        Control("k", "kernel", (1, 3), 5)
    with pytest.raises(TypeError):
        Control("k", "kernel", (1.5, 3.0), 1.5)
    with pytest.raises(ValueError, match="labels"):
        Control("k", "kernel", (1, 3), 1, labels=("one",))
    assert Control("k", "kernel", (1, 3), 3).as_json()["index"] == 1


def test_print_figures() -> None:
    for widget in (widgets.pooling_overlap(), widgets.cost_ratios(), widgets.receptive_field("lenet5", networks=["lenet5"])):
        png = widget.to_png()
        assert png.startswith(b"\x89PNG") and len(png) < 250_000


def test_book_config_loads_the_widget_extension() -> None:
    """The real book loads the widgets' Sphinx extension (static widgets, no console errors)."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    extensions = (config.get("sphinx") or {}).get("extra_extensions") or []
    assert "cnnbook.widgets.sphinx_ext" in extensions, (
        "add cnnbook.widgets.sphinx_ext to sphinx.extra_extensions in _config.yml"
    )


def test_sphinx_extension_dedupes_inline_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    from sphinx.builders.html._assets import _JavaScript

    from cnnbook.widgets import sphinx_ext

    body = "const THEBE_JS_URL = 1"
    context = {"script_files": [_JavaScript(None, body=body), _JavaScript("a.js"), _JavaScript("", body=body)]}
    sphinx_ext._dedupe_scripts(None, "page", "page.html", context, None)
    assert [os.fspath(js.filename or "") for js in context["script_files"]] == ["", "a.js"]

    class App:
        def __init__(self) -> None:
            self.connected: list[str] = []

        def connect(self, event: str, handler: object, priority: int = 500) -> None:
            self.connected.append(event)

    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != "CNNBOOK_WIDGETS"})
    app = App()
    sphinx_ext.setup(app)
    assert os.environ["CNNBOOK_WIDGETS"] == "static"
    assert set(app.connected) == {"config-inited", "html-page-context"}


def test_display_mode_detects_a_widget_frontend(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnbook.widgets import _base

    monkeypatch.setattr(_base, "_kernel_shell", lambda: object())  # as inside a kernel
    assert display_mode() == "static"  # nbclient, nbconvert: no frontend
    monkeypatch.setenv("JPY_SESSION_NAME", "chapter.ipynb")  # a kernel started by Jupyter Server
    assert display_mode() == "live"
    monkeypatch.setenv("CNNBOOK_WIDGETS", "static")  # the book build's override wins
    assert display_mode() == "static"


@pytest.mark.slow
@pytest.mark.parametrize("session", [None, "chapter.ipynb"])
def test_in_a_real_kernel(monkeypatch: pytest.MonkeyPatch, session: str | None) -> None:
    """A kernel run by nbclient (the book build) shows the static widget; one started by Jupyter Server
    (``JPY_SESSION_NAME`` set, as JupyterLab does) shows ipywidgets."""
    import nbformat
    from nbclient import NotebookClient

    if session is not None:
        monkeypatch.setenv("JPY_SESSION_NAME", session)
    code = "import cnnbook.widgets\ncnnbook.widgets.pooling_overlap()"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    (output,) = nb.cells[0].outputs
    if session is None:
        assert {"text/html", "image/png"} <= set(output["data"])
        assert "application/vnd.jupyter.widget-view+json" not in output["data"]
        assert "widgets" not in nb.metadata  # no ipywidgets state, so no widget manager from a CDN
    else:
        assert "application/vnd.jupyter.widget-view+json" in output["data"]
        assert "text/html" not in output["data"]
