"""Receptive fields: pick a registered network and a layer, see how far into the image one unit sees.

Araujo, Norris and Sim 2019 (*Computing Receptive Fields of Convolutional Neural Networks*, Distill):
each layer's receptive field is described by its size ``r``, its jump (input pixels between neighbouring
units) and its start (centre of the first unit's field). The widget shows the table of every layer of the
network's main path, from ``cnnbook.calc.receptive_field.receptive_fields``, and draws on an image
the region one unit sees, from ``cnnbook.calc.receptive_field.input_region``.

The networks are built on PyTorch's ``meta`` device (shapes only, no weights, no arithmetic), so that
tracing every registered classifier takes seconds; the tests check that this gives the same rows as a
network built on the CPU.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..calc.receptive_field import RFRow, input_region, receptive_fields
from ..registry import get_meta_model, get_model_info, list_models
from ._base import TeachingWidget, check_choice
from ._live import esc

__all__ = [
    "ReceptiveField",
    "receptive_field",
    "network_rows",
    "unit_positions",
    "layer_units",
    "default_networks",
    "sample_image",
]

UNITS_PER_AXIS = 5  # sampled unit positions per axis (first, last, centre and two between)
IMAGE_SIDE = 224    # the image is shipped once at this size and stretched to each network's input
COLUMNS = ("name", "kind", "kernel", "stride", "padding", "out_hw", "size", "jump", "start")
HEADERS = ("layer", "kind", "k", "s", "p", "output", "r", "jump", "start")


@lru_cache(maxsize=None)
def network_rows(name: str) -> tuple[RFRow, ...]:
    """``receptive_fields`` of a registered network at its native input size (built on ``meta``)."""
    info = get_model_info(name)
    try:
        rows = receptive_fields(get_meta_model(name), info.input_size)
    except (NotImplementedError, RuntimeError):  # an operation without a meta kernel: trace on the CPU
        rows = receptive_fields(name)
    return tuple(rows)


def unit_positions(n: int, count: int = UNITS_PER_AXIS) -> list[int]:
    """Up to ``count`` unit indices out of ``n``, evenly spread, always with the first, centre and last."""
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, min(n, count))} | {(n - 1) // 2})


def layer_units(row: RFRow, input_hw: Sequence[int]) -> dict[str, list[list[int]]]:
    """The input rows ``[y0, y1)`` seen by each sampled output row, and the columns ``[x0, x1)``.

    ``input_region`` treats the axes separately, so the region of unit ``(i, j)`` is the rows of ``i``
    by the columns of ``j``; the tests check that against ``input_region`` for every pair.
    """
    h, w = row.out_hw
    ys, xs = unit_positions(h), unit_positions(w)
    return {
        "ys": [[i, *input_region(row, i, xs[0], input_hw)[:2]] for i in ys],
        "xs": [[j, *input_region(row, ys[0], j, input_hw)[2:]] for j in xs],
    }


def _fmt(value: Any) -> str:
    """A table cell as ``cnnbook.calc.receptive_field.format_rf_table`` prints it."""
    if isinstance(value, tuple):
        return "x".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return "-" if value != value else f"{value:g}"  # NaN: no local field
    return str(value)


def row_cells(row: RFRow) -> list[str]:
    """One table row as displayed, in the order of :data:`COLUMNS`."""
    cells = []
    for column in COLUMNS:
        value = getattr(row, column)
        if column == "out_hw":
            cells.append(f"{row.channels}x{value[0]}x{value[1]}")
        elif column == "size" and row.global_context:
            cells.append(_fmt(value) + "+global")
        else:
            cells.append(_fmt(value))
    return cells


def _signature(rows: Sequence[RFRow]) -> tuple:
    return tuple((r.kind, r.kernel, r.stride, r.padding, r.dilation, r.size, r.jump, r.start, r.out_hw) for r in rows)


def _natural(name: str) -> tuple:
    """Sort key that puts resnet18 before resnet101."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def default_networks() -> list[str]:
    """Every registered classifier, in chapter order, without repeats.

    Networks with equal tables (``vgg16`` and ``vgg16_bn``, a ResNet and its plain or SE variant) appear
    once, under the name torchvision also has, else the shortest; the label of the one kept names the
    others (see ``ReceptiveField.label``).
    """
    names = sorted(list_models(task="classification"), key=_preference)
    kept: dict[tuple, str] = {}
    for name in names:
        try:
            rows = network_rows(name)
        except (NotImplementedError, RuntimeError, ValueError) as error:  # a network the tracer cannot follow
            warnings.warn(f"receptive_field widget: {name} left out ({type(error).__name__}: {error})", stacklevel=2)
            continue
        kept.setdefault(_signature(rows), name)
    return sorted(kept.values(), key=lambda n: (get_model_info(n).chapter, _natural(n)))


def _preference(name: str) -> tuple:
    info = get_model_info(name)
    return (info.torchvision is None, len(name), name)


@lru_cache(maxsize=1)
def sample_image() -> np.ndarray:
    """A photograph shipped with scikit-learn (``china.jpg``), centre-cropped to a square and resized."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    image = load_sample_image("china.jpg")  # 427 x 640 x 3, in scikit-learn's package data (offline)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(square.resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR))


@lru_cache(maxsize=1)
def _image_data_url() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(sample_image()).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _default_layer(rows: Sequence[RFRow]) -> int:
    """The last layer whose output is still a map (more than one unit), else the last."""
    spatial = [i for i, r in enumerate(rows) if r.out_hw[0] * r.out_hw[1] > 1]
    return spatial[-1] if spatial else len(rows) - 1


class ReceptiveField(TeachingWidget):
    """The receptive-field widget; build it with ``receptive_field``."""

    kind = "rf"
    title = "Receptive fields: what one unit of a layer sees"
    alt = "Receptive-field size of each layer, and the input region one unit sees drawn on a photograph."
    dpi = 90

    def __init__(self, network: str | None = None, layer: str | None = None, networks: Sequence[str] | None = None) -> None:
        self.networks = list(networks) if networks is not None else default_networks()
        for name in self.networks:
            info = get_model_info(name)  # ValueError for unknown names
            if info.task != "classification":
                raise ValueError(f"{name!r} is a {info.task} network; the widget shows classifiers.")
        if not self.networks:
            raise ValueError("networks is empty.")
        self.network = network or self.networks[0]
        if self.network not in self.networks:
            get_model_info(self.network)
            self.networks.insert(0, self.network)
        rows = network_rows(self.network)
        names = [r.name for r in rows]
        if layer is not None:
            check_choice(f"layer of {self.network}", layer, names)
        self.layer = names.index(layer) if layer is not None else _default_layer(rows)
        self._same = self._duplicates() if networks is None else {}

    def _duplicates(self) -> dict[str, list[str]]:
        """Registered classifiers left out because their table equals a kept network's."""
        kept = {_signature(network_rows(n)): n for n in self.networks}
        same: dict[str, list[str]] = {}
        for name in sorted(list_models(task="classification")):
            try:
                twin = kept.get(_signature(network_rows(name)))
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # left out by default_networks, with a warning
            if twin is not None and twin != name:
                same.setdefault(twin, []).append(name)
        return same

    def label(self, name: str) -> str:
        info = get_model_info(name)
        twins = self._same.get(name)
        return f"{name} (ch. {info.chapter}, {info.year})" + (f" = {', '.join(twins)}" if twins else "")

    def network_payload(self, name: str) -> dict[str, Any]:
        info = get_model_info(name)
        rows = network_rows(name)
        input_hw = info.input_size[1:]
        return {
            "name": name,
            "label": self.label(name),
            "input": list(input_hw),
            "grey": info.input_size[0] == 1,
            "columns": list(COLUMNS),
            "headers": list(HEADERS),
            "rows": [row_cells(r) for r in rows],
            "units": [layer_units(r, input_hw) for r in rows],
        }

    def payload(self) -> dict[str, Any]:
        return {
            "image": _image_data_url(),
            "network": self.networks.index(self.network),
            "layer": self.layer,
            "networks": [self.network_payload(n) for n in self.networks],
        }

    # ---- live view ------------------------------------------------------------------------------
    def render_html(self, name: str, layer: int, unit_y: int, unit_x: int) -> str:
        """The live view: summary, the image with the region of unit ``(unit_y, unit_x)``, the table."""
        info = get_model_info(name)
        rows = network_rows(name)
        row = rows[layer]
        h, w = info.input_size[1:]
        y0, y1, x0, x1 = input_region(row, unit_y, unit_x, (h, w))
        cells = dict(zip(COLUMNS, row_cells(row)))
        scale = 300 / max(h, w)
        grey = ' class="cnnbook-grey"' if info.input_size[0] == 1 else ""
        svg = (
            f'<svg class="cnnbook-svg" width="{round(w * scale)}" height="{round(h * scale)}" viewBox="0 0 {w} {h}">'
            f'<image href="{_image_data_url()}" x="0" y="0" width="{w}" height="{h}" preserveAspectRatio="none"{grey}/>'
            f'<path class="cnnbook-mask" fill-rule="evenodd" d="M0 0H{w}V{h}H0Z M{x0} {y0}H{x1}V{y1}H{x0}Z"/>'
            f'<rect class="cnnbook-region-edge" x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}"/>'
            f'<rect class="cnnbook-region" x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}"/></svg>'
        )
        body = "".join(
            f'<tr class="{"cnnbook-current" if i == layer else ("cnnbook-after" if i > layer else "")}">'
            + "".join(f"<td>{esc(c)}</td>" for c in row_cells(r))
            + "</tr>"
            for i, r in enumerate(rows)
        )
        table = (
            '<table class="cnnbook-table"><thead><tr>' + "".join(f"<th>{h_}</th>" for h_ in HEADERS)
            + f"</tr></thead><tbody>{body}</tbody></table>"
        )
        return (
            f'<div class="cnnbook-summary"><b data-out="layer">{esc(row.name)}</b> ({row.kind}): receptive field '
            f'<b data-out="size">{cells["size"]}</b> pixels, jump <b data-out="jump">{cells["jump"]}</b>, start '
            f'<b data-out="start">{cells["start"]}</b>; output {cells["out_hw"]}.</div>'
            f'<div class="cnnbook-row"><div>{svg}<div class="cnnbook-summary">unit ({unit_y}, {unit_x}) sees input rows '
            f'<span data-out="region">{y0} to {y1 - 1}, columns {x0} to {x1 - 1}</span> of the {h}x{w} image.</div></div>'
            f'<div class="cnnbook-scroll">{table}</div></div>'
        )

    def live(self) -> Any:
        import ipywidgets as w

        style = {"description_width": "initial"}
        network = w.Dropdown(options=[(self.label(n), n) for n in self.networks], value=self.network,
                             description="network", style=style)
        layer = w.SelectionSlider(options=[("input", 0)], description="layer", style=style)
        unit_y = w.SelectionSlider(options=[0], description="unit row", style=style)
        unit_x = w.SelectionSlider(options=[0], description="unit column", style=style)
        view = w.HTML()
        busy = [False]  # no redraw while the dependent sliders are being refilled

        def redraw() -> None:
            view.value = (
                f"<style>{_css()}</style><div class=\"cnnbook-widget cnnbook-live\">"
                f"{self.render_html(network.value, layer.value, unit_y.value, unit_x.value)}</div>"
            )

        def set_units() -> None:
            row = network_rows(network.value)[layer.value]
            for slider, n in ((unit_y, row.out_hw[0]), (unit_x, row.out_hw[1])):
                positions = unit_positions(n)
                slider.options = positions
                slider.value = positions[(len(positions) - 1) // 2]

        def on_network(_: Any = None, start: int | None = None) -> None:
            busy[0] = True
            rows = network_rows(network.value)
            layer.options = [(r.name, i) for i, r in enumerate(rows)]
            layer.value = start if start is not None else len(rows) - 1
            set_units()
            busy[0] = False
            redraw()

        def on_layer(_: Any) -> None:
            if busy[0]:
                return
            busy[0] = True
            set_units()
            busy[0] = False
            redraw()

        def on_unit(_: Any) -> None:
            if not busy[0]:
                redraw()

        network.observe(on_network, names="value")
        layer.observe(on_layer, names="value")
        unit_y.observe(on_unit, names="value")
        unit_x.observe(on_unit, names="value")
        on_network(start=self.layer)
        box = w.VBox([w.HBox([network, layer], layout=w.Layout(flex_flow="row wrap")),
                      w.HBox([unit_y, unit_x], layout=w.Layout(flex_flow="row wrap")), view])
        box.cnnbook_controls = {"network": network, "layer": layer, "unit_y": unit_y, "unit_x": unit_x}
        box.cnnbook_view = view
        return box

    # ---- print figure ---------------------------------------------------------------------------
    def figure(self) -> Any:
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        info = get_model_info(self.network)
        rows = network_rows(self.network)
        h, w = info.input_size[1:]
        fig = Figure(figsize=(9, 3.8))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
        sizes = [r.size_hw[0] for r in rows]
        ax1.plot(range(len(rows)), sizes, "o-", ms=3)
        ax1.axhline(h, color="grey", lw=0.8, ls="--")
        ax1.text(0, h, f" image {h}px", va="bottom", fontsize=8, color="grey")
        ax1.set_xticks(range(len(rows)))
        ax1.set_xticklabels([r.name for r in rows], rotation=90, fontsize=6)
        ax1.set_ylabel("receptive field size r (pixels)")
        ax1.set_title(f"{self.network}: receptive field after each layer", fontsize=10)
        from PIL import Image

        image = np.asarray(Image.fromarray(sample_image()).quantize(16).convert("RGB"))  # a smaller PNG
        ax2.imshow(image if info.input_size[0] == 3 else image.mean(2), cmap="gray", extent=(0, w, h, 0))
        shown = [i for i in range(1, self.layer + 1) if rows[i].out_hw[0] > 1][-4:]
        if self.layer not in shown:
            shown.append(self.layer)
        for colour, i in enumerate(shown):
            row = rows[i]
            cy, cx = (row.out_hw[0] - 1) // 2, (row.out_hw[1] - 1) // 2
            y0, y1, x0, x1 = input_region(row, cy, cx, (h, w))
            ax2.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2, edgecolor=f"C{colour}", label=row.name))
        ax2.legend(fontsize=7, loc="lower right")
        ax2.set_title("region seen by the centre unit", fontsize=10)
        ax2.axis("off")
        fig.tight_layout()
        return fig


def _css() -> str:
    from .static import asset

    return asset("widgets.css")


def receptive_field(
    network: str | None = None, layer: str | None = None, networks: Sequence[str] | None = None
) -> ReceptiveField:
    """The receptive-field widget (AlexNet, VGG and Inception chapters).

    ``network`` and ``layer`` (a row name of ``cnnbook.calc.receptive_field.receptive_fields``, e.g.
    ``"features.28"``) set the initial choice; by default the last layer whose output is still a map.
    ``networks`` restricts the drop-down (default: every registered classifier, without repeats). The
    reader picks a network, a layer and a unit (five positions per axis: first, centre, last and two
    between), and sees every layer's size, jump and start and the unit's region on a photograph.
    Display the result (last line of a cell).
    """
    return ReceptiveField(network, layer, networks)
