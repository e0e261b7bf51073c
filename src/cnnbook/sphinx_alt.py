"""The book's notebook renderer: myst-nb's own, plus alt text carried in a figure's output metadata.

myst-nb sets an image's alt text only from static cell metadata (``mystnb: image: alt:``), and copies
just ``width`` and ``height`` from an output's metadata. ``cnnbook.display.show_figure`` writes the alt
text, built from the chapter's own numbers, into the output metadata of its PNG; this renderer copies it to
the image node, so the ``<img>`` of the built page says what the figure shows. It is selected in
``_config.yml`` with ``nb_render_plugin: cnnbook`` (the ``myst_nb.renderers`` entry point in pyproject.toml).
"""

from __future__ import annotations

from docutils import nodes
from myst_nb.core.render import MimeData, NbElementRenderer

__all__ = ["AltTextRenderer"]


class AltTextRenderer(NbElementRenderer):
    """myst-nb's renderer, taking an image's ``alt`` from the output metadata when the cell gives none."""

    def render_image(self, data: MimeData) -> list[nodes.Element]:
        rendered = super().render_image(data)
        alt = data.output_metadata.get(data.mime_type, {}).get("alt")
        for node in rendered:
            if isinstance(node, nodes.image) and alt and "alt" not in node:
                node["alt"] = str(alt)
        return rendered
