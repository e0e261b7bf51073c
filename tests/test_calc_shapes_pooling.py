"""Output-size formulas against PyTorch, the shape printout, and the pooling-overlap calculator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnbook
from cnnbook.calc import (
    conv_output_size,
    coverage,
    format_shape_table,
    layer_shapes,
    overlap,
    pool1d,
    pool2d,
    pool_output_size,
    smallest_input_side,
    pool_windows,
)

LECTURE = [0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0]


# ---- conv_output_size / pool_output_size ------------------------------------------------------------


@pytest.mark.parametrize(
    "size,k,s,p,d", [(n, k, s, p, d) for n in (5, 7, 32, 33) for k in (1, 3, 5, 7) for s in (1, 2, 3) for p in (0, 1, 3) for d in (1, 2) if n + 2 * p >= d * (k - 1) + 1]
)
def test_conv_output_size_matches_pytorch(size: int, k: int, s: int, p: int, d: int) -> None:
    conv = nn.Conv2d(1, 1, k, s, p, d)
    out = conv(torch.zeros(1, 1, size, size))
    assert conv_output_size(size, k, s, p, d) == out.shape[-1]


def test_conv_output_size_lecture_examples() -> None:
    assert conv_output_size(32, 5) == 28          # LeNet-5 C1
    assert conv_output_size(224, 11, 4, 2) == 55  # torchvision AlexNet conv1
    assert conv_output_size(227, 11, 4) == 55     # the paper's AlexNet conv1 on 227x227
    assert conv_output_size(224, 3, 1, 1) == 224  # VGG's "same" 3x3
    assert conv_output_size(6, 3) == 4            # MobileNet worked example


def test_conv_output_size_errors_name_the_values() -> None:
    with pytest.raises(ValueError, match=r"kernel of 7.*size 5"):
        conv_output_size(5, 7)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(5, 3, padding=-1)


@pytest.mark.parametrize(
    "size,k,s,p,ceil", [(n, k, s, p, c) for n in (6, 7, 13, 14, 55, 112) for k in (2, 3) for s in (1, 2, 3) for p in (0, 1) for c in (False, True) if p <= k // 2]
)
def test_pool_output_size_matches_pytorch(size: int, k: int, s: int, p: int, ceil: bool) -> None:
    out = F.max_pool2d(torch.zeros(1, 1, size, size), k, s, p, ceil_mode=ceil)
    assert pool_output_size(size, k, s, p, ceil) == out.shape[-1]


@pytest.mark.parametrize("size,k,s,p,ceil", [(n, k, s, p, c) for n in (1, 2, 3) for k in (3, 4, 5) for s in (1, 2, 3)
                                              for p in (0, 1, 2) for c in (False, True) if p <= k // 2])
def test_pool_output_size_on_inputs_smaller_than_the_window(size: int, k: int, s: int, p: int, ceil: bool) -> None:
    """With ceil_mode a window may overhang a tiny input (NiN's last pool on a 2x2 map gives 1x1); where
    PyTorch refuses, the calculator raises a ValueError instead."""
    try:
        expected = F.max_pool2d(torch.zeros(1, 1, size, size), k, s, p, ceil_mode=ceil).shape[-1]
    except RuntimeError:
        with pytest.raises(ValueError, match="does not fit"):
            pool_output_size(size, k, s, p, ceil)
    else:
        assert pool_output_size(size, k, s, p, ceil) == expected


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper", "zfnet", "nin", "vgg11"])
def test_smallest_input_side_is_the_smallest_that_runs(name: str) -> None:
    features = cnnbook.get_model(name).features.eval()
    side = smallest_input_side(features)
    with torch.no_grad():
        assert min(features(torch.zeros(1, 3, side, side)).shape[-2:]) >= 1
        with pytest.raises(RuntimeError):
            features(torch.zeros(1, 3, side - 1, side - 1))


def test_pool_output_size_defaults_stride_to_kernel() -> None:
    assert pool_output_size(28, 2) == 14
    assert pool_output_size(112, 3, 2, ceil_mode=True) == 56  # GoogLeNet's ceil-mode pools
    assert pool_output_size(112, 3, 2) == 55


def test_pool_output_size_rejects_bad_padding() -> None:
    with pytest.raises(ValueError, match="padding"):
        pool_output_size(10, 3, 1, padding=2)


# ---- layer_shapes ------------------------------------------------------------------------------------


def test_lenet_shape_walkthrough() -> None:
    rows = layer_shapes("lenet5")
    shapes = {r.name: r.output_shape for r in rows}
    assert shapes["features.0"] == (1, 6, 28, 28)
    assert shapes["features.2"] == (1, 6, 14, 14)
    assert shapes["features.3"] == (1, 16, 10, 10)
    assert shapes["features.5"] == (1, 16, 5, 5)
    assert shapes["classifier.4"] == (1, 10)
    modern = {r.name: r.output_shape for r in layer_shapes("lenet5_modern")}
    assert modern["features.5"] == (1, 16, 6, 6)  # why fc1 has 16*6*6 inputs
    text = format_shape_table(rows)
    assert "Conv2d" in text and "(1, 6, 28, 28)" in text
    assert text.splitlines()[0].split() == ["layer", "type", "output", "shape"]


def test_layer_shapes_restores_training_mode_and_needs_a_size_for_plain_modules() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.MaxPool2d(2))
    model.train()
    rows = layer_shapes(model, (3, 16, 16))
    assert [r.type for r in rows] == ["Conv2d", "BatchNorm2d", "MaxPool2d"]
    assert rows[-1].output_shape == (1, 8, 8, 8)
    assert model.training
    with pytest.raises(ValueError, match="input_size"):
        layer_shapes(model)


@pytest.mark.parametrize("name", cnnbook.list_models())
def test_layer_shapes_of_every_network(name: str) -> None:
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs)
    rows = layer_shapes(model, info.small_input_size)
    assert rows and all(r.output_shape[0] == 1 for r in rows)
    # The same table as torchinfo's summary (the tool the course's students meet elsewhere): every leaf
    # layer, in order, with the same type and output shape; and the same parameter total.
    import torchinfo

    summary = torchinfo.summary(model.eval(), input_size=(1, *info.small_input_size), verbose=0)
    theirs = [(layer.class_name, tuple(layer.output_size)) for layer in summary.summary_list if layer.is_leaf_layer]
    assert [(r.type, tuple(r.output_shape)) for r in rows] == theirs
    assert summary.total_params == sum(p.numel() for p in model.parameters())


# ---- pooling windows and overlap ---------------------------------------------------------------------


def test_lecture_example_non_overlapping() -> None:
    assert pool1d(LECTURE, window=2, stride=2) == [0, 5, 6, 0, 3, 4, 0]


def test_lecture_example_overlapping() -> None:
    assert pool1d(LECTURE, window=3, stride=2) == [5, 5, 6, 3, 3, 4, 0]


def test_windows_and_overlap() -> None:
    assert pool_windows(14, 2, 2) == [(i, i + 2) for i in range(0, 14, 2)]
    assert pool_windows(14, 3, 2)[:2] == [(0, 3), (2, 5)]
    assert pool_windows(14, 3, 2)[-1] == (12, 14)  # kept, cut short: same output size as z = s = 2
    assert len(pool_windows(14, 3, 2, ceil_mode=False)) == 6
    assert overlap(3, 2) == 1 and overlap(2, 2) == 0 and overlap(2, 3) == 0
    assert coverage(7, 3, 2) == [1, 1, 2, 1, 2, 1, 1]
    assert coverage(7, 2, 3, ceil_mode=False) == [1, 1, 0, 1, 1, 0, 0]


@pytest.mark.parametrize(
    "length,window,stride,ceil", list(itertools.product((5, 8, 14), (1, 2, 3, 4), (1, 2, 3), (False, True)))
)
def test_pool1d_matches_pytorch(length: int, window: int, stride: int, ceil: bool) -> None:
    if window > length:
        return
    x = torch.randn(length)
    for mode, fn in (("max", F.max_pool1d), ("avg", F.avg_pool1d)):
        expected = fn(x.view(1, 1, -1), window, stride, ceil_mode=ceil).flatten().tolist()
        assert pool1d(x.tolist(), window, stride, mode, ceil) == pytest.approx(expected, abs=1e-6)


def test_pool2d_matches_pytorch_and_accepts_lists() -> None:
    image = np.arange(49, dtype=float).reshape(7, 7) % 5
    for window, stride in ((2, 2), (3, 2), ((3, 2), (2, 1))):
        for ceil in (False, True):
            expected = F.max_pool2d(torch.tensor(image)[None, None], window, stride, ceil_mode=ceil)[0, 0].numpy()
            np.testing.assert_allclose(pool2d(image, window, stride, ceil_mode=ceil), expected)
    assert pool2d([[1, 2], [3, 4]], 2, 2, mode="avg").tolist() == [[2.5]]


def test_pooling_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="window"):
        pool_windows(5, 0, 1)
    with pytest.raises(ValueError, match="stride"):
        pool1d([1, 2, 3], 2, 0)
    with pytest.raises(ValueError, match=r"window \(6\) is longer than the input \(5\)"):
        pool1d([1, 2, 3, 4, 5], 6, 1)
    with pytest.raises(ValueError, match="mode"):
        pool1d([1, 2, 3], 2, 1, mode="median")
    with pytest.raises(ValueError, match="two-dimensional"):
        pool2d([1, 2, 3], 2, 1)
    with pytest.raises(ValueError, match="stride"):
        overlap(3, 0)
