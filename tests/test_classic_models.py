"""Chapters 3-5: AlexNet, ZF-Net, Network in Network, VGG, and their building blocks (LRN, grouped conv).

The generic tests (shapes, training step, torchvision parity) live in test_models.py and
test_torchvision_parity.py; these check the facts the chapters state.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import cnnbook
from cnnbook.layers import GroupedConv2d, LocalResponseNorm
from cnnbook.models import (
    ALEXNET_PAPER_LAYOUT,
    PAPER_NEURON_COUNTS,
    ZFNET_LAYOUT,
    AlexNet,
    AlexNetLayout,
    MLPConv,
    NiN,
    cfgs,
    make_layers,
)


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _structure(name: str, **kwargs: object) -> nn.Module:
    """A registered model built on the meta device: layers and parameter shapes, no memory, no init time."""
    with torch.device("meta"):
        return cnnbook.get_model(name, **kwargs)


def _layer_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Size]:
    """Output shape (without the batch) of every Conv2d and Linear, in forward order."""
    shapes: list[torch.Size] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: shapes.append(out.shape[1:]))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return shapes


# ---- local response normalisation ---------------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 8, 96])
def test_lrn_equals_torch_with_alpha_times_n(channels: int) -> None:
    """Paper alpha 1e-4 on the sum == PyTorch alpha 5e-4 on the mean of n = 5 squares."""
    x = torch.randn(2, channels, 7, 5) * 3
    ours = LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)
    theirs = nn.LocalResponseNorm(5, alpha=ours.torch_alpha, beta=0.75, k=2.0)
    assert ours.torch_alpha == pytest.approx(5e-4)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("size", [1, 2, 4, 5])
def test_lrn_follows_the_paper_formula(size: int) -> None:
    """b_i = a_i / (k + alpha * sum over j in [i - n/2, i + n/2] of a_j^2) ^ beta, written as loops."""
    x = torch.randn(1, 6, 2, 2, dtype=torch.float64) * 10
    k, alpha, beta = 2.0, 1e-3, 0.75
    expected = torch.empty_like(x)
    channels = x.shape[1]
    for i in range(channels):
        lo, hi = max(0, i - size // 2), min(channels - 1, i + (size - 1) // 2)
        energy = (x[:, lo : hi + 1] ** 2).sum(dim=1)
        expected[:, i] = x[:, i] / (k + alpha * energy) ** beta
    torch.testing.assert_close(LocalResponseNorm(size, alpha, beta, k)(x), expected)


def test_lrn_rejects_bad_hyper_parameters() -> None:
    for kwargs in (dict(size=0), dict(k=0.0), dict(alpha=-1e-4), dict(beta=-0.75)):
        with pytest.raises(ValueError):
            LocalResponseNorm(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="N x C x H x W"):
        LocalResponseNorm()(torch.randn(3, 4, 4))


# ---- grouped convolution ------------------------------------------------------------------------


def test_grouped_conv_is_two_independent_convs_on_channel_halves() -> None:
    """AlexNet's conv2 on two GPUs: groups=2 == each half of the kernels on its half of the maps."""
    conv = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)
    x = torch.randn(2, 96, 13, 13)
    w0, w1 = conv.weight[:128], conv.weight[128:]  # 128 x 48 x 5 x 5 each
    b0, b1 = conv.bias[:128], conv.bias[128:]
    halves = torch.cat(
        [F.conv2d(x[:, :48], w0, b0, padding=2), F.conv2d(x[:, 48:], w1, b1, padding=2)], dim=1
    )
    with torch.no_grad():
        torch.testing.assert_close(conv(x), halves)
        torch.testing.assert_close(GroupedConv2d.from_conv2d(conv)(x), conv(x))


@pytest.mark.parametrize("groups", [1, 2, 4, 32])
def test_grouped_conv_round_trip_and_weight_count(groups: int) -> None:
    split = GroupedConv2d(64, 128, kernel_size=3, stride=2, padding=1, groups=groups)
    fused = split.to_conv2d()
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(split(x), fused(x))
    dense = nn.Conv2d(64, 128, 3, bias=False)
    assert fused.weight.numel() * groups == dense.weight.numel()  # 1/groups of the weights
    assert _numel(split) == _numel(fused) == 3 * 3 * (64 // groups) * 128 + 128


def test_grouped_conv_rejects_indivisible_channels() -> None:
    with pytest.raises(ValueError, match="in_channels=5"):
        GroupedConv2d(5, 8, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels=9"):
        GroupedConv2d(4, 9, 3, groups=2)
    with pytest.raises(ValueError, match="groups"):
        GroupedConv2d(4, 8, 3, groups=0)


# ---- AlexNet ------------------------------------------------------------------------------------


def test_alexnet_paper_neuron_counts() -> None:
    """Input 150,528, then 290,400 (the paper prints 253,440)-186,624-64,896-64,896-43,264-4096-4096-1000."""
    model = cnnbook.get_model("alexnet_paper").eval()
    x = torch.randn(1, 3, 224, 224)
    assert x[0].numel() == 150_528
    shapes = _layer_outputs(model, x)
    counts = tuple(s.numel() for s in shapes)
    assert shapes[0] == (96, 55, 55)
    assert counts == (290_400, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000)
    assert counts[1:] == PAPER_NEURON_COUNTS[1:]  # all but conv1 agree with the paper
    assert PAPER_NEURON_COUNTS[0] == 253_440 != 55 * 55 * 96  # the paper's inconsistent first count


def test_alexnet_paper_parameters() -> None:
    """The paper's "60 million": 60,965,224 with two GPU groups; torchvision's layout has 61,100,840."""
    paper = _structure("alexnet_paper")
    assert _numel(paper) == 60_965_224
    assert _numel(_structure("alexnet")) == 61_100_840
    convs = [m for m in paper.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]  # conv3 and the dense layers cross the GPUs
    assert [c.weight.numel() for c in convs] == [34_848, 307_200, 884_736, 663_552, 442_368]
    fc = [m for m in paper.classifier if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fc] == [(9216, 4096), (4096, 4096), (4096, 1000)]


def test_alexnet_paper_has_lrn_then_overlapping_pool_after_conv1_and_conv2() -> None:
    features = _structure("alexnet_paper").features
    kinds = [type(m).__name__ for m in features]
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2
    assert kinds.count("LocalResponseNorm") == 2
    lrn = features[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    pools = [m for m in features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3  # z = 3 > s = 2: overlapping
    assert not any(isinstance(m, LocalResponseNorm) for m in _structure("alexnet").modules())


def test_alexnet_state_dict_keys_are_torchvision_ones() -> None:
    import torchvision

    ours = set(_structure("alexnet").state_dict())
    with torch.device("meta"):
        assert ours == set(torchvision.models.alexnet().state_dict())


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper"])
def test_non_overlapping_pooling_keeps_sizes_at_224(name: str) -> None:
    """z = 2, s = 2 instead of z = 3, s = 2: the same 6 x 6 maps into fc6 (55 -> 27 -> 13 -> 6).

    (Not so for ZF-Net, whose pooling rounds up: its last pooling turns 13 into 7 with z = 2.)
    """
    x = torch.randn(1, 3, 224, 224)
    narrow = dict(width_divisor=4, hidden=64)  # sizes do not depend on widths; a quarter builds faster
    with torch.no_grad():
        overlapping = cnnbook.get_model(name, **narrow).eval().forward_features(x)
        traditional = cnnbook.get_model(name, pool_kernel=2, pool_stride=2, **narrow).eval().forward_features(x)
    assert overlapping.shape == traditional.shape == (1, 256 // 4, 6, 6)


@pytest.mark.parametrize("act_layer", [nn.Tanh, nn.Sigmoid])
def test_alexnet_activation_ablation(act_layer: type[nn.Module]) -> None:
    model = cnnbook.get_model("alexnet_paper", act_layer=act_layer, num_classes=10, width_divisor=4).eval()
    acts = [m for m in model.modules() if isinstance(m, act_layer)]
    assert len(acts) == 7  # after five convolutions and two hidden dense layers
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_alexnet_other_ablation_arguments() -> None:
    model = cnnbook.get_model("alexnet_paper", use_lrn=False, dropout=0.2, in_channels=1, num_classes=5)
    assert not any(isinstance(m, LocalResponseNorm) for m in model.modules())
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.2]
    assert model.features[0].in_channels == 1
    with_lrn = _structure("alexnet", use_lrn=True)
    assert sum(isinstance(m, LocalResponseNorm) for m in with_lrn.modules()) == 2
    assert _numel(with_lrn) == 61_100_840  # LRN has no parameters
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 100, 120)).shape == (1, 5)


def test_alexnet_small_configuration_is_small() -> None:
    info = cnnbook.get_model_info("alexnet")
    model = cnnbook.get_model("alexnet", **info.small_kwargs)
    assert isinstance(model, AlexNet)
    assert _numel(model) < 500_000
    assert info.small_input_size == (3, 64, 64)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(dropout=1.0),
        dict(dropout=-0.1),
        dict(pool_kernel=0),
        dict(pool_kernel=2, pool_stride=3),  # s > z skips inputs
        dict(width_divisor=5),  # 64 / 5 is not whole
        dict(width_divisor=0),
        dict(hidden=0),
        dict(num_classes=0),
        dict(avgpool_size=0),
    ],
)
def test_alexnet_rejects_bad_hyper_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        cnnbook.get_model("alexnet", **kwargs)


def test_alexnet_layout_is_checked() -> None:
    with pytest.raises(ValueError, match="5 convolutions"):
        AlexNetLayout(convs=ALEXNET_PAPER_LAYOUT.convs[:4])
    with pytest.raises(ValueError, match="conv2"):
        AlexNetLayout(convs=(ALEXNET_PAPER_LAYOUT.convs[0], (256, 5, 0, 2, 2), *ALEXNET_PAPER_LAYOUT.convs[2:]))
    with pytest.raises(ValueError, match="groups=2"):  # 96 / 32 = 3 maps cannot split over two groups
        cnnbook.get_model("alexnet_paper", width_divisor=32)


# ---- ZF-Net -------------------------------------------------------------------------------------


def test_zfnet_first_layer_and_published_sizes() -> None:
    """7x7 stride 2 (AlexNet: 11x11 stride 4); 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6, no groups."""
    model = cnnbook.get_model("zfnet").eval()
    conv1 = model.features[0]
    assert isinstance(conv1, nn.Conv2d)
    assert (conv1.kernel_size, conv1.stride, conv1.out_channels) == ((7, 7), (2, 2), 96)
    assert isinstance(model, AlexNet) and model.layout is ZFNET_LAYOUT  # the variant is data
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert all(c.groups == 1 for c in convs)
    sides = []
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for m in model.features:
            x = m(x)
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                sides.append(x.shape[-1])
    assert sides == [110, 55, 26, 13, 13, 13, 13, 6]
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:4] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"]  # normalised after pooling


def test_zfnet_larger_variant_is_a_layout_change() -> None:
    wide = dataclasses.replace(
        ZFNET_LAYOUT, convs=(*ZFNET_LAYOUT.convs[:2], (512, 3, 1, 1, 1), (1024, 3, 1, 1, 1), (512, 3, 1, 1, 1))
    )
    with torch.device("meta"):
        model = AlexNet(layout=wide, use_lrn=True)
    assert model.classifier[1].in_features == 512 * 6 * 6


# ---- minimum input sizes -------------------------------------------------------------------------


def test_alexnet_min_input_size_is_torchvisions() -> None:
    """(Exactness for every registered network: tests/test_models.py.)"""
    assert _structure("alexnet").min_input_size == 63  # torchvision's AlexNet min_size


# ---- Network in Network -------------------------------------------------------------------------


def test_nin_mlpconv_and_global_average_pooling_head() -> None:
    model = cnnbook.get_model("nin").eval()
    assert isinstance(model, NiN)
    blocks = [m for m in model.features if isinstance(m, MLPConv)]
    assert [b.out_channels for b in blocks] == [96, 256, 384, 1024]
    assert [m.kernel_size for m in blocks[0] if isinstance(m, nn.Conv2d)] == [(11, 11), (1, 1), (1, 1)]
    head = model.get_classifier()
    assert isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1) and head.out_channels == 1000
    assert model.num_features == 1024
    assert not any(isinstance(m, nn.Linear) for m in model.modules())  # no fully connected layer at all
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 1024, 6, 6)
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats.mean(dim=(2, 3)))
        torch.testing.assert_close(model(x), F.relu(head(feats)).mean(dim=(2, 3)))
        # Without the ReLU, "1x1 conv then average" == "average then linear": a GAP head is a linear classifier.
        pooled = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(
            head(feats).mean(dim=(2, 3)), F.linear(pooled, head.weight.flatten(1), head.bias), atol=1e-4, rtol=1e-4
        )


def test_nin_rejects_bad_hyper_parameters() -> None:
    for kwargs in (dict(width_divisor=7), dict(dropout=1.5), dict(num_classes=0)):
        with pytest.raises(ValueError):
            cnnbook.get_model("nin", **kwargs)
    with pytest.raises(ValueError):
        MLPConv(3, (), kernel_size=3)


# ---- VGG ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,convs", [("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16), ("vgg16_bn", 13)]
)
def test_vgg_depth_counts_weight_layers(name: str, convs: int) -> None:
    model = _structure(name)
    conv_layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    dense_layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert (len(conv_layers), len(dense_layers)) == (convs, 3)
    assert cnnbook.get_model_info(name).depth == convs + 3
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in conv_layers)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2)] * 5


def test_vgg16_parameters_live_in_the_first_dense_layer() -> None:
    model = _structure("vgg16")
    assert _numel(model) == 138_357_544
    assert _numel(model.classifier[0]) == 25_088 * 4096 + 4096 == 102_764_544
    assert [s.channels for s in model.feature_info] == [64, 128, 256, 512, 512]
    assert [s.reduction for s in model.feature_info] == [2, 4, 8, 16, 32]


def test_vgg_make_layers_is_checked() -> None:
    assert len(make_layers(cfgs["A"])) == 8 * 2 + 5
    assert len(make_layers(cfgs["A"], batch_norm=True)) == 8 * 3 + 5
    with pytest.raises(ValueError, match="'X'"):
        make_layers([64, "X"])
    with pytest.raises(ValueError, match="width_divisor=3"):
        make_layers(cfgs["D"], width_divisor=3)
    with pytest.raises(ValueError, match="dropout"):
        cnnbook.get_model("vgg11", dropout=1.0)
