"""Architecture diagrams: every registered network can be drawn, and the legend shows the whole notation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

import cnnbook
from cnnbook.diagrams import NOTATION, block_graph, draw_block, draw_model, draw_notation_legend, layer_rows


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [fig._suptitle.get_text() if fig._suptitle else ""]


def test_legend_has_every_notation_entry() -> None:
    fig = draw_notation_legend()
    texts = _texts(fig)
    for style in NOTATION.values():
        assert style.name in texts and style.meaning in texts
    plt.close(fig)


def test_lenet_rows() -> None:
    rows = layer_rows(cnnbook.get_model("lenet5_modern"))
    assert [r.kind for r in rows] == ["input", "conv", "pool", "conv", "pool", "other", "dense", "dense", "dense"]
    assert rows[1].label == "conv 3×3, 6" and rows[1].tags == [("activation", "ReLU")] and rows[1].shape == (6, 30, 30)
    assert rows[4].shape == (16, 6, 6) and rows[5].label == "flatten" and rows[5].shape == (576,)
    assert rows[-1].shape == (10,)
    classic = layer_rows("lenet5")
    assert classic[2].label == "avg pool 2×2, /2" and classic[4].shape == (16, 5, 5)


def test_repeated_blocks_collapse() -> None:
    rows = layer_rows("resnet50")
    blocks = [r for r in rows if r.kind == "module"]
    assert [r.repeat for r in blocks] == [3, 4, 6, 3]
    assert blocks[-1].shape == (2048, 7, 7)


def test_blocks_with_different_inner_widths_stay_apart() -> None:
    # GoogLeNet's 4a, 4b and 4c all output 512 channels, but their branches differ (4a: 192, 96->208,
    # 16->48, 64; 4b: 160, 112->224, 24->64, 64; 4c: 128, 128->256, 24->64, 64): three rows, not one x3.
    blocks = [r for r in layer_rows("googlenet") if r.kind == "module"]
    assert [r.shape[0] for r in blocks] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert all(r.repeat == 1 for r in blocks)
    assert blocks[2].widths != blocks[3].widths != blocks[4].widths
    # Inception-v3's four 17x17 blocks: 128, 160, 160 and 192 channels in their 7x7 factorisations.
    v3 = [(r.label, r.repeat) for r in layer_rows("inception_v3") if r.label == "InceptionC"]
    assert v3 == [("InceptionC", 1), ("InceptionC", 2), ("InceptionC", 1)]


@pytest.mark.parametrize("name", cnnbook.list_models())
def test_every_registered_model_draws(name: str) -> None:
    fig = draw_model(name)
    assert fig.axes and any(name in t for t in _texts(fig))
    plt.close(fig)


def test_draw_model_on_a_built_model_and_wrapping() -> None:
    model = cnnbook.get_model("vgg11", num_classes=10)
    before = [p.clone() for p in model.parameters()][:2]
    fig = draw_model(model, (3, 64, 64), max_rows=5, title="VGG-11")
    assert "VGG-11" in _texts(fig) and "continues →" in _texts(fig)
    assert model.training and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    plt.close(fig)
    with pytest.raises(ValueError, match="input_size"):
        draw_model(nn.Sequential(nn.Conv2d(3, 4, 3)))


def test_block_graph_shows_branches_and_merges() -> None:
    googlenet = cnnbook.get_model("googlenet")
    nodes = block_graph(googlenet.inception3a, (192, 28, 28))
    merges = [n for n in nodes if n.kind == "merge"]
    assert len(merges) == 1 and merges[0].label == "C" and len(merges[0].inputs) == 4
    assert merges[0].shape == (256, 28, 28)
    resnet = cnnbook.get_model("resnet18")
    nodes = block_graph(resnet.layer1[0], (64, 56, 56))
    add = next(n for n in nodes if n.kind == "merge")
    assert add.label == "+" and "x" in add.inputs  # the identity shortcut
    fig = draw_block(resnet.layer2[0], (64, 56, 56))
    plt.close(fig)


def test_describe_rows_reads_every_row_after_the_input() -> None:
    from cnnbook.diagrams import describe_rows, layer_rows

    rows = layer_rows("vgg16", (3, 224, 224))
    text = describe_rows(rows)
    parts = text.split("; ")
    assert len(parts) == len(rows) - 1  # one phrase per row, the input row left out
    assert parts[-1].endswith("giving " + "×".join(map(str, rows[-1].shape)))
    assert any(f" ×{row.repeat} giving" in text for row in rows if row.repeat > 1)
