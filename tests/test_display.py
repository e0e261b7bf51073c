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
