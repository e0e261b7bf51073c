"""Sphinx extension for the book build: static widgets, and widget pages free of console errors.

Add it to ``_config.yml``::

    sphinx:
      extra_extensions:
        - cnnbook.widgets.sphinx_ext

It does three things:

1. sets ``CNNBOOK_WIDGETS=static`` in the build's environment (unless already set), which the kernels
   that execute the chapters inherit, so every widget takes its static, kernel-free path even when the
   book is built from inside JupyterLab (whose kernels would otherwise look like a widget frontend);
2. removes duplicate inline ``<script>`` elements: Sphinx 7.4 registers an inline script added by an
   extension after the builder started (sphinx-thebe's ``const THEBE_JS_URL = ...``) once with the
   name ``None`` and once with ``''``, so every page declared the constant twice and the browser
   reported "Identifier 'THEBE_JS_URL' has already been declared";
3. gives pydata-sphinx-theme a ``default_mode`` (``"auto"``, light or dark as the reader's system
   prefers) when ``html_context`` has none; without it the theme logs
   "Got invalid theme mode: . Resetting to auto." on every page.
"""

from __future__ import annotations

import os
from typing import Any

from ._base import MODE_ENV

__all__ = ["setup"]


def _script_key(js: Any) -> tuple:
    attributes = getattr(js, "attributes", {})
    return (os.fspath(getattr(js, "filename", js) or ""), getattr(js, "priority", 0), tuple(sorted(attributes.items())))


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def _default_mode(app: Any, config: Any) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def setup(app: Any) -> dict[str, Any]:
    os.environ.setdefault(MODE_ENV, "static")
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
