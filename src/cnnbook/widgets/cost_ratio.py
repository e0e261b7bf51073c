"""Cost ratios: standard against depthwise-separable convolution, plain against 1x1-reduced inception paths.

Howard et al. 2017 (*MobileNets*, section 3.1): a ``K x K`` depthwise convolution followed by a 1x1
pointwise one costs ``1/N + 1/K**2`` of a standard ``K x K`` convolution from ``M`` to ``N`` channels.
Szegedy et al. 2014 (*Going Deeper with Convolutions*, section 4): a 1x1 convolution that first reduces
``C_in`` channels to ``r`` makes the ``K x K`` convolution after it cheap. The widget counts parameters
and mult-adds for every slider setting with ``cnnbook.calc.costs``, and shows the counted ratio beside
the closed form.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..calc.costs import (
    Cost,
    depthwise_conv_cost,
    inception_branch_costs,
    pointwise_conv_cost,
    separable_conv_cost,
    separable_ratio,
    standard_conv_cost,
)
from ._base import Control, TeachingWidget, check_choice, fmt_int, fmt_ratio, state_key
from ._live import esc, live_box

__all__ = [
    "CostRatios", "cost_ratios", "separable_state", "inception_state", "SEPARABLE_GRID", "INCEPTION_GRID", "FIELDS",
]

# Every value each slider can take (the static book ships the display of every combination).
# The ratio does not depend on M or D, so their grids are coarser than N's and K's.
SEPARABLE_GRID: dict[str, tuple[int, ...]] = {
    "k": (1, 3, 5, 7),                       # kernel size K
    "c_in": (32, 128, 256, 512),             # input channels M
    "c_out": (16, 32, 64, 128, 256, 512),    # output channels N
    "size": (7, 14, 28, 56, 112),            # output height = width D
}
INCEPTION_GRID: dict[str, tuple[int, ...]] = {
    "k": (3, 5),                             # kernel of the branch
    "c_in": (192, 480, 832),                 # channels entering the block (GoogLeNet's 3a, 4a, 5a)
    "reduce": (16, 32, 64, 128),             # channels after the 1x1 reduction
    "c_out": (32, 64, 128, 256),             # channels out of the K x K convolution
    "size": (7, 14, 28),                     # height = width of the block
}
SEPARABLE_START = {"k": 3, "c_in": 256, "c_out": 256, "size": 14}
# GoogLeNet's block 3a, its 5x5 branch: 192 channels reduced to 16, then 32 5x5 filters, at 28x28.
INCEPTION_START = {"k": 5, "c_in": 192, "reduce": 16, "c_out": 32, "size": 28}
_LABELS = {
    "separable": {"k": "kernel K", "c_in": "input channels M", "c_out": "output channels N", "size": "output size D"},
    "inception": {
        "k": "kernel K", "c_in": "input channels", "reduce": "1x1 reduces to r", "c_out": "output channels",
        "size": "size D",
    },
}
_TITLES = {
    "separable": "Standard against depthwise-separable convolution",
    "inception": "Plain K x K convolution against a 1x1-reduced path (inception)",
}
SHOW = ("both", "separable", "inception")


def _pair(cost: Cost) -> list[int]:
    return [cost.params, cost.mult_adds]


def separable_state(k: int, c_in: int, c_out: int, size: int) -> dict[str, Any]:
    """Costs of a standard ``k x k`` convolution and of its depthwise-separable replacement, and ratios."""
    standard = standard_conv_cost(k, c_in, c_out, size, size)
    separable = separable_conv_cost(k, c_in, c_out, size, size)
    ratio_params, ratio_mult_adds = separable.ratio_to(standard)
    return {
        "standard": _pair(standard),
        "depthwise": _pair(depthwise_conv_cost(k, c_in, size, size)),
        "pointwise": _pair(pointwise_conv_cost(c_in, c_out, size, size)),
        "separable": _pair(separable),
        "ratio_params": fmt_ratio(ratio_params),
        "ratio_mult_adds": fmt_ratio(ratio_mult_adds),
        "formula": fmt_ratio(separable_ratio(k, c_out)),
    }


def inception_state(k: int, c_in: int, reduce: int, c_out: int, size: int) -> dict[str, Any]:
    """Costs of a plain ``k x k`` convolution and of the 1x1-reduced path (1x1 to ``reduce``, then ``k x k``)."""
    plain, reduction, reduced = inception_branch_costs(
        c_in, size, size, [[(k, c_out)], [(1, reduce)], [(1, reduce), (k, c_out)]]
    )
    ratio_params, ratio_mult_adds = reduced.ratio_to(plain)
    return {
        "plain": _pair(plain),
        "reduce": _pair(reduction),
        "conv": _pair(standard_conv_cost(k, reduce, c_out, size, size)),
        "reduced": _pair(reduced),
        "ratio_params": fmt_ratio(ratio_params),
        "ratio_mult_adds": fmt_ratio(ratio_mult_adds),
    }


_STATES = {"separable": separable_state, "inception": inception_state}
# Order of a state's values in the static table.
FIELDS = {
    "separable": ("standard", "depthwise", "pointwise", "separable", "ratio_params", "ratio_mult_adds", "formula"),
    "inception": ("plain", "reduce", "conv", "reduced", "ratio_params", "ratio_mult_adds"),
}
_GRIDS = {"separable": SEPARABLE_GRID, "inception": INCEPTION_GRID}


class CostRatios(TeachingWidget):
    """The cost-ratio widget; build it with ``cost_ratios``."""

    kind = "cost"
    title = "Cost ratios: parameters and mult-adds"
    alt = "Counted mult-add ratio of separable to standard convolution against 1/N + 1/K^2, and plain against reduced inception paths."

    def __init__(
        self,
        show: str = "both",
        separable: Mapping[str, int] | None = None,
        inception: Mapping[str, int] | None = None,
    ) -> None:
        check_choice("show", show, SHOW)
        self.panels = ("separable", "inception") if show == "both" else (show,)
        self.start = {
            "separable": {**SEPARABLE_START, **(separable or {})},
            "inception": {**INCEPTION_START, **(inception or {})},
        }
        for panel, values in self.start.items():
            grid = _GRIDS[panel]
            for key, value in values.items():
                check_choice(f"{panel}[{key!r}]", value, grid.get(key, ()))

    def panel_controls(self, panel: str) -> list[Control]:
        grid, start, labels = _GRIDS[panel], self.start[panel], _LABELS[panel]
        return [Control(key, labels[key], values, start[key]) for key, values in grid.items()]

    def controls(self) -> list[Control]:
        return [c for panel in self.panels for c in self.panel_controls(panel)]

    def state(self, panel: str, **values: int) -> dict[str, Any]:
        return _STATES[panel](**values)

    def table(self, panel: str) -> dict[str, list[Any]]:
        """The display of every combination of the panel's sliders, keyed by ``state_key``.

        Each entry lists the state's values in the order of ``FIELDS[panel]`` (compact JSON).
        """
        grid = _GRIDS[panel]
        keys = list(grid)
        combos: list[tuple[int, ...]] = [()]
        for key in keys:
            combos = [c + (v,) for c in combos for v in grid[key]]
        table = {}
        for combo in combos:
            state = self.state(panel, **dict(zip(keys, combo)))
            table[state_key(*combo)] = [state[field] for field in FIELDS[panel]]
        return table

    def payload(self) -> dict[str, Any]:
        return {
            "panels": [
                {
                    "name": panel,
                    "title": _TITLES[panel],
                    "controls": [c.as_json() for c in self.panel_controls(panel)],
                    "fields": list(FIELDS[panel]),
                    "table": self.table(panel),
                }
                for panel in self.panels
            ]
        }

    # ---- live view ------------------------------------------------------------------------------
    def render_html(self, panel: str, values: Mapping[str, int]) -> str:
        """The live view of one panel: a table of parameters and mult-adds and the ratios."""
        st = self.state(panel, **values)
        v = values
        k = f'{v["k"]}x{v["k"]}'
        if panel == "separable":
            rows = [
                ("standard", f'standard {k} convolution, {v["c_in"]} -> {v["c_out"]}'),
                ("depthwise", f'depthwise {k}, {v["c_in"]} channels'),
                ("pointwise", f'pointwise 1x1, {v["c_in"]} -> {v["c_out"]}'),
                ("separable", "depthwise separable (sum)"),
            ]
            extra = (
                f'<div class="cnnbook-summary">1/N + 1/K&sup2; = 1/{v["c_out"]} + 1/{v["k"]}&sup2; = '
                f'<b data-out="formula">{st["formula"]}</b></div>'
            )
            ratio_label = "separable / standard"
        else:
            rows = [
                ("plain", f'plain {k} convolution, {v["c_in"]} -> {v["c_out"]}'),
                ("reduce", f'1x1 reduction, {v["c_in"]} -> {v["reduce"]}'),
                ("conv", f'{k} convolution, {v["reduce"]} -> {v["c_out"]}'),
                ("reduced", "reduced path (sum)"),
            ]
            extra = ""
            ratio_label = "reduced / plain"
        body = "".join(
            f'<tr data-row="{name}"><td>{esc(text)}</td><td data-out="{name}-params">{fmt_int(st[name][0])}</td>'
            f'<td data-out="{name}-mult_adds">{fmt_int(st[name][1])}</td></tr>'
            for name, text in rows
        )
        body += (
            f'<tr class="cnnbook-ratio"><td>{ratio_label}</td><td data-out="ratio_params">{st["ratio_params"]}</td>'
            f'<td data-out="ratio_mult_adds">{st["ratio_mult_adds"]}</td></tr>'
        )
        return (
            f'<div class="cnnbook-panel" data-panel="{panel}"><div class="cnnbook-subtitle">{_TITLES[panel]}</div>'
            f'<table class="cnnbook-table"><thead><tr><th></th><th>parameters</th><th>mult-adds</th></tr></thead>'
            f"<tbody>{body}</tbody></table>{extra}</div>"
        )

    def live(self) -> Any:
        import ipywidgets as w

        boxes = [
            live_box(self.panel_controls(panel), lambda values, panel=panel: self.render_html(panel, values))
            for panel in self.panels
        ]
        box = w.VBox(boxes)
        box.cnnbook_panels = dict(zip(self.panels, boxes))
        return box

    # ---- print figure ---------------------------------------------------------------------------
    def figure(self) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.6 * len(self.panels), 3.6))
        axes = fig.subplots(1, len(self.panels), squeeze=False)[0]
        for ax, panel in zip(axes, self.panels):
            (_figure_separable if panel == "separable" else _figure_inception)(ax, self.start[panel])
        fig.tight_layout()
        return fig


def _figure_separable(ax: Any, start: Mapping[str, int]) -> None:
    c_in, size = start["c_in"], start["size"]
    ns = SEPARABLE_GRID["c_out"]
    for i, k in enumerate((3, 5, 7)):
        counted = [separable_conv_cost(k, c_in, n, size, size).ratio_to(standard_conv_cost(k, c_in, n, size, size))[1] for n in ns]
        ax.plot(ns, [separable_ratio(k, n) for n in ns], color=f"C{i}", lw=1, label=f"1/N + 1/K², K={k}")
        ax.plot(ns, counted, "o", color=f"C{i}", ms=4)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("output channels N")
    ax.set_ylabel("separable / standard mult-adds")
    ax.set_title(f"Counted (dots) and 1/N + 1/K² (lines), M={c_in}", fontsize=9)
    ax.legend(fontsize=8)


def _figure_inception(ax: Any, start: Mapping[str, int]) -> None:
    st = inception_state(**start)
    labels = [f"plain {start['k']}x{start['k']}", f"1x1 to {start['reduce']}\nthen {start['k']}x{start['k']}"]
    values = [st["plain"][1] / 1e6, st["reduced"][1] / 1e6]
    ax.bar(labels, values, color=["C3", "C2"])
    for x, v in enumerate(values):
        ax.text(x, v, f"{v:.1f}M", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("mult-adds (millions)")
    ax.set_title(
        f"{start['c_in']} -> {start['c_out']} channels at {start['size']}x{start['size']}: "
        f"ratio {st['ratio_mult_adds']}",
        fontsize=9,
    )


def cost_ratios(
    show: str = "both",
    separable: Mapping[str, int] | None = None,
    inception: Mapping[str, int] | None = None,
) -> CostRatios:
    """The cost-ratio widget (Inception, chapter 6; MobileNet, chapter 11).

    ``show`` picks the panels: ``"separable"`` (standard against depthwise-separable convolution, with
    ``1/N + 1/K**2`` beside the counted ratio), ``"inception"`` (plain ``K x K`` against 1x1-reduced
    paths), or ``"both"``. ``separable`` and ``inception`` set the sliders' initial values, e.g.
    ``cost_ratios("separable", separable={"k": 3, "c_in": 512, "c_out": 512, "size": 14})``; the values
    must lie on the grids ``SEPARABLE_GRID`` / ``INCEPTION_GRID``. Display the result (last line of a cell).
    """
    return CostRatios(show, separable, inception)
