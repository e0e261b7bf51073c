"""Live ipywidgets views: a row of controls above an HTML view redrawn by Python on every change."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ._base import Control

__all__ = ["live_box", "svg_text", "cell_font", "esc"]


def esc(text: Any) -> str:
    """Text escaped for HTML and SVG."""
    import html

    return html.escape(str(text), quote=True)


def cell_font(text: str, size: int) -> int:
    """A smaller font for values longer than two characters (``1.67`` in a small cell)."""
    return size if len(text) <= 2 else max(7, size - 3)


def svg_text(x: float, y: float, text: Any, cls: str = "", anchor: str = "middle", size: int = 12) -> str:
    """One SVG ``<text>`` element, centred on ``(x, y)`` by default."""
    return (
        f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" dominant-baseline="central" '
        f'font-size="{size}" class="{cls}">{esc(text)}</text>'
    )


def live_box(controls: Sequence[Control], render: Callable[[dict[str, Any]], str]) -> Any:
    """A ``VBox`` of the ipywidgets controls and an ``HTML`` view showing ``render(values)``.

    ``values`` maps each control's key to its current value; the view is redrawn whenever a control
    changes. The box keeps ``box.cnnbook_controls`` (key -> ipywidget) and ``box.cnnbook_view`` so that
    tests (and curious readers) can drive it by setting ``.value``.
    """
    import ipywidgets as w

    from .static import asset

    widgets = {c.key: c.ipywidget() for c in controls}
    view = w.HTML()

    def update(_: Any = None) -> None:
        values = {key: widget.value for key, widget in widgets.items()}
        view.value = f"<style>{asset('widgets.css')}</style><div class=\"cnnbook-widget cnnbook-live\">{render(values)}</div>"

    for widget in widgets.values():
        widget.observe(update, names="value")
    update()
    box = w.VBox([w.HBox(list(widgets.values()), layout=w.Layout(flex_flow="row wrap")), view])
    box.cnnbook_controls = widgets
    box.cnnbook_view = view
    return box
