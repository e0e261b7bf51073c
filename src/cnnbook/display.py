"""Display helpers shared by the chapters: computation lives elsewhere, these only show its results.

>>> html_table(["network", "parameters"], [["LeNet-5", 61_706]])   # doctest: +SKIP

Numbers are right-aligned, and so are strings that read as one already formatted (``"61,706"``,
``"12.3%"``, ``"0.54 M"``, ``"×8.9"``); integers of five digits or more get thousands separators (so years stay
``1998``), and floats are shown with ``float_format`` when given, else as ``str`` shows them.
Strings are inserted as HTML, so a chapter may write ``"<b>total</b>"``; any other object is converted
with ``str`` and escaped, so a module whose name is ``<lambda>`` shows as written.
"""

from __future__ import annotations

import html
import numbers
import re
from collections.abc import Sequence

from IPython.display import HTML

__all__ = ["html_table", "format_cell", "looks_numeric"]


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
