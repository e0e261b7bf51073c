"""Closed-form costs against PyTorch's own counts, the lecture's numbers, and per-layer tables."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnbook
from cnnbook.calc import (
    GOOGLENET_INCEPTION_3A,
    Cost,
    conv_cost,
    count_mult_adds,
    count_parameters,
    depthwise_conv_cost,
    format_layer_table,
    inception_branch_costs,
    inception_cost,
    inception_out_channels,
    layer_table,
    linear_cost,
    pointwise_conv_cost,
    separable_conv_cost,
    separable_ratio,
    standard_conv_cost,
)

ALL = cnnbook.list_models()


def _measured(module: nn.Module, shape: tuple[int, ...]) -> Cost:
    """Parameters and mult-adds of one module as PyTorch counts them (FLOPs / 2)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = module(torch.zeros(1, *shape))
    params = sum(p.numel() for p in module.parameters())
    return Cost(params, counter.get_total_flops() // 2), out.shape  # type: ignore[return-value]


# ---- closed forms == FlopCounterMode on real layers ---------------------------------------------------

GRID = [
    (k, c_in, c_out, size, stride)
    for k in (1, 3, 5, 7)
    for c_in, c_out in ((3, 8), (16, 4), (12, 24))
    for size in (7, 16)
    for stride in (1, 2)
]


@pytest.mark.parametrize("k,c_in,c_out,size,stride", GRID)
def test_standard_conv_matches_pytorch(k: int, c_in: int, c_out: int, size: int, stride: int) -> None:
    for bias in (False, True):
        conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=bias)
        measured, out = _measured(conv, (c_in, size, size))
        assert standard_conv_cost(k, c_in, c_out, out[2], out[3], bias=bias) == measured


@pytest.mark.parametrize("k,c_in,c_out,size,stride", GRID)
def test_depthwise_pointwise_and_grouped_match_pytorch(k: int, c_in: int, c_out: int, size: int, stride: int) -> None:
    depthwise = nn.Conv2d(c_in, c_in, k, stride, k // 2, groups=c_in, bias=False)
    measured, out = _measured(depthwise, (c_in, size, size))
    assert depthwise_conv_cost(k, c_in, out[2], out[3]) == measured
    pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
    assert pointwise_conv_cost(c_in, c_out, size, size) == _measured(pointwise, (c_in, size, size))[0]
    separable = nn.Sequential(depthwise, nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False))
    assert separable_conv_cost(k, c_in, c_out, out[2], out[3]) == _measured(separable.eval(), (c_in, size, size))[0]
    groups = math.gcd(c_in, c_out)
    grouped = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups)
    measured, out = _measured(grouped, (c_in, size, size))
    assert conv_cost(k, c_in, c_out, out[2], out[3], groups=groups, bias=True) == measured


def test_factorised_kernels_and_linear_match_pytorch() -> None:
    conv = nn.Conv2d(8, 16, (1, 7), padding=(0, 3), bias=False)  # Inception-v3's 1x7
    assert conv_cost((1, 7), 8, 16, 9, 9) == _measured(conv, (8, 9, 9))[0]
    assert linear_cost(400, 120) == _measured(nn.Linear(400, 120), (400,))[0]


# ---- the lecture's numbers ----------------------------------------------------------------------------


def test_mobilenet_worked_example() -> None:
    """6x6x3 input, 3x3 kernels, 5 filters, 4x4 output."""
    standard = standard_conv_cost(3, 3, 5, 4, 4)
    depthwise = depthwise_conv_cost(3, 3, 4, 4)
    pointwise = pointwise_conv_cost(3, 5, 4, 4)
    assert standard.mult_adds == 3 * 3 * 3 * 4 * 4 * 5 == 2160
    assert depthwise.mult_adds == 432
    assert pointwise.mult_adds == 240
    assert separable_conv_cost(3, 3, 5, 4, 4).mult_adds == 672 == (depthwise + pointwise).mult_adds
    assert 672 / 2160 == pytest.approx(separable_ratio(3, 5)) == pytest.approx(1 / 5 + 1 / 9)
    assert round(672 / 2160, 2) == 0.31
    # parameters: K*K*M*N vs K*K*M + M*N
    assert standard.params == 135 and separable_conv_cost(3, 3, 5, 4, 4).params == 27 + 15


def test_separable_ratio_for_512_channels_is_about_9x() -> None:
    ratio = separable_ratio(3, 512)
    assert ratio == pytest.approx(1 / 512 + 1 / 9)
    assert 8.5 < 1 / ratio < 9
    big = separable_conv_cost(3, 512, 512, 14, 14).ratio_to(standard_conv_cost(3, 512, 512, 14, 14))
    assert big == pytest.approx((ratio, ratio))


def test_inception_table_of_the_lecture() -> None:
    """192 channels in, 256 out, 28x28: inception 0.16M / 128M, 3x3 0.44M / 346M, 5x5 1.22M / 963M."""
    assert inception_out_channels(192, GOOGLENET_INCEPTION_3A) == 256
    block = inception_cost(192, 28, 28, GOOGLENET_INCEPTION_3A)
    conv3 = standard_conv_cost(3, 192, 256, 28, 28)
    conv5 = standard_conv_cost(5, 192, 256, 28, 28)
    assert block == Cost(163_328, 128_049_152)
    for cost, params_m, madds_m in ((block, 0.16, 128), (conv3, 0.44, 346), (conv5, 1.22, 963)):
        assert abs(cost.params / 1e6 - params_m) < 0.01
        assert abs(cost.mult_adds / 1e6 - madds_m) < 1
    branches = inception_branch_costs(192, 28, 28, GOOGLENET_INCEPTION_3A)
    assert [b.params for b in branches] == [12_288, 18_432 + 110_592, 3_072 + 12_800, 6_144]
    assert sum(branches) == block


def test_inception_cost_matches_the_registered_block() -> None:
    """GoogLeNet's block 3a, counted by PyTorch (paper: 5x5 branch; torchvision: 3x3 there)."""
    for kernel in (3, 5):  # torchvision's 3x3 and the paper's 5x5 in the third branch
        model = cnnbook.get_model("googlenet", aux_logits=False, branch3_kernel=kernel)
        rows = [r for r in layer_table(model, (3, 224, 224)) if r.name.startswith("inception3a.")]
        convs = Cost(sum(r.params for r in rows if r.type == "Conv2d"), sum(r.mult_adds for r in rows))
        spec = [[(1, 64)], [(1, 96), (3, 128)], [(1, 16), (kernel, 32)], ["pool", (1, 32)]]
        assert convs == inception_cost(192, 28, 28, spec)
    assert spec == GOOGLENET_INCEPTION_3A


def test_cost_arithmetic_and_errors() -> None:
    assert Cost(1, 2) + Cost(3, 4) == Cost(4, 6)
    assert 3 * Cost(1, 2) == Cost(3, 6) == Cost(1, 2) * 3
    assert sum([Cost(1, 1), Cost(2, 2)]) == Cost(3, 3)
    with pytest.raises(ValueError, match="c_in"):
        standard_conv_cost(3, 0, 8, 4, 4)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv_cost(3, 8, 8, 4, 4, groups=3)
    with pytest.raises(ValueError, match="branch"):
        inception_cost(192, 28, 28, [["pool"]])


# ---- counting on built networks -------------------------------------------------------------------------


def test_counts_of_lenet() -> None:
    assert count_parameters("lenet5") == 61_706
    # C1 6*25*28*28 + C3 16*6*25*10*10 + 400*120 + 120*84 + 84*10
    assert count_mult_adds("lenet5") == 117_600 + 240_000 + 48_000 + 10_080 + 840


def test_trainable_only() -> None:
    model = cnnbook.get_model("lenet5")
    for p in model.features.parameters():
        p.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - (156 + 2416)


def test_layer_table_of_a_branching_module() -> None:
    class TwoPaths(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 8, 3, padding=1)
            self.b = nn.Conv2d(4, 8, 5, padding=2, bias=False)
            self.scale = nn.Parameter(torch.ones(1))  # a parameter of the container itself

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(x)], 1) * self.scale

    model = TwoPaths()
    rows = layer_table(model, (4, 10, 10))
    by_name = {r.name: r for r in rows}
    assert by_name["a"].mult_adds == 9 * 4 * 8 * 100 and by_name["b"].params == 25 * 4 * 8
    assert by_name[""].params == 1
    assert sum(r.params for r in rows) == count_parameters(model)
    assert sum(r.mult_adds for r in rows) == count_mult_adds(model, (4, 10, 10))
    assert "total" in format_layer_table(rows)


def test_torchvision_resnet18_mult_adds() -> None:
    """1.8 G mult-adds at 224, the figure of He et al. 2015 (Table 1) and torchvision's docs (1.81 GFLOPS)."""
    model = torchvision.models.resnet18()
    assert count_parameters(model) == 11_689_512
    assert round(count_mult_adds(model, (3, 224, 224)) / 1e9, 2) == 1.81


@pytest.mark.parametrize("name", ALL)
def test_layer_table_adds_up(name: str) -> None:
    info = cnnbook.get_model_info(name)
    model = cnnbook.get_model(name, **info.small_kwargs)
    rows = layer_table(model, info.small_input_size)
    assert sum(r.params for r in rows) == count_parameters(model)
    assert sum(r.mult_adds for r in rows) == count_mult_adds(model, info.small_input_size) > 0
    assert len({r.name for r in rows}) == len(rows)


@pytest.mark.parametrize("name", [n for n in ALL if cnnbook.get_model_info(n).torchvision])
def test_mult_adds_equal_torchvision_docs(name: str) -> None:
    """Our counts at the native size equal torchvision's published GFLOPS (which are mult-adds)."""
    info = cnnbook.get_model_info(name)
    weights = torchvision.models.get_model_weights(info.torchvision).DEFAULT
    model = cnnbook.get_model(name)
    params = {count_parameters(model)}
    if hasattr(model, "aux_logits"):  # torchvision counts GoogLeNet without its auxiliary heads
        params.add(count_parameters(cnnbook.get_model(name, aux_logits=False)))
    assert weights.meta["num_params"] in params
    c, h, w = info.input_size
    assert round(count_mult_adds(model, (c, h, w)) / 1e9, 2) == pytest.approx(weights.meta["_ops"], abs=0.011)


def test_vgg16_figures_of_the_lecture() -> None:
    model = cnnbook.get_model("vgg16")
    assert count_parameters(model) == 138_357_544
    madds = count_mult_adds(model, (3, 224, 224))
    assert round(madds / 1e9, 1) == 15.5
    rows = layer_table(model, (3, 224, 224))
    conv = sum(r.mult_adds for r in rows if r.type == "Conv2d")
    fc_params = sum(r.params for r in rows if r.type == "Linear")
    assert conv / madds > 0.99          # the compute lives in the convolutions
    assert fc_params / 138_357_544 > 0.89  # the parameters live in the dense layers
    first_fc = next(r for r in rows if r.type == "Linear")
    assert first_fc.params == 25088 * 4096 + 4096  # 102.8M: the largest single layer
