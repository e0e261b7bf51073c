"""The shared display helper and the meta-device builder the chapters use."""

import pytest
import torch

import cnnbook
from cnnbook.display import format_cell, html_table, looks_numeric


def test_cells_are_formatted_and_numbers_right_aligned() -> None:
    table = html_table(["year", "parameters", "share", "note"], [[1998, 61_706, 0.25, "<b>total</b>"]]).data
    assert "<td style=\"text-align: right\">1998</td>" in table  # a year keeps no separator
    assert ">61,706<" in table
    assert ">0.25<" in table
    assert "<td><b>total</b></td>" in table  # strings are the chapter's own markup


@pytest.mark.parametrize("text", ["61,706", "12.3%", "0.54 M", "−0.25", "×8.9", "3.1e9", "1.2 GB", "48 ms"])
def test_formatted_numbers_are_right_aligned(text: str) -> None:
    assert looks_numeric(text)
    assert f'<td style="text-align: right">{text}</td>' in html_table(["x"], [[text]]).data


@pytest.mark.parametrize("text", ["conv1", "3x3 conv, 64", "<b>12</b>", "", "ResNet-50", "1998 (LeNet)"])
def test_words_stay_left_aligned(text: str) -> None:
    assert not looks_numeric(text)


def test_non_string_objects_are_escaped_and_floats_follow_the_format() -> None:
    class Named:
        def __str__(self) -> str:
            return "<lambda>"

    assert format_cell(Named()) == "&lt;lambda&gt;"
    assert format_cell(0.123456, ".1%") == "12.3%"
    assert format_cell(True) == "True"


def test_a_ragged_row_is_an_error_that_names_it() -> None:
    with pytest.raises(ValueError, match="row 1 has 3 cells but the header has 2"):
        html_table(["a", "b"], [[1, 2], [1, 2, 3]])


def test_meta_models_count_like_real_ones_without_storage() -> None:
    meta = cnnbook.get_meta_model("vgg11")
    assert all(p.device.type == "meta" for p in meta.parameters())
    real = cnnbook.get_model("lenet5")
    assert sum(p.numel() for p in cnnbook.get_meta_model("lenet5").parameters()) == sum(
        p.numel() for p in real.parameters())
    assert torch.get_default_device().type == "cpu"  # the context manager does not leak


# ---- figures with alt text ---------------------------------------------------------------------------
def test_show_figure_emits_the_png_with_its_alt_text(monkeypatch) -> None:
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnbook import display as display_module

    shown = []
    monkeypatch.setattr(display_module, "display", lambda data, metadata, raw: shown.append((data, metadata, raw)))
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    display_module.show_figure(fig, "Test accuracy rises   from 10% to 90% over five epochs.")
    (data, metadata, raw), = shown
    alt = "Test accuracy rises from 10% to 90% over five epochs."
    assert raw and data["text/plain"] == alt and metadata == {"image/png": {"alt": alt}}
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend does not show it a second time


@pytest.mark.parametrize("alt", ["", "   ", "figure.png", "../_images/1cff.png", "1cff8e0a9b2c3d4e5f60718293a4b5c6",
                                 "accuracy"])
def test_alt_text_that_describes_nothing_is_refused(alt: str) -> None:
    from cnnbook.display import check_alt_text

    with pytest.raises(ValueError, match="does not describe the figure"):
        check_alt_text(alt)


def test_the_book_renderer_copies_alt_text_from_the_output_metadata() -> None:
    pytest.importorskip("myst_nb")
    from importlib.metadata import entry_points

    from cnnbook.sphinx_alt import AltTextRenderer

    (entry,) = [ep for ep in entry_points().select(group="myst_nb.renderers") if ep.name == "cnnbook"]
    assert entry.load() is AltTextRenderer  # what _config.yml's nb_render_plugin: cnnbook selects
