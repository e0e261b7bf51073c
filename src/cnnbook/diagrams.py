"""Architecture diagrams drawn from the model itself, in one notation shared by every chapter.

The notation (``NOTATION``, drawn by :func:`draw_notation_legend`) gives each kind of layer its own
colour and shape: convolution, pooling, merge (concatenation or addition), dense (fully connected),
activation, normalisation, dropout and other reshaping, modules (a block such as an inception module or
a residual block, drawn as one box) and repeated blocks (xN).

This module only draws. The computations live with the other calculators: ``cnnbook.calc.layer_rows``
(:func:`layer_rows`: the model as rows of layers with their output shapes, identical consecutive rows
collapsed into one row xN) and ``cnnbook.calc.block_graph`` (:func:`block_graph`: one block's branches and
merges, traced with ``torch.fx``); both are re-exported here. :func:`draw_model` draws the rows as a
top-to-bottom overview; :func:`draw_block` draws the graph of one block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .calc.block_graph import Node, block_graph
from .calc.layer_rows import Row, _resolve, describe_rows, layer_rows

__all__ = ["Style", "NOTATION", "Row", "Node", "layer_rows", "describe_rows", "draw_model", "draw_notation_legend",
           "block_graph", "draw_block"]


# ---- the notation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """How one kind of layer is drawn."""

    name: str         # the word used in the book
    colour: str       # face colour
    glyph: str        # "box", "trapezoid", "circle", "pill", "rounded", "stack", "ellipse"
    meaning: str      # one line for the legend


NOTATION: dict[str, Style] = {
    "input": Style("input / output", "#e8e8e8", "ellipse", "the tensor entering (or leaving) the network"),
    "conv": Style("convolution", "#8fb8de", "box", "conv k×k, out channels (/s: stride s)"),
    "pool": Style("pooling", "#f5c26b", "trapezoid", "max / average pooling, k×k, /s: stride s"),
    "dense": Style("dense", "#c3a6d8", "box", "fully connected layer, out features"),
    "activation": Style("activation", "#9bd59b", "pill", "ReLU, tanh, sigmoid, ..."),
    "norm": Style("normalisation", "#f2e394", "pill", "BN: batch norm, LRN: local response norm"),
    "merge": Style("merge", "#f08c8c", "circle", "+ : add (residual), C : concatenate (channels)"),
    "module": Style("module", "#7fc8bd", "rounded", "a block drawn as one box (inception, residual, ...)"),
    "repeat": Style("repeated block", "#7fc8bd", "stack", "the same layer or block N times in a row"),
    "other": Style("dropout / reshape", "#ffffff", "pill", "dropout p, flatten, upsample"),
}


# ---- drawing -----------------------------------------------------------------------------------------
def _glyph(ax: Any, kind: str, x: float, y: float, w: float, h: float, text: str = "", fontsize: float = 8,
           repeat: int = 1) -> None:
    """Draw the glyph of ``kind`` with its centre-left at (x, y), width w, height h."""
    from matplotlib import patches

    style = NOTATION[kind]
    edge = "#333333"
    bottom = y - h / 2
    if repeat > 1 or style.glyph == "stack":  # two shadows behind: the same thing several times
        for k in (2, 1):
            ax.add_patch(patches.FancyBboxPatch((x + 0.06 * k, bottom + 0.06 * k), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                                fc=style.colour, ec=edge, lw=0.6, alpha=0.6))
    glyph = "rounded" if style.glyph == "stack" else style.glyph
    if glyph == "box":
        ax.add_patch(patches.Rectangle((x, bottom), w, h, fc=style.colour, ec=edge, lw=0.8))
    elif glyph == "rounded":
        ax.add_patch(patches.FancyBboxPatch((x, bottom), w, h, boxstyle="round,pad=0,rounding_size=0.12",
                                            fc=style.colour, ec=edge, lw=1.6))
    elif glyph == "trapezoid":  # narrows downwards: pooling shrinks the map
        inset = 0.12 * w
        ax.add_patch(patches.Polygon([(x, y + h / 2), (x + w, y + h / 2), (x + w - inset, bottom), (x + inset, bottom)],
                                     closed=True, fc=style.colour, ec=edge, lw=0.8))
    elif glyph == "pill":
        dashed = kind == "other"
        ax.add_patch(patches.FancyBboxPatch((x, bottom), w, h, boxstyle=f"round,pad=0,rounding_size={h / 2}",
                                            fc=style.colour, ec=edge, lw=0.8, ls="--" if dashed else "-"))
    elif glyph == "ellipse":
        ax.add_patch(patches.Ellipse((x + w / 2, y), w, h, fc=style.colour, ec=edge, lw=0.8))
    elif glyph == "circle":
        r = h / 2
        ax.add_patch(patches.Circle((x + r, y), r, fc=style.colour, ec=edge, lw=0.8))
        ax.text(x + r, y, text or "+", ha="center", va="center", fontsize=fontsize + 1, weight="bold")
        return
    if repeat > 1:
        text = f"{text}  ×{repeat}"
    ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=fontsize)


def _tag_width(label: str) -> float:
    """Width (inches) of a tag pill that fits ``label`` at font size 6.5."""
    return max(0.5, 0.065 * len(label) + 0.18)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def draw_model(
    model: nn.Module | str, input_size: tuple[int, int, int] | None = None, title: str | None = None,
    max_rows: int = 26, collapse: bool = True,
) -> Any:
    """An overview of ``model``, top to bottom, in the book's notation; returns the matplotlib Figure.

    Each row is a layer (with its normalisation, activation and dropout as tags beside it) or a block
    drawn as one module box; identical consecutive rows appear once, marked xN. The output shape of each
    row (channels x height x width, or features) is written on its right. Long networks wrap into
    several columns of at most ``max_rows`` rows.

    Args:
        model: an ``nn.Module``, or the name of a registered network (built on the meta device, so even
            VGG-19 costs no memory).
        input_size: (C, H, W); defaults to the registered native size (or ``fixed_input_size``).
        title: defaults to the class name and input size.
    """
    import matplotlib.pyplot as plt

    name = model if isinstance(model, str) else type(model).__name__
    model, input_size = _resolve(model, input_size)
    rows = layer_rows(model, input_size, collapse=collapse)
    columns = [rows[i:i + max_rows] for i in range(0, len(rows), max_rows)]
    main_w, gap, row_h, glyph_h = 2.3, 0.08, 0.42, 0.3
    tags_w = max((sum(_tag_width(label) + gap for _, label in r.tags) for r in rows), default=0.0)
    col_w = main_w + tags_w + 1.45
    height = max(len(c) for c in columns) * row_h + 0.5
    fig = plt.figure(figsize=(col_w * len(columns) + 0.2, height + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.1, col_w * len(columns) + 0.1)
    ax.set_ylim(-height, 0.35)
    ax.axis("off")
    for c, column in enumerate(columns):
        x0 = c * col_w
        for r, row in enumerate(column):
            y = -0.25 - r * row_h
            _glyph(ax, row.kind, x0, y, main_w, glyph_h, row.label, repeat=row.repeat)
            tag_x = x0 + main_w + gap
            for tag_kind, tag_label in row.tags:
                _glyph(ax, tag_kind, tag_x, y, _tag_width(tag_label), glyph_h * 0.8, tag_label, fontsize=6.5)
                tag_x += _tag_width(tag_label) + gap
            ax.text(x0 + main_w + tags_w + 0.12, y, _shape_text(row.shape), ha="left", va="center",
                    fontsize=7.5, color="#444444", family="monospace")
            if r + 1 < len(column):
                ax.annotate("", xy=(x0 + main_w / 2, y - row_h + glyph_h / 2), xytext=(x0 + main_w / 2, y - glyph_h / 2),
                            arrowprops=dict(arrowstyle="-|>", lw=0.7, color="#555555", shrinkA=0, shrinkB=0))
        if c + 1 < len(columns):  # continue in the next column
            ax.text(x0 + main_w / 2, -0.25 - len(column) * row_h + 0.1, "continues →", ha="center", va="center",
                    fontsize=7, color="#555555")
    fig.suptitle(title or f"{name}, input {_shape_text(tuple(input_size))}", fontsize=9, y=0.999, va="top")
    return fig


def draw_notation_legend() -> Any:
    """The notation used by every diagram of the book: one example glyph and one line per entry."""
    import matplotlib.pyplot as plt

    examples = {"input": "input", "conv": "conv 3×3, 64", "pool": "max pool 2×2, /2", "dense": "dense 4096",
                "activation": "ReLU", "norm": "BN", "merge": "+", "module": "Inception", "repeat": "Bottleneck  ×3",
                "other": "dropout 0.5"}
    row_h = 0.5
    fig = plt.figure(figsize=(7.6, row_h * len(NOTATION) + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 7.6)
    ax.set_ylim(-row_h * len(NOTATION) - 0.1, 0.2)
    ax.axis("off")
    for i, (kind, style) in enumerate(NOTATION.items()):
        y = -0.2 - i * row_h
        small = style.glyph in ("pill", "circle")
        width = 0.9 if small else 2.0
        _glyph(ax, kind, 0.15 + (2.0 - width) / 2, y, width, 0.3, examples[kind], fontsize=7.5)
        ax.text(2.55, y, style.name, ha="left", va="center", fontsize=9, weight="bold")
        ax.text(4.25, y, style.meaning, ha="left", va="center", fontsize=7.5, color="#333333")
    return fig



def _spread(desired: list[float], spacing: float) -> list[float]:
    """Positions near ``desired`` (already sorted) at least ``spacing`` apart, centred like them."""
    placed: list[float] = []
    for d in desired:
        placed.append(max(d, placed[-1] + spacing) if placed else d)
    shift = sum(desired) / len(desired) - sum(placed) / len(placed)
    return [p + shift for p in placed]


def _layout(nodes: list[Node], spacing: float) -> tuple[dict[str, float], dict[tuple[str, str], list[str]]]:
    """x position of every node, and the way points of every edge.

    An edge that skips levels gets one invisible way point per skipped level, which takes a column of its
    own (Sugiyama's dummy nodes), so long edges run beside the boxes instead of through them. Each level
    is placed under the mean position of its inputs, keeping the graph order when they tie.
    """
    by_name = {n.name: n for n in nodes}
    levels: dict[int, list[tuple[str, list[str]]]] = {}  # level -> [(name, inputs)]
    routes: dict[tuple[str, str], list[str]] = {}
    for node in nodes:
        inputs = []
        for source in node.inputs:
            previous, points = source, []
            for level in range(by_name[source].level + 1, node.level):
                point = f"{source}->{node.name}@{level}"
                levels.setdefault(level, []).append((point, [previous]))
                points.append(point)
                previous = point
            routes[(source, node.name)] = points
            inputs.append(previous)
        levels.setdefault(node.level, []).append((node.name, inputs))
    x: dict[str, float] = {}
    for level in sorted(levels):
        members = levels[level]
        desired = [sum(x[s] for s in inputs) / len(inputs) if inputs else 0.0 for _, inputs in members]
        ordered = sorted(range(len(members)), key=lambda i: desired[i])
        for i, position in zip(ordered, _spread([desired[i] for i in ordered], spacing)):
            x[members[i][0]] = position
    return x, routes


def draw_block(block: nn.Module, input_size: tuple[int, int, int], title: str | None = None) -> Any:
    """The graph of one block (e.g. an inception module or a residual block), top to bottom.

    Parallel branches sit side by side; merges (C: concatenation, +: addition) are circles; a layer's
    normalisation and activation are tags on its right, as in :func:`draw_model`. Returns the matplotlib
    Figure. ``input_size`` is the (C, H, W) the block receives.
    """
    import matplotlib.pyplot as plt

    nodes = block_graph(block, input_size)
    box_w, gap, box_h, row_h = 1.55, 0.05, 0.32, 0.72
    tags_w = max((sum(_tag_width(label) + gap for _, label in n.tags) for n in nodes), default=0.0)
    col_w = box_w + tags_w + 0.35
    x, routes = _layout(nodes, col_w)
    y = {name: 0.0 for name in x}
    for node in nodes:
        y[node.name] = -0.25 - node.level * row_h
    for (source, target), points in routes.items():
        for point in points:
            y[point] = -0.25 - int(point.rsplit("@", 1)[1]) * row_h
    left = min(x.values()) - box_w / 2 - 0.2
    right = max(x.values()) + col_w - box_w / 2 + 0.3
    levels = max(n.level for n in nodes) + 1
    height = levels * row_h + 0.3
    width = max(right - left, 3.2)
    fig = plt.figure(figsize=(width, height + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, left + width)
    ax.set_ylim(-height, 0.35)
    ax.axis("off")
    for (source, target), points in routes.items():  # edges first, under the glyphs
        path = [(x[source], y[source] - box_h / 2)] + [(x[p], y[p]) for p in points] + [(x[target], y[target] + box_h / 2)]
        xs, ys = zip(*path)
        ax.plot(xs[:-1], ys[:-1], color="#555555", lw=0.7)
        ax.annotate("", xy=path[-1], xytext=path[-2],
                    arrowprops=dict(arrowstyle="-|>", lw=0.7, color="#555555", shrinkA=0, shrinkB=1))
    for node in nodes:
        cx, cy = x[node.name], y[node.name]
        if node.kind == "merge":
            _glyph(ax, "merge", cx - box_h / 2, cy, box_h, box_h, node.label)
            right_edge = cx + box_h / 2
        else:
            _glyph(ax, node.kind, cx - box_w / 2, cy, box_w, box_h, node.label, fontsize=7)
            tag_x = cx + box_w / 2 + gap
            for kind, label in node.tags:
                _glyph(ax, kind, tag_x, cy, _tag_width(label), box_h * 0.8, label, fontsize=6)
                tag_x += _tag_width(label) + gap
            right_edge = cx + box_w / 2
        ax.text(right_edge + 0.04, cy - box_h / 2 - 0.03, _shape_text(node.shape), ha="left", va="top", fontsize=6,
                color="#444444", family="monospace")
    fig.suptitle(title or f"{type(block).__name__}, input {_shape_text(tuple(input_size))}", fontsize=9, y=0.999, va="top")
    return fig
