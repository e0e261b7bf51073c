"""Pooling overlap: window ``z`` and stride ``s`` over a 1D signal and a small 2D image.

Krizhevsky, Sutskever, Hinton 2012 (*ImageNet Classification with Deep Convolutional Neural Networks*,
section 3.4) pool with ``z = 3, s = 2``: neighbouring windows share ``z - s = 1`` input. The widget shows
which inputs each output sees (one bar per window, how many windows see each input) and the output; on
the lecture's signal ``0 0 5 0 0 6 0 0 3 0 0 4 0 0`` with ``z = 3, s = 2`` the output is
``5 5 6 3 3 4 0``. Every number comes from :mod:`cnnbook.calc.pooling`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..calc.pooling import coverage, overlap, pool1d, pool2d, pool_windows
from ._base import Control, TeachingWidget, check_choice, fmt_value, state_key
from ._live import cell_font, esc, live_box, svg_text

__all__ = ["LECTURE_SIGNAL", "SMALL_IMAGE", "PoolingOverlap", "pooling_overlap", "pooling_state"]

# The lecture's 1D example (AlexNet's overlapping pooling).
LECTURE_SIGNAL: tuple[int, ...] = (0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0)

# A small 8x8 image with isolated peaks, so that one can follow which window catches which peak.
SMALL_IMAGE: tuple[tuple[int, ...], ...] = (
    (1, 0, 2, 0, 0, 3, 0, 1),
    (0, 7, 0, 1, 0, 0, 2, 0),
    (2, 0, 0, 0, 8, 0, 0, 0),
    (0, 1, 0, 3, 0, 0, 6, 1),
    (0, 0, 9, 0, 0, 1, 0, 0),
    (4, 0, 0, 0, 2, 0, 0, 5),
    (0, 0, 1, 0, 0, 7, 0, 0),
    (1, 3, 0, 0, 4, 0, 1, 0),
)

MAX_WINDOW = 6
MODES = ("max", "avg")
LAST_WINDOW = ("ceil", "floor")  # ceil_mode=True keeps a cut-short last window, False drops it


def _lanes(windows: Sequence[tuple[int, int]]) -> list[int]:
    """Drawing rows for the window bars: each window goes to the first row where it overlaps nothing."""
    ends: list[int] = []
    lanes = []
    for start, end in windows:
        lane = next((i for i, last_end in enumerate(ends) if last_end <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        else:
            ends[lane] = end
        lanes.append(lane)
    return lanes


def pooling_state(
    signal: Sequence[float], image: Sequence[Sequence[float]], window: int, stride: int, mode: str, last: str
) -> dict[str, Any]:
    """What the widget displays for one setting, from :mod:`cnnbook.calc.pooling`.

    ``windows``: the ``[start, end)`` inputs of each output; ``coverage``: how many windows see each
    input; ``output``: the pooled values as shown; ``rows2d`` / ``cols2d`` / ``output2d``: the same for
    the image (the window of output ``(i, j)`` is rows ``rows2d[i]`` by columns ``cols2d[j]``).
    """
    ceil = last == "ceil"
    windows = pool_windows(len(signal), window, stride, ceil)
    img = np.asarray(image, dtype=float)
    return {
        "windows": [list(w) for w in windows],
        "lanes": _lanes(windows),
        "coverage": coverage(len(signal), window, stride, ceil),
        "output": [fmt_value(v) for v in pool1d(signal, window, stride, mode, ceil)],
        "overlap": overlap(window, stride),
        "rows2d": [list(w) for w in pool_windows(img.shape[0], window, stride, ceil)],
        "cols2d": [list(w) for w in pool_windows(img.shape[1], window, stride, ceil)],
        "output2d": [[fmt_value(v) for v in row] for row in pool2d(img, window, stride, mode, ceil)],
    }


class PoolingOverlap(TeachingWidget):
    """The pooling-overlap widget; build it with :func:`pooling_overlap`."""

    kind = "pooling"
    title = "Pooling overlap: window z and stride s"
    alt = "Pooling windows over the lecture's 1D signal and a small 2D image, with the pooled outputs."

    def __init__(
        self,
        signal: Sequence[float] = LECTURE_SIGNAL,
        image: Sequence[Sequence[float]] = SMALL_IMAGE,
        window: int = 3,
        stride: int = 2,
        mode: str = "max",
        last: str = "ceil",
    ) -> None:
        self.signal = [float(v) for v in signal]
        self.image = np.asarray(image, dtype=float)
        if self.image.ndim != 2:
            raise ValueError(f"image must be two-dimensional (H x W); got shape {self.image.shape}.")
        largest = min(MAX_WINDOW, len(self.signal), *self.image.shape)
        self.sizes = tuple(range(1, largest + 1))
        check_choice("window", window, self.sizes)
        check_choice("stride", stride, self.sizes)
        check_choice("mode", mode, MODES)
        check_choice("last", last, LAST_WINDOW)
        self.initial = {"window": window, "stride": stride, "mode": mode, "last": last}

    def controls(self) -> list[Control]:
        i = self.initial
        return [
            Control("window", "window z", self.sizes, i["window"]),
            Control("stride", "stride s", self.sizes, i["stride"]),
            Control("mode", "pooling", MODES, i["mode"], kind="select", labels=("max", "average")),
            Control(
                "last", "last window", LAST_WINDOW, i["last"], kind="select",
                labels=("kept if cut short (ceil_mode=True)", "dropped if cut short (ceil_mode=False)"),
            ),
        ]

    def state(self, window: int, stride: int, mode: str = "max", last: str = "ceil") -> dict[str, Any]:
        return pooling_state(self.signal, self.image, window, stride, mode, last)

    def payload(self) -> dict[str, Any]:
        table = {
            state_key(z, s, m, last): self.state(z, s, m, last)
            for z in self.sizes
            for s in self.sizes
            for m in MODES
            for last in LAST_WINDOW
        }
        return {
            "controls": [c.as_json() for c in self.controls()],
            "signal": [fmt_value(v) for v in self.signal],
            "image": [[fmt_value(v) for v in row] for row in self.image],
            "table": table,
        }

    # ---- live view ------------------------------------------------------------------------------
    def render_html(self, window: int, stride: int, mode: str, last: str) -> str:
        """The live view of one setting: the 1D and 2D diagrams (SVG) and the outputs as text."""
        st = self.state(window, stride, mode, last)
        name = "max" if mode == "max" else "average"
        return (
            f'<div class="cnnbook-summary">z = {window}, s = {stride}: neighbouring windows share '
            f'<b data-out="overlap">{st["overlap"]}</b> input(s) (z &minus; s, or 0).</div>'
            f"{_svg_1d(self.signal, st)}"
            f'<div class="cnnbook-summary">{name} pooling output: '
            f'<b class="cnnbook-mono" data-out="output1d">{" ".join(st["output"])}</b></div>'
            f"{_svg_2d(self.image, st)}"
        )

    def live(self) -> Any:
        return live_box(self.controls(), lambda v: self.render_html(v["window"], v["stride"], v["mode"], v["last"]))

    # ---- print figure ---------------------------------------------------------------------------
    def figure(self) -> Any:
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        i = self.initial
        st = self.state(i["window"], i["stride"], i["mode"], i["last"])
        fig = Figure(figsize=(9, 4.2))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.7, 1]})
        n, lanes = len(self.signal), max(st["lanes"], default=0) + 1
        for x, v in enumerate(self.signal):
            ax1.add_patch(Rectangle((x, 0), 1, 1, fill=False))
            ax1.text(x + 0.5, 0.5, fmt_value(v), ha="center", va="center", fontsize=cell_font(fmt_value(v), 10))
            ax1.text(x + 0.5, -0.25, f"x{st['coverage'][x]}", ha="center", va="center", fontsize=7, color="grey")
        for j, ((a, b), lane) in enumerate(zip(st["windows"], st["lanes"])):
            y = -0.6 - 0.45 * lane
            ax1.plot([a + 0.1, b - 0.1], [y, y], lw=4, color=f"C{j % 10}", solid_capstyle="butt")
            ax1.plot([(a + b) / 2, j + 0.5], [y, -1.2 - 0.45 * lanes], lw=0.6, color=f"C{j % 10}")
        y_out = -2.2 - 0.45 * lanes
        for j, v in enumerate(st["output"]):
            ax1.add_patch(Rectangle((j, y_out), 1, 1, fill=True, facecolor="#fde2c4", edgecolor="black"))
            ax1.text(j + 0.5, y_out + 0.5, v, ha="center", va="center", fontsize=cell_font(v, 10))
        ax1.set_xlim(-0.2, n + 0.2)
        ax1.set_ylim(y_out - 0.3, 1.3)
        ax1.set_aspect("equal")
        ax1.axis("off")
        ax1.set_title(f"1D: z={i['window']}, s={i['stride']}, {i['mode']} pooling -> {' '.join(st['output'])}", fontsize=10)
        _figure_2d(ax2, self.image, st, Rectangle)
        ax2.set_title(f"2D: {self.image.shape[0]}x{self.image.shape[1]} image -> {len(st['rows2d'])}x{len(st['cols2d'])}", fontsize=10)
        return fig


def _figure_2d(ax: Any, image: np.ndarray, st: dict[str, Any], Rectangle: Any) -> None:
    h, w = image.shape
    for r in range(h):
        for c in range(w):
            text = fmt_value(image[r, c])
            ax.text(c + 0.5, h - r - 0.5, text, ha="center", va="center", fontsize=cell_font(text, 8) - (len(text) > 2))
    ax.add_patch(Rectangle((0, 0), w, h, fill=False))
    for (j, style) in ((0, "-"), (1, "--")):
        if j < len(st["cols2d"]):
            (r0, r1), (c0, c1) = st["rows2d"][0], st["cols2d"][j]
            ax.add_patch(Rectangle((c0 + 0.05, h - r1 + 0.05), c1 - c0 - 0.1, r1 - r0 - 0.1, fill=False,
                                   edgecolor=f"C{j}", lw=2, ls=style))
    ox = w + 1
    out = st["output2d"]
    for r, row in enumerate(out):
        for c, v in enumerate(row):
            ax.add_patch(Rectangle((ox + c, h - r - 1), 1, 1, facecolor="#fde2c4", edgecolor="black"))
            ax.text(ox + c + 0.5, h - r - 0.5, v, ha="center", va="center", fontsize=cell_font(v, 8) - (len(v) > 2))
    ax.set_xlim(-0.2, ox + max(len(out[0]), 1) + 0.2)
    ax.set_ylim(-0.2, h + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")


# ---- SVG of the live view (the static front end draws the same picture in assets/widgets.js) -----
CELL = 30
MARGIN = 78


def _svg_1d(signal: Sequence[float], st: dict[str, Any]) -> str:
    n, lanes = len(signal), max(st["lanes"], default=0) + 1
    y_lanes = 84
    y_out = y_lanes + lanes * 14 + 24
    parts = [svg_text(4, 35, "input", anchor="start"), svg_text(4, 62, "seen by", "cnnbook-muted", "start", 10)]
    for x, v in enumerate(signal):
        parts.append(f'<rect class="cnnbook-cell" x="{MARGIN + x * CELL}" y="20" width="{CELL}" height="{CELL}"/>')
        parts.append(svg_text(MARGIN + x * CELL + CELL / 2, 35, fmt_value(v), size=cell_font(fmt_value(v), 12)))
        parts.append(svg_text(MARGIN + x * CELL + CELL / 2, 62, f"x{st['coverage'][x]}", "cnnbook-muted", size=10))
    parts.append(svg_text(4, y_lanes + 5, "windows", anchor="start"))
    for j, ((a, b), lane) in enumerate(zip(st["windows"], st["lanes"])):
        y = y_lanes + lane * 14
        x0, x1 = MARGIN + a * CELL + 3, MARGIN + b * CELL - 3
        parts.append(f'<rect class="cnnbook-bar cnnbook-c{j % 6}" x="{x0}" y="{y}" width="{x1 - x0}" height="9"/>')
        parts.append(
            f'<line class="cnnbook-link cnnbook-c{j % 6}" x1="{(x0 + x1) / 2:g}" y1="{y + 9}" '
            f'x2="{MARGIN + j * CELL + CELL / 2:g}" y2="{y_out}"/>'
        )
    parts.append(svg_text(4, y_out + CELL / 2, "output", anchor="start"))
    for j, v in enumerate(st["output"]):
        parts.append(f'<rect class="cnnbook-cell cnnbook-out" x="{MARGIN + j * CELL}" y="{y_out}" width="{CELL}" height="{CELL}"/>')
        parts.append(svg_text(MARGIN + j * CELL + CELL / 2, y_out + CELL / 2, v, size=cell_font(v, 12)))
    width, height = MARGIN + n * CELL + 4, y_out + CELL + 4
    return f'<svg class="cnnbook-svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'


def _svg_2d(image: np.ndarray, st: dict[str, Any]) -> str:
    cell, h, w = 24, image.shape[0], image.shape[1]
    ox = w * cell + 40
    parts = []
    for r in range(h):
        for c in range(w):
            parts.append(f'<rect class="cnnbook-cell" x="{c * cell}" y="{20 + r * cell}" width="{cell}" height="{cell}"/>')
            text = fmt_value(image[r, c])
            parts.append(svg_text(c * cell + cell / 2, 20 + r * cell + cell / 2, text, size=cell_font(text, 11)))
    for j, cls in ((1, "cnnbook-window cnnbook-next"), (0, "cnnbook-window")):
        if j < len(st["cols2d"]):
            (r0, r1), (c0, c1) = st["rows2d"][0], st["cols2d"][j]
            parts.append(
                f'<rect class="{cls}" x="{c0 * cell + 2}" y="{20 + r0 * cell + 2}" '
                f'width="{(c1 - c0) * cell - 4}" height="{(r1 - r0) * cell - 4}"/>'
            )
    for r, row in enumerate(st["output2d"]):
        for c, v in enumerate(row):
            cls = "cnnbook-cell cnnbook-out" + (" cnnbook-selected" if (r, c) == (0, 0) else "")
            parts.append(f'<rect class="{cls}" x="{ox + c * cell}" y="{20 + r * cell}" width="{cell}" height="{cell}"/>')
            parts.append(svg_text(ox + c * cell + cell / 2, 20 + r * cell + cell / 2, v, size=cell_font(v, 11)))
    parts.append(svg_text(0, 8, "input", anchor="start", size=11))
    parts.append(svg_text(ox, 8, "output", anchor="start", size=11))
    width, height = ox + max(len(st["output2d"][0]), 4) * cell + 4, 20 + h * cell + 4
    return (
        f'<svg class="cnnbook-svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
        f'<div class="cnnbook-summary">2D output ({len(st["rows2d"])} x {len(st["cols2d"])}): '
        f'<span class="cnnbook-mono" data-out="output2d">{esc(" / ".join(" ".join(r) for r in st["output2d"]))}</span></div>'
        '<div class="cnnbook-summary cnnbook-muted">Solid: the window of output (0, 0); dashed: of output (0, 1).</div>'
    )


def pooling_overlap(
    window: int = 3,
    stride: int = 2,
    mode: str = "max",
    last: str = "ceil",
    signal: Sequence[float] = LECTURE_SIGNAL,
    image: Sequence[Sequence[float]] = SMALL_IMAGE,
) -> PoolingOverlap:
    """The pooling-overlap widget (AlexNet, chapter 3): window ``z`` and stride ``s`` from 1 to 6.

    Shows, for the 1D ``signal`` and the 2D ``image``, which inputs each output sees and the output.
    ``mode`` is ``"max"`` or ``"avg"``; ``last="ceil"`` keeps a last window cut short by the end of the
    input (PyTorch's ``ceil_mode=True``, which the lecture's example uses), ``"floor"`` drops it.
    The arguments set the initial position of the controls. Display the result (last line of a cell).
    """
    return PoolingOverlap(signal, image, window, stride, mode, last)
