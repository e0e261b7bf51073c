"""Receptive fields: the recurrence, branching networks, and calculator == measured gradient support."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnbook
from cnnbook.calc import (
    Region,
    format_rf_table,
    input_region,
    layer_fields,
    probe_receptive_field,
    probe_receptive_fields,
    receptive_field_of,
    receptive_fields,
    rf_step,
    stack_receptive_field,
)
from cnnbook.calc.receptive_field import RFRow

ALL = cnnbook.list_models()


def _assert_probe_agrees(model: nn.Module, size: tuple[int, int, int], rows: list[RFRow], exact: bool = True) -> None:
    """The centre unit of each row sees exactly the region the calculator predicts (clipped to the image)."""
    probed = probe_receptive_fields(model, [r.name for r in rows], size)
    for row in rows:
        h, w = row.out_hw
        expected = row.covered if row.global_context else input_region(row, h // 2, w // 2, size[1:])
        got = probed[row.name]
        if exact:
            assert got == expected, f"{row.name}: calculator {expected}, gradient {got}"
        else:  # up-sampling: the calculator's region holds every unit's field
            assert expected.y0 <= got.y0 and got.y1 <= expected.y1, f"{row.name}: {expected} vs {got}"
            assert expected.x0 <= got.x0 and got.x1 <= expected.x1, f"{row.name}: {expected} vs {got}"


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, dilation), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class TwoPaths(nn.Module):
    """An inception-like block: a 3x3 path and a 1x1 -> 5x5 path, concatenated, plus a pooling path."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.path3 = _conv(c_in, c, 3)
        self.path5 = nn.Sequential(_conv(c_in, c, 1), _conv(c, c, 5))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), _conv(c_in, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.path3(x), self.path5(x), self.pool(x)], 1)


class Residual(nn.Module):
    """Two 3x3 convolutions plus the identity (or a strided 1x1 projection), ResNet's basic block."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        out += self.shortcut(x)  # in place, as torchvision's blocks do
        return torch.relu(out)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, c // 2), nn.Linear(c // 2, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))  # flattened summary, viewed back
        return x * s.view(x.shape[0], -1, 1, 1)


# ---- the recurrence ---------------------------------------------------------------------------------


def test_stacked_3x3_convolutions_see_5x5_and_7x7() -> None:
    assert [r for r, _, _ in stack_receptive_field([(3, 1, 1)] * 3)] == [3, 5, 7]
    model = nn.Sequential(*[_conv(3 if i == 0 else 8, 8, 3) for i in range(3)])
    rows = receptive_fields(model, (3, 32, 32))
    assert [r.size for r in rows] == [1, 3, 5, 7]
    assert [r.name for r in rows] == ["input", "0.0", "1.0", "2.0"]
    _assert_probe_agrees(model, (3, 32, 32), rows[1:])


def test_rf_step_is_the_lecture_recurrence() -> None:
    # AlexNet-style: 11x11/4 then 3x3/2 max-pool
    r, j, start = rf_step(1, 1, 0, kernel=11, stride=4, padding=2)
    assert (r, j, start) == (11, 4, 3)
    assert rf_step(r, j, start, kernel=3, stride=2) == (19, 8, 7)
    assert rf_step(1, 1, 0, kernel=3, dilation=2) == (5, 1, 2)
    with pytest.raises(ValueError, match="stride"):
        stack_receptive_field([(3, 0, 1)])


def test_lenet_fields() -> None:
    rows = receptive_fields("lenet5")
    assert [(r.kind, r.size, r.jump, r.start) for r in rows] == [
        ("input", 1, 1, 0.0), ("conv", 5, 1, 2.0), ("pool", 6, 2, 2.5), ("conv", 14, 2, 6.5), ("pool", 16, 4, 7.5)
    ]
    assert rows[-1].channels == 16 and rows[-1].out_hw == (5, 5)
    _assert_probe_agrees(cnnbook.get_model("lenet5"), (1, 32, 32), rows[1:])


def test_vgg_like_stack_matches_the_probe() -> None:
    layers: list[nn.Module] = []
    c = 3
    for n, width in ((2, 8), (2, 16), (3, 16)):
        for _ in range(n):
            layers.append(_conv(c, width, 3))
            c = width
        layers.append(nn.MaxPool2d(2))
    model = nn.Sequential(*layers)
    rows = receptive_fields(model, (3, 96, 96))
    assert [r.size for r in rows if r.kind == "pool"] == [6, 16, 44]
    _assert_probe_agrees(model, (3, 96, 96), rows[1:])


def test_branching_block_takes_the_largest_path() -> None:
    model = nn.Sequential(_conv(3, 8, 3), TwoPaths(8, 4), TwoPaths(12, 4))
    rows = receptive_fields(model, (3, 40, 40))
    assert [(r.name, r.kind, r.size) for r in rows] == [
        ("input", "input", 1), ("0.0", "conv", 3), ("1", "block", 7), ("2", "block", 11)
    ]
    assert rows[2].kernel == 5 and rows[2].stride == 1 and rows[2].padding == 2  # one equivalent 5x5 layer
    assert rows[2].channels == 12
    assert receptive_field_of(model, "1.path3.0", (3, 40, 40)).size == 5  # the 3x3 path alone
    every = ["0.0", "1.path3.0", "1.path5.1.0", "1.pool.0", "1", "2.path5.1.0", "2"]
    rows_every = [receptive_field_of(model, n, (3, 40, 40)) for n in every]
    _assert_probe_agrees(model, (3, 40, 40), rows_every)


def test_residual_stack_with_downsampling() -> None:
    model = nn.Sequential(_conv(3, 8, 3), Residual(8, 8), Residual(8, 16, stride=2), Residual(16, 16))
    rows = receptive_fields(model, (3, 48, 48))
    assert [r.size for r in rows] == [1, 3, 7, 13, 21]
    assert [r.jump for r in rows] == [1, 1, 1, 2, 2]
    assert rows[3].kind == "block" and rows[3].stride == 2
    _assert_probe_agrees(model, (3, 48, 48), rows[1:])


def test_dilated_and_factorised_kernels() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=2, dilation=2), nn.Conv2d(4, 4, (1, 7), padding=(0, 3)), nn.Conv2d(4, 4, (7, 1))
    )
    rows = receptive_fields(model, (1, 40, 40))
    assert rows[1].size == 5 and rows[1].dilation == 2
    assert rows[2].size == (5, 11) and rows[2].kernel == (1, 7) and rows[2].size_hw == (5.0, 11.0)
    assert rows[3].size == 11 and rows[3].out_hw == (34, 40)
    _assert_probe_agrees(model, (1, 40, 40), rows[1:])


def test_squeeze_excitation_marks_global_context() -> None:
    model = nn.Sequential(_conv(3, 8, 3), SqueezeExcite(8), _conv(8, 8, 3))
    rows = receptive_fields(model, (3, 24, 24))
    assert [r.global_context for r in rows] == [False, False, True, True]
    assert rows[2].size == 3 and rows[3].size == 5  # the local field keeps growing
    _assert_probe_agrees(model, (3, 24, 24), rows[1:])
    assert "+global" in format_rf_table(rows)


def test_pixels_dropped_by_a_stride_are_not_seen() -> None:
    """A 3x3/2 convolution over 8 pixels has units at 0..2, 2..4, 4..6: pixel 7 is never read."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, 2), nn.Conv2d(1, 1, 3, 1, 1))
    rows = receptive_fields(model, (1, 8, 8))
    assert rows[1].covered == Region(0, 7, 0, 7)
    assert input_region(rows[2], 2, 2, (8, 8)) == Region(2, 7, 2, 7)
    _assert_probe_agrees(model, (1, 8, 8), rows[1:])


@pytest.mark.parametrize("up", ["transposed", "nearest", "bilinear"])
def test_upsampling_regions_hold_the_measured_field(up: str) -> None:
    layer = (
        nn.ConvTranspose2d(4, 4, 2, 2) if up == "transposed" else nn.Upsample(scale_factor=2, mode=up)
    )
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 2, 1), layer, nn.Conv2d(4, 4, 3, 1, 1))
    rows = receptive_fields(model, (1, 64, 64))
    assert rows[3].kind == "upsample" and rows[3].jump == 2 and rows[3].out_hw == (32, 32)
    _assert_probe_agrees(model, (1, 64, 64), rows[1:], exact=False)
    for row in rows[3:]:  # at most one jump wider than the truth
        h, w = row.out_hw
        calc, got = input_region(row, h // 2, w // 2, (64, 64)), probe_receptive_field(model, row.name, (1, 64, 64))
        assert (calc.y1 - calc.y0) - (got.y1 - got.y0) <= 4


def test_input_region_and_errors() -> None:
    rows = receptive_fields("lenet5")
    assert input_region(rows[1], 0, 0, (32, 32)) == Region(0, 5, 0, 5)
    assert input_region(rows[4], 4, 4, (32, 32)) == Region(16, 32, 16, 32)
    with pytest.raises(ValueError, match="outside the 5x5 output"):
        input_region(rows[4], 5, 0, (32, 32))
    with pytest.raises(ValueError, match="features.0"):
        receptive_field_of("lenet5", "features.9")
    with pytest.raises(ValueError, match="input_size"):
        receptive_fields(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="outside"):
        probe_receptive_field("lenet5", "features.0", unit=(28, 0))


def test_torchvision_networks_with_functional_pooling() -> None:
    """torchvision's Inception-v3 pools with F.max_pool2d inside its blocks; ResNet-18's fields are known."""
    rows = {r.name: r for r in receptive_fields(torchvision.models.resnet18(), (3, 224, 224))}
    assert rows["layer4.1"].size == 435 and rows["layer4.1"].jump == 32
    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    size = (3, 139, 139)
    main = receptive_fields(model, size)
    assert [r.name for r in main][-3:] == ["Mixed_7b", "Mixed_7c", "avgpool"]
    _assert_probe_agrees(model, size, [r for r in main[1:] if r.name.startswith(("Conv2d", "Mixed_5", "Mixed_6a"))])


def test_layout_operations_of_torchvision_convnext() -> None:
    """ConvNeXt permutes to channels-last inside every block: the tracer follows H and W through
    ``permute`` (and the probe agrees), and a reshape that keeps H and W keeps the field."""
    model = torchvision.models.convnext_tiny()
    rows = {r.name: r for r in receptive_fields(model, (3, 64, 64))}
    assert rows["features.0.0"].size == 4 and rows["features.0.0"].jump == 4  # the 4x4 stride-4 stem
    assert rows["features.1.0"].size == 4 + 6 * 4 and rows["features.1.0"].channels == 96  # + one 7x7 depthwise
    assert rows["features.7.2"].jump == 32
    _assert_probe_agrees(model, (3, 64, 64), [rows["features.1.0"], rows["features.3.2"]])

    class Shuffle(nn.Module):  # ShuffleNet's channel shuffle: reshape, transpose, reshape back
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            return x.reshape(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

    chain = nn.Sequential(nn.Conv2d(4, 4, 3), Shuffle(), nn.Conv2d(4, 4, 3))
    assert [r.size for r in receptive_fields(chain, (4, 16, 16))] == [1, 3, 5]


def test_known_fields_of_registered_networks() -> None:
    if "vgg16" in ALL:
        rows = {r.name: r for r in receptive_fields("vgg16")}
        pools = [r for r in rows.values() if r.kind == "pool"]
        assert pools[4].size == 212 and pools[4].jump == 32  # pool5
    if "alexnet" in ALL:
        pools = [r for r in receptive_fields("alexnet") if r.kind == "pool"]
        assert pools[2].size == 195  # pool5 of AlexNet sees 195x195 pixels


# ---- every registered network -------------------------------------------------------------------------


def _upsamples(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.ConvTranspose2d, nn.Upsample)) for m in model.modules())


@pytest.mark.parametrize("name", ALL)
def test_every_network(name: str) -> None:
    """Fields along the main path and at every stage; calculator == probe at the small input size,
    on up to 8 main-path layers spread over the network (always including the last)."""
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs)
    size = info.small_input_size
    every = layer_fields(model, size)
    rows = receptive_fields(model, size)
    assert rows[0].kind == "input" and len(rows) >= 3
    assert all(r.channels > 0 and min(r.out_hw) >= 1 for r in rows)
    assert all(every[r.name] == r for r in rows)
    sizes = [max(r.size_hw) for r in rows]
    if not _upsamples(model):
        assert sizes == sorted(sizes), "fields only grow along the main path"
    assert len({r.name for r in rows}) == len(rows)
    for stage in getattr(model, "feature_info", []):  # the stages the transfer-learning chapter names
        assert every[stage.module].jump_hw[0] == stage.reduction, stage
    step = max(1, len(rows) // 7)
    chosen = rows[1::step][:7]
    chosen += [rows[-1]] if rows[-1] not in chosen else []
    _assert_probe_agrees(model, size, chosen, exact=not _upsamples(model))
