"""The static widget: controls, a JSON table and a small vanilla-JavaScript front end in one HTML fragment.

``static_html`` writes what the book shows for a widget (the ``text/html`` output of its cell):

- a ``<style>`` element with the widgets' CSS (``assets/widgets.css``);
- an empty ``div.cnnbook-interactive`` that the front end fills with the controls and the display;
- the widget's payload as ``<script type="application/json">``: the controls and the display of every
  value they can take, precomputed in Python by the calculators of ``cnnbook.calc``;
- the front end itself (``assets/widgets.js``), inlined, defined once per page, which builds the controls
  and, on every change, looks the display up in the table and draws it (HTML and SVG). It computes no
  number;
- the print figure as an ``<img>``: hidden on screen once the script has run, shown instead of the
  controls when printing (CSS ``@media print``) or when JavaScript is off.

Everything is inline, so the page needs no file in ``_static``, no kernel and no network. Every
widget of a page carries the CSS and the script; the script defines ``window.cnnbookWidgets`` once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import TeachingWidget

__all__ = ["ASSETS", "asset", "json_for_script", "static_html"]

ASSETS = Path(__file__).with_name("assets")
_ids = itertools.count(1)


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of ``assets/<name>``; refuses text that would end an inline ``<script>`` or ``<style>``."""
    path = ASSETS / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the package was installed without its widget assets "
            f"(package data 'widgets/assets/*'); reinstall with pip install -e ."
        )
    text = path.read_text(encoding="utf-8")
    lowered = text.lower()
    if "</script" in lowered or "</style" in lowered or "<!--" in lowered:
        raise ValueError(f"assets/{name} must not contain '</script', '</style' or '<!--' (it is inlined).")
    return text


def json_for_script(obj: Any) -> str:
    """Compact JSON that is safe inside ``<script type="application/json">`` (no ``<``, ``>`` or ``&``)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def static_html(widget: "TeachingWidget", png_base64: str | None = None) -> str:
    """The self-contained interactive HTML of ``widget`` (see the module docstring)."""
    payload = dict(widget.payload())
    payload["widget"] = widget.kind
    data = json_for_script(payload)
    uid = f"cnnbook-widget-{next(_ids)}-{hashlib.sha1(data.encode()).hexdigest()[:8]}"
    if png_base64 is None:
        png_base64 = base64.b64encode(widget.to_png()).decode("ascii")
    title = html.escape(widget.title)
    alt = html.escape(widget.alt or widget.title, quote=True)
    return (
        f'<div class="cnnbook-widget" id="{uid}" data-widget="{widget.kind}">\n'
        f"<style>{asset('widgets.css')}</style>\n"
        f'<div class="cnnbook-title">{title}</div>\n'
        f'<div class="cnnbook-interactive"></div>\n'
        f'<img class="cnnbook-print-figure" alt="{alt}" src="data:image/png;base64,{png_base64}">\n'
        f'<script type="application/json" class="cnnbook-data">{data}</script>\n'
        f"<script>\n{asset('widgets.js')}\nwindow.cnnbookWidgets.mount(document.getElementById(\"{uid}\"));\n</script>\n"
        f"</div>"
    )
