"""Display helpers shared by the chapters: computation lives elsewhere, these only show its results.

>>> html_table(["network", "parameters"], [["LeNet-5", 61_706]])   # doctest: +SKIP

Numbers are right-aligned, and so are strings that read as one already formatted (``"61,706"``,
``"12.3%"``, ``"0.54 M"``, ``"×8.9"``); integers of five digits or more get thousands separators (so years stay
``1998``), and floats are shown with ``float_format`` when given, else as ``str`` shows them.
Strings are inserted as HTML, so a chapter may write ``"<b>total</b>"``; any other object is converted
with ``str`` and escaped, so a module whose name is ``<lambda>`` shows as written.
"""

from __future__ import annotations

import base64
import html
import io
import numbers
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from IPython.display import HTML, display

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["html_table", "format_cell", "looks_numeric", "show_figure", "check_alt_text"]


def format_cell(value: object, float_format: str | None = None) -> str:
    """One table cell as HTML: large ints with thousands separators, floats with ``float_format``, strings as given."""
    if isinstance(value, str):
        return value  # trusted markup written by the chapter
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real) and float_format is not None:
        return format(float(value), float_format)
    if isinstance(value, numbers.Real):
        return str(value)
    return html.escape(str(value))


def html_table(header: Sequence[object], rows: Sequence[Sequence[object]], caption: str | None = None,
               float_format: str | None = None) -> HTML:
    """Rows shown as an HTML table (numbers right-aligned), for a notebook or the built book.

    Raises ``ValueError`` when a row's length differs from the header's, naming the row.
    """
    width = len(header)
    for index, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"row {index} has {len(row)} cells but the header has {width}: {list(row)!r}")
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(_cell(value, float_format) for value in row) + "</tr>" for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HTML(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


# A formatted number: optional sign or "×"/"~", digits with separators and a decimal point, an optional
# exponent, and an optional unit or suffix ("%", "M", "GB", "ms", "x").
_FORMATTED_NUMBER = re.compile(r"^[+\-−±×~≈]?\s*\d[\d,\u202f ]*(\.\d+)?([eE][+\-]?\d+)?\s*"
                               r"(%|[kKMGBT]|[kKMGT]?B|ms|µs|s|x|×)?$")


def looks_numeric(value: object) -> bool:
    """Whether a cell holds a number: a real number (not a bool), or a string that reads as a formatted one."""
    if isinstance(value, str):
        return bool(_FORMATTED_NUMBER.match(value.strip()))
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _cell(value: object, float_format: str | None) -> str:
    numeric = looks_numeric(value)
    style = ' style="text-align: right"' if numeric else ""
    return f"<td{style}>{format_cell(value, float_format)}</td>"


# ---- figures with alt text -----------------------------------------------------------------------------
# What an alt text must not be: empty, a file name or path, or a hash (what Sphinx writes when none is given).
_NOT_ALT_TEXT = re.compile(r"^\s*$|[\w./-]*\.(png|jpe?g|svg|gif|pdf)\s*$|^[0-9a-f]{16,}$", re.IGNORECASE)


def check_alt_text(alt: str) -> str:
    """``alt`` stripped, or ``ValueError`` when it cannot describe a figure (empty, a file name, a hash, one word)."""
    if not isinstance(alt, str) or _NOT_ALT_TEXT.search(alt) or len(alt.split()) < 4:
        raise ValueError(
            f"alt text {alt!r} does not describe the figure: say in a sentence what is plotted against what, "
            "and the result the reader should see (at least four words; not a file name or a hash)."
        )
    return " ".join(alt.split())


def show_figure(fig: "Figure", alt: str, dpi: int = 100) -> None:
    """Show a Matplotlib figure with alt text that says what it shows, and close it.

    The figure is drawn on an opaque white background (legible in the book's dark mode too) and emitted as
    a PNG whose output metadata carries ``alt``; the book's renderer (``cnnbook.sphinx_alt``) copies it to
    the ``<img>``. The plain-text form of the output is the alt text itself, so a reader without images
    (a terminal, a screen reader on the raw notebook) gets the description. Build ``alt`` from the same
    numbers the prose glues, so it never goes stale.
    """
    import matplotlib.pyplot as plt

    text = check_alt_text(alt)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white", transparent=False)
    plt.close(fig)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    display({"image/png": png, "text/plain": text}, metadata={"image/png": {"alt": text}}, raw=True)
