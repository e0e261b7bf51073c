"""Chapter 10 (U-Net) and chapter 11 (MobileNet v1 and v2): the numbers the lectures quote, recomputed.

Mult-adds are counted on real layers with forward hooks: a convolution costs
``(C_in / groups) * K_h * K_w`` multiply-adds per output value, a linear layer ``in * out``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnbook
from cnnbook.layers import (
    DepthwiseSeparableConv, DoubleConv, InvertedResidual, SqueezeExcite, UNetDown, UNetUp, center_crop, make_divisible,
)
from cnnbook.models import mobilenet_v1, mobilenet_v2, unet


def mult_adds(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of a single image, summed over Conv2d and Linear layers."""
    total = 0

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        per_image = out.numel() // out.shape[0]
        if isinstance(m, nn.Conv2d):
            total += per_image * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += per_image * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(x[:1])
    model.train(was_training)
    for h in handles:
        h.remove()
    return total


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- depthwise-separable convolution ------------------------------------------------------------------
def test_worked_example_costs() -> None:
    """6x6x3 input, 3x3 filters, 5 filters, no padding, 4x4 output: 2160 vs 432 + 240 = 672."""
    x = torch.randn(1, 3, 6, 6)
    standard = nn.Conv2d(3, 5, kernel_size=3, bias=False)
    separable = DepthwiseSeparableConv(3, 5, kernel_size=3, padding=0)
    assert standard(x).shape == separable(x).shape == (1, 5, 4, 4)
    assert mult_adds(standard, x) == 3 * 3 * 3 * 4 * 4 * 5 == 2160
    assert mult_adds(separable.depthwise, x) == 3 * 3 * 4 * 4 * 3 == 432
    depthwise_out = separable.depthwise(x)
    assert depthwise_out.shape == (1, 3, 4, 4)  # one filter per input channel: 3 channels out
    assert mult_adds(separable.pointwise, depthwise_out) == 1 * 1 * 3 * 4 * 4 * 5 == 240
    assert mult_adds(separable, x) == 672
    assert math.isclose(672 / 2160, 1 / 5 + 1 / 9)  # ratio 1/N + 1/K^2 = 0.31


def test_depthwise_has_one_filter_per_input_channel() -> None:
    layer = DepthwiseSeparableConv(32, 64, stride=2)
    dw, pw = layer.depthwise[0], layer.pointwise[0]
    assert isinstance(dw, nn.Conv2d) and dw.groups == 32 and dw.weight.shape == (32, 1, 3, 3)
    assert pw.kernel_size == (1, 1) and pw.weight.shape == (64, 32, 1, 1)
    assert isinstance(layer.depthwise[1], nn.BatchNorm2d) and isinstance(layer.depthwise[2], nn.ReLU)
    assert layer(torch.randn(2, 32, 16, 16)).shape == (2, 64, 8, 8)


@pytest.mark.parametrize("k,m,n", [(3, 3, 5), (3, 512, 512), (5, 16, 32)])
def test_separable_parameters_and_cost_ratio(k: int, m: int, n: int) -> None:
    """Weights: standard K*K*M*N, separable K*K*M + M*N; mult-adds ratio 1/N + 1/K^2."""
    layer = DepthwiseSeparableConv(m, n, kernel_size=k)
    weights = layer.depthwise[0].weight.numel() + layer.pointwise[0].weight.numel()
    assert weights == k * k * m + m * n
    assert nn.Conv2d(m, n, k, bias=False).weight.numel() == k * k * m * n
    d = 8
    x = torch.randn(1, m, d, d)
    ratio = mult_adds(layer, x) / mult_adds(nn.Conv2d(m, n, k, padding=k // 2, bias=False), x)
    assert math.isclose(ratio, 1 / n + 1 / k**2)


def test_512_channels_are_about_9x_cheaper() -> None:
    assert 8.5 < 1 / (1 / 512 + 1 / 9) < 9


# ---- MobileNet v1 ------------------------------------------------------------------------------------
def test_mobilenet_v1_exact_figures() -> None:
    """1.0 MobileNet-224: 4,231,976 parameters and 568,740,352 mult-adds (the paper: 4.2M, 569M)."""
    model = mobilenet_v1()
    assert numel(model) == 4_231_976
    x = torch.randn(1, 3, 224, 224)
    assert mult_adds(model, x) == 568_740_352
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(x)
    assert counter.get_total_flops() // 2 == 568_740_352
    assert model.forward_features(x).shape == (1, 1024, 7, 7)
    assert len(model.features) == 14  # conv s2 + 13 depthwise-separable layers


# width, resolution, paper mult-adds (millions), paper parameters (millions) from Tables 6, 7 and 9.
V1_TABLE = [
    (1.0, 224, 569, "4.2"),
    (0.75, 224, 325, "2.6"),
    (0.5, 224, 149, "1.3"),
    (0.25, 224, 41, "0.5"),
    (1.0, 192, 418, "4.2"),
    (1.0, 160, 290, "4.2"),
    (1.0, 128, 186, "4.2"),
    (0.5, 160, 76, "1.32"),
]


@pytest.mark.parametrize("width,resolution,paper_madds,paper_params", V1_TABLE)
def test_mobilenet_v1_reproduces_the_paper(width: float, resolution: int, paper_madds: int, paper_params: str) -> None:
    model = mobilenet_v1(width_mult=width)
    madds = mult_adds(model, torch.randn(1, 3, resolution, resolution)) / 1e6
    assert math.isclose(madds, paper_madds, rel_tol=0.01), madds
    params = numel(model) / 1e6
    decimals = len(paper_params.split(".")[1])  # the paper rounds: allow that rounding plus 1%
    assert abs(params - float(paper_params)) <= 0.5 * 10**-decimals + 0.01 * float(paper_params), params


@pytest.mark.parametrize("width,paper_params", [(1.0, 3.3), (0.75, 1.9)])
def test_mobilenet_v1_stanford_dogs_parameters(width: float, paper_params: float) -> None:
    """Table 10 (120 dog breeds): the smaller classifier gives 3.3M and 1.9M parameters."""
    assert round(numel(mobilenet_v1(num_classes=120, width_mult=width)) / 1e6, 1) == paper_params


def test_mobilenet_v1_width_rounding() -> None:
    widths = [layer.out_channels for layer in mobilenet_v1(width_mult=0.25).features[1:]]
    assert widths[0] == 16 and widths[-1] == 256
    assert mobilenet_v1(width_mult=0.01).features[0].out_channels == 8  # at least 8 channels


@pytest.mark.parametrize("builder", [mobilenet_v1, mobilenet_v2])
@pytest.mark.parametrize("width", [0, -0.5])
def test_width_multiplier_must_be_positive(builder, width: float) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="width_mult"):
        builder(width_mult=width)


@pytest.mark.parametrize("builder", [mobilenet_v1, mobilenet_v2])
def test_resolution_that_shrinks_to_nothing_is_refused(builder) -> None:  # type: ignore[no-untyped-def]
    model = builder(width_mult=0.25).eval()
    assert model.min_input_size == 1  # padded convolutions: a 1x1 input still gives a 1x1 map
    with torch.no_grad():
        assert model(torch.randn(1, 3, 1, 1)).shape == (1, 1000)
    with pytest.raises(ValueError, match="at least 1x1"):
        model(torch.randn(1, 3, 0, 0))


def test_mobilenet_v1_small_configuration_learns() -> None:
    """Width 0.25 on 3x64x64: a few SGD steps fit a fixed batch (seconds on a CPU)."""
    info = cnnbook.get_model_info("mobilenet_v1")
    model = cnnbook.get_model("mobilenet_v1", **info.small_kwargs)
    x, y = torch.randn(8, *info.small_input_size), torch.arange(8) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- MobileNet v2 ------------------------------------------------------------------------------------
def test_inverted_residual_expands_3_to_18_and_back() -> None:
    block = InvertedResidual(3, 3, stride=1, expand_ratio=6)
    expand, depthwise, project, bn = block.conv
    assert expand[0].out_channels == 18 and isinstance(expand[2], nn.ReLU6)
    assert depthwise[0].groups == 18 and depthwise[0].kernel_size == (3, 3)
    assert project.in_channels == 18 and project.out_channels == 3 and project.kernel_size == (1, 1)
    assert isinstance(bn, nn.BatchNorm2d)  # linear bottleneck: no activation after the projection
    x = torch.randn(2, 3, 8, 8)
    hidden = expand(x)
    assert hidden.shape == (2, 18, 8, 8)
    assert depthwise(hidden).shape == (2, 18, 8, 8)
    block.eval()
    assert block.use_res_connect
    torch.testing.assert_close(block(x), x + block.conv(x))


@pytest.mark.parametrize(
    "in_channels,out_channels,stride,residual",
    [(3, 3, 1, True), (3, 3, 2, False), (3, 4, 1, False), (24, 32, 2, False), (32, 32, 1, True)],
)
def test_residual_only_when_shapes_match(in_channels: int, out_channels: int, stride: int, residual: bool) -> None:
    block = InvertedResidual(in_channels, out_channels, stride, expand_ratio=6).eval()
    assert block.use_res_connect is residual
    x = torch.randn(2, in_channels, 8, 8)
    assert block(x).shape == (2, out_channels, 8 // stride, 8 // stride)
    if not residual:
        torch.testing.assert_close(block(x), block.conv(x))


def test_inverted_residual_without_expansion_and_bad_stride() -> None:
    assert len(InvertedResidual(32, 16, 1, expand_ratio=1).conv) == 3  # t = 1: no 1x1 expansion
    with pytest.raises(ValueError, match="stride"):
        InvertedResidual(8, 8, 3, expand_ratio=6)
    with pytest.raises(ValueError, match="expand_ratio"):
        InvertedResidual(8, 8, 1, expand_ratio=0)


def test_inverted_residual_loads_torchvision_state_dict() -> None:
    from torchvision.models.mobilenetv2 import InvertedResidual as TVInvertedResidual

    for t in (1, 6):
        theirs = TVInvertedResidual(16, 24, 2, expand_ratio=t).eval()
        ours = InvertedResidual(16, 24, 2, expand_ratio=t).eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        x = torch.randn(2, 16, 8, 8)
        torch.testing.assert_close(ours(x), theirs(x))


def test_mobilenet_v2_matches_torchvision() -> None:
    model = mobilenet_v2()
    assert numel(model) == numel(torchvision.models.mobilenet_v2()) == 3_504_872
    assert sum(isinstance(m, InvertedResidual) for m in model.modules()) == 17
    assert [s.reduction for s in model.feature_info] == [2, 4, 8, 16, 32]
    assert 295e6 < mult_adds(model, torch.randn(1, 3, 224, 224)) < 305e6  # the paper: 300M


def test_mobilenet_v2_width_multiplier_rounds_to_8() -> None:
    assert make_divisible(32 * 0.35) == 16 and make_divisible(24 * 0.5) == 16 and make_divisible(4) == 8
    tv = torchvision.models.mobilenet_v2(width_mult=0.35)
    assert numel(mobilenet_v2(width_mult=0.35)) == numel(tv)


# ---- U-Net -------------------------------------------------------------------------------------------
def test_unet_registry_entry() -> None:
    info = cnnbook.get_model_info("unet")
    assert info.task == "segmentation" and info.chapter == 10
    assert "unet" in cnnbook.list_models(task="segmentation")


def test_unet_architecture_follows_the_paper() -> None:
    model = unet()
    assert [s.channels for s in model.feature_info] == [64, 128, 256, 512, 1024]
    assert [s.reduction for s in model.feature_info] == [1, 2, 4, 8, 16]
    assert [s.channels for s in model.decoder_info] == [512, 256, 128, 64]
    for stage in model.feature_info + model.decoder_info:
        model.get_submodule(stage.module)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 23  # "In total the network has 23 convolutional layers."
    assert numel(model) == 31_030_658
    assert model.head.kernel_size == (1, 1) and model.head.out_channels == 2
    up = model.decoder[0].up
    assert (up.in_channels, up.out_channels, up.kernel_size, up.stride) == (1024, 512, (2, 2), (2, 2))


def test_unet_native_size_has_32x32_at_the_bottom() -> None:
    model = unet()
    c, h, w = cnnbook.get_model_info("unet").input_size
    assert (c, h // 2**model.depth, w // 2**model.depth) == (1, 32, 32)


@pytest.mark.parametrize("long_skips", [True, False])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_unet_output_shape(long_skips: bool, batch_norm: bool) -> None:
    model = unet(num_classes=3, in_channels=3, base_channels=8, depth=3, long_skips=long_skips, batch_norm=batch_norm)
    x = torch.randn(2, 3, 64, 48)
    assert model(x).shape == (2, 3, 64, 48)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) is batch_norm


def test_unet_long_skips_concatenate_encoder_maps() -> None:
    with_skips = unet(base_channels=8, depth=3)
    without = unet(base_channels=8, depth=3, long_skips=False)
    # decoder stage from 64 to 32 channels: 32 up-sampled + 32 from the encoder, or only the 32 up-sampled
    assert with_skips.decoder[0].conv[0].in_channels == 64
    assert without.decoder[0].conv[0].in_channels == 32
    assert numel(without) < numel(with_skips)


def test_without_long_skips_everything_passes_the_bottleneck() -> None:
    """Without skips the output depends on the input only through the bottom map: fixing it fixes the output."""
    torch.manual_seed(0)
    model = unet(base_channels=4, depth=2, long_skips=False).eval()
    x1, x2 = torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
    bottom = {}

    def keep(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        bottom.setdefault("map", out)

    def replace(_m: nn.Module, _i: object, _out: torch.Tensor) -> torch.Tensor:
        return bottom["map"]

    with torch.no_grad():
        handle = model.encoder[-1].register_forward_hook(keep)
        y1 = model(x1)
        handle.remove()
        handle = model.encoder[-1].register_forward_hook(replace)
        y2 = model(x2)
        handle.remove()
    torch.testing.assert_close(y1, y2)  # x2's detail never reaches the output
    skip_model = unet(base_channels=4, depth=2).eval()
    with torch.no_grad():
        handle = skip_model.encoder[-1].register_forward_hook(keep)
        bottom.clear()
        z1 = skip_model(x1)
        handle.remove()
        handle = skip_model.encoder[-1].register_forward_hook(replace)
        z2 = skip_model(x2)
        handle.remove()
    assert not torch.allclose(z1, z2)  # with long skips, x2's detail arrives through them


def test_unet_stages() -> None:
    x = torch.randn(2, 8, 32, 32)
    assert DoubleConv(8, 16)(x).shape == (2, 16, 32, 32)
    assert DoubleConv(8, 16, padding=0)(x).shape == (2, 16, 28, 28)
    assert UNetDown(8, 16)(x).shape == (2, 16, 16, 16)
    up = UNetUp(16, 8)
    assert up(torch.randn(2, 16, 16, 16), x).shape == (2, 8, 32, 32)
    with pytest.raises(ValueError, match="skip"):
        up(torch.randn(2, 16, 16, 16))
    assert center_crop(torch.randn(1, 1, 64, 64), 56, 56).shape == (1, 1, 56, 56)


def test_unet_unpadded_reproduces_572_to_388() -> None:
    model = unet(padding=0)
    assert model.output_side(572) == 388
    assert model.output_side(512) is None
    small = unet(base_channels=2, padding=0).eval()
    with torch.no_grad():
        assert small(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    with pytest.raises(ValueError, match="572"):
        small(torch.randn(1, 1, 512, 512))


def test_unet_input_checks() -> None:
    model = unet(base_channels=8, depth=3)
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.randn(1, 1, 60, 64))
    with pytest.raises(ValueError, match=r"\(N, 1, "):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="batch"):
        model(torch.randn(1, 64, 64))
    for bad in ({"depth": 0}, {"base_channels": 0}, {"num_classes": 0}, {"padding": 2}):
        with pytest.raises(ValueError):
            unet(**bad)


def test_small_unet_learns_a_mask() -> None:
    """The small configuration fits bright-square masks in a few dozen steps on a CPU."""
    info = cnnbook.get_model_info("unet")
    model = cnnbook.get_model("unet", **info.small_kwargs)
    x = torch.rand(4, 1, 32, 32) * 0.2
    mask = torch.zeros(4, 32, 32, dtype=torch.long)
    for i, (top, left) in enumerate([(2, 2), (10, 16), (20, 4), (16, 20)]):
        x[i, 0, top : top + 8, left : left + 8] += 0.8
        mask[i, top : top + 8, left : left + 8] = 1
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), mask)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == mask).float().mean().item()
    assert accuracy > 0.95


# ---- the block contract ----------------------------------------------------------------------------


def test_conv_bn_act_norm_and_activation_are_configurable() -> None:
    """Children keep torchvision's indices: 0 conv, 1 norm, 2 activation; bias only without BatchNorm."""
    from functools import partial

    from cnnbook.layers import ConvBNAct, LayerNorm2d

    block = ConvBNAct(3, 8, 3, norm_layer=partial(torch.nn.BatchNorm2d, eps=1e-3, momentum=0.01),
                      act_layer=torch.nn.Hardswish)
    assert block[0].bias is None and block[1].eps == 1e-3 and block[1].momentum == 0.01
    assert isinstance(block[2], torch.nn.Hardswish) and block[2].inplace
    ln = ConvBNAct(3, 8, 4, 4, padding=0, norm_layer=LayerNorm2d, act_layer=None)
    assert ln[0].bias is not None and isinstance(ln[1], LayerNorm2d) and len(ln) == 2
    assert ln(torch.randn(1, 3, 8, 8)).shape == (1, 8, 2, 2)
    bare = ConvBNAct(3, 8, use_norm=False, act_layer=torch.nn.GELU)
    assert isinstance(bare[1], torch.nn.GELU) and bare[0].bias is not None


def test_inverted_residual_hooks_keep_v2_indices() -> None:
    plain = InvertedResidual(16, 16, 1, expand_ratio=6)
    assert [type(m).__name__ for m in plain.conv] == ["ConvBNAct", "ConvBNAct", "Conv2d", "BatchNorm2d"]
    hooked = InvertedResidual(16, 24, 2, expand_ratio=6, kernel_size=5, act_layer=torch.nn.Hardswish,
                              se_layer=lambda c: SqueezeExcite(c, squeeze_channels=c // 4))
    assert hooked.conv[1][0].kernel_size == (5, 5) and isinstance(hooked.conv[1][2], torch.nn.Hardswish)
    assert isinstance(hooked.conv[2], SqueezeExcite) and hooked.conv[2].squeeze_channels == 24
    assert hooked(torch.randn(2, 16, 8, 8)).shape == (2, 24, 4, 4)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        InvertedResidual(16, 16, 1, 6, kernel_size=4)


def test_squeeze_channels_overrides_reduction() -> None:
    assert SqueezeExcite(64, reduction=16).squeeze_channels == 4
    assert SqueezeExcite(64, squeeze_channels=10).fc1.out_channels == 10
    with pytest.raises(ValueError, match="squeeze_channels"):
        SqueezeExcite(64, squeeze_channels=0)


def test_mobilenet_v3_uses_hard_swish_and_se_as_the_paper_lists() -> None:
    from cnnbook.models.mobilenet_v3 import V3_LARGE

    model = cnnbook.get_model("mobilenet_v3_large")
    blocks = model.features[1:-1]
    assert [any(isinstance(m, SqueezeExcite) for m in b.modules()) for b in blocks] == [r.se for r in V3_LARGE]
    assert [any(isinstance(m, torch.nn.Hardswish) for m in b.modules()) for b in blocks] == [
        r.hard_swish for r in V3_LARGE]
