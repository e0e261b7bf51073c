"""What the three teaching widgets share: controls described as data, a table of precomputed displays,
and the choice between live ipywidgets and the static, kernel-free HTML widget.

Every widget function of ``cnnbook.widgets`` returns a ``TeachingWidget``. Displayed (as the last
expression of a cell, or with ``display(...)``), it shows

- **live ipywidgets** when ``display_mode`` says ``"live"``: a kernel with a widget frontend
  (JupyterLab, Notebook 7, Binder, JupyterHub, VS Code, Colab). Moving a control calls the Python
  calculators of ``cnnbook.calc`` at once;
- **a static interactive widget** otherwise, above all in the book build (nbclient runs the chapters with
  no frontend): one ``text/html`` output holding the controls, a JSON table with the display of every
  value the controls can take (computed here, in Python, by the same calculators), a small vanilla
  JavaScript front end that only looks values up and draws them, and a print figure. It needs no kernel,
  no ipywidgets manager and no CDN. The same output also carries an ``image/png`` figure, which the LaTeX
  (PDF) builder picks.

Saved ipywidgets state would draw the controls but run no Python callback, hence the table.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

__all__ = ["MODE_ENV", "display_mode", "Control", "TeachingWidget", "state_key"]

# Set to "static" or "live" to override the detection (the book build sets "static").
MODE_ENV = "CNNBOOK_WIDGETS"
_MODES = ("live", "static")


def _kernel_shell() -> Any | None:
    """The IPython shell when this code runs inside a Jupyter kernel, else ``None``."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _frontend_with_widgets() -> bool:
    """Whether the kernel was started by a frontend that renders ipywidgets.

    - Jupyter Server (JupyterLab, Notebook 7, Binder, JupyterHub) sets ``JPY_SESSION_NAME`` in the
      environment of the kernels it starts for a notebook;
    - VS Code's kernels inherit ``VSCODE_PID``; Colab imports ``google.colab``.

    nbclient (the book build, ``jupyter nbconvert --execute``) sets none of these.
    """
    return (
        "JPY_SESSION_NAME" in os.environ
        or "VSCODE_PID" in os.environ
        or "google.colab" in sys.modules
    )


def display_mode() -> str:
    """``"live"`` (ipywidgets) or ``"static"`` (self-contained HTML + JavaScript), as explained above.

    The environment variable ``CNNBOOK_WIDGETS=static`` or ``=live`` overrides the detection; otherwise
    the mode is ``"live"`` only in a kernel started by a widget frontend, with ipywidgets importable.
    Every frontend that runs the scripts of trusted outputs (JupyterLab, Notebook, VS Code) also shows
    the static widget working, so a wrong guess towards ``"static"`` still gives a working widget.
    """
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced:
        if forced not in _MODES:
            raise ValueError(f"{MODE_ENV} must be one of {_MODES}; got {forced!r}.")
        return forced
    if _kernel_shell() is None or not _frontend_with_widgets():
        return "static"
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return "static"
    return "live"


def state_key(*values: Any) -> str:
    """Key of one control setting in a widget's table: the values as text, joined by ``|``.

    The JavaScript front end builds the same key from ``String(value)``, so values are ints or strings.
    """
    for value in values:
        if isinstance(value, (bool, float)) or not isinstance(value, (int, str)):
            raise TypeError(f"Control values must be ints or strings; got {value!r}.")
    return "|".join(str(value) for value in values)


@dataclass(frozen=True)
class Control:
    """One control: a slider over a finite list of values, or a drop-down (``kind="select"``)."""

    key: str                              # name in the table key and in the page (``data-key``)
    label: str                            # text beside the control
    values: tuple[Any, ...]               # every value the control can take, in order (ints or strings)
    value: Any                            # the initial value
    kind: str = "slider"                  # "slider" or "select"
    labels: tuple[str, ...] | None = None  # text shown for each value; default ``str(value)``

    def __post_init__(self) -> None:
        if self.kind not in ("slider", "select"):
            raise ValueError(f"Control kind must be 'slider' or 'select'; got {self.kind!r}.")
        if not self.values:
            raise ValueError(f"Control {self.key!r} has no values.")
        if self.value not in self.values:
            raise ValueError(f"Control {self.key!r}: initial value {self.value!r} is not one of {list(self.values)}.")
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(f"Control {self.key!r}: {len(self.labels)} labels for {len(self.values)} values.")
        state_key(*self.values)  # ints or strings only

    def text(self, value: Any) -> str:
        """The label shown for ``value``."""
        if self.labels is None:
            return str(value)
        return self.labels[self.values.index(value)]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "values": list(self.values),
            "labels": [self.text(v) for v in self.values],
            "index": self.values.index(self.value),
        }

    def ipywidget(self) -> Any:
        """The matching ipywidgets control (``SelectionSlider`` or ``Dropdown``), at the initial value."""
        import ipywidgets as w

        options = [(self.text(v), v) for v in self.values]
        style = {"description_width": "initial"}
        if self.kind == "select":
            return w.Dropdown(options=options, value=self.value, description=self.label, style=style)
        return w.SelectionSlider(
            options=options, value=self.value, description=self.label, continuous_update=True, style=style
        )


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is drawn off-screen, never shown by pyplot)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def fmt_int(n: int) -> str:
    """``1234567 -> "1,234,567"`` (the front end prints the same)."""
    return f"{n:,}"


def fmt_ratio(r: float) -> str:
    """A cost ratio as shown by the widgets: four decimals.

    Rounding to 12 decimals first removes float noise, so that two computations of the same number
    (a counted ratio and its closed form) print the same digits.
    """
    return f"{round(r, 12):.4f}"


def fmt_value(v: float) -> str:
    """A pooled value: an integer without decimals, otherwise at most two (``5``, ``2.5``, ``1.67``)."""
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")


class TeachingWidget:
    """Base class of the three widgets; subclasses fill in the abstract methods.

    - ``controls``: the controls, as ``Control`` data;
    - ``state``: the display data of one control setting, computed by the calculators;
    - ``payload``: everything the static front end needs (controls, the table of every state);
    - ``render_html``: the live view of one state (HTML with inline SVG), for ipywidgets;
    - ``figure``: the print / PDF figure (matplotlib).
    """

    kind: ClassVar[str] = ""      # the front end's renderer name
    title: ClassVar[str] = ""     # heading shown above the widget
    alt: ClassVar[str] = ""       # text alternative of the print figure
    dpi: ClassVar[int] = 110      # resolution of the print figure

    # ---- to be provided by each widget ----------------------------------------------------------
    def controls(self) -> list[Control]:
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def figure(self) -> Any:
        raise NotImplementedError

    def live(self) -> Any:
        raise NotImplementedError

    # ---- shared ---------------------------------------------------------------------------------
    def to_png(self) -> bytes:
        """The print figure as PNG bytes."""
        return figure_png(self.figure(), self.dpi)

    def to_html(self, png_base64: str | None = None) -> str:
        """The static interactive widget: one self-contained HTML fragment (see ``.static``)."""
        from .static import static_html

        return static_html(self, png_base64)

    def __repr__(self) -> str:
        return f"<cnnbook.widgets {self.title}: run in Jupyter, or see the book's HTML, for the interactive widget>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        png = base64.b64encode(self.to_png()).decode("ascii")
        if display_mode() == "live":
            bundle = dict(self.live()._repr_mimebundle_())
            bundle["image/png"] = png  # for nbconvert to PDF and viewers without widgets
            bundle["text/plain"] = repr(self)
            return bundle
        return {"text/plain": repr(self), "text/html": self.to_html(png), "image/png": png}
