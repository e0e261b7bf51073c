"""Chapters 8 and 9: residual blocks and their plain twins, ResNet family, dense blocks, DenseNet, SE.

Each test checks a claim the book makes about these networks (identity fall-back, projection shortcuts,
parameter counts, the dense-block worked example, the SE rescaling).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnbook
from cnnbook.layers import (
    BasicBlock,
    Bottleneck,
    DenseBlock,
    DenseLayer,
    PreActBasicBlock,
    PreActBottleneck,
    ResidualBlock,
    SqueezeExcite,
    Transition,
    dense_block_channels,
    dense_connections,
    se_num_params,
)
from cnnbook.models import DenseNet, ResNet, cifar_resnet

FAMILY = [
    n for n in cnnbook.list_models()
    if n.startswith(("resnet", "plain_resnet", "resnext", "se_resnet", "preact_resnet", "densenet"))
]


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _blocks(model: nn.Module) -> list[ResidualBlock]:
    return [m for m in model.modules() if isinstance(m, ResidualBlock)]


# ---- residual blocks ------------------------------------------------------------------------------------
def _zero_last_layer(block: ResidualBlock) -> None:
    """W[l+2] = 0 and b[l+2] = 0: the last convolution's weights and its BN's gamma and beta."""
    last = "3" if isinstance(block, Bottleneck) else "2"
    with torch.no_grad():
        getattr(block, f"conv{last}").weight.zero_()
        getattr(block, f"bn{last}").weight.zero_()
        getattr(block, f"bn{last}").bias.zero_()


@pytest.mark.parametrize("make", [lambda: BasicBlock(16, 16), lambda: Bottleneck(64, 16)])
@pytest.mark.parametrize("train", [False, True])
def test_zeroed_residual_block_is_the_identity(make, train: bool) -> None:
    """a[l+2] = g(0 + a[l]) = a[l] for a ReLU g and a non-negative a[l]."""
    block = make().train(train)
    _zero_last_layer(block)
    a = torch.relu(torch.randn(2, block.out_channels, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(block(a), a)


@pytest.mark.parametrize("block_cls,channels", [(BasicBlock, 16), (Bottleneck, 16),
                                                (PreActBasicBlock, 16), (PreActBottleneck, 16)])
def test_zero_init_last_makes_every_block_start_as_the_identity(block_cls: type[ResidualBlock], channels: int) -> None:
    block = block_cls(channels * block_cls.expansion, channels).eval()
    block.zero_init_last()
    a = torch.randn(2, channels * block_cls.expansion, 6, 6)
    if not block_cls.preact:
        a = torch.relu(a)  # post-activation blocks end on a ReLU; pre-activation ones pass any a[l]
    with torch.no_grad():
        torch.testing.assert_close(block(a), a)


@pytest.mark.parametrize("make", [lambda: BasicBlock(16, 16, shortcut=False),
                                  lambda: Bottleneck(64, 16, shortcut=False)])
def test_zeroed_plain_block_outputs_zero(make) -> None:
    """Without the shortcut nothing carries a[l]: the same zeroing gives g(0) = 0."""
    block = make().eval()
    _zero_last_layer(block)
    with torch.no_grad():
        out = block(torch.relu(torch.randn(2, block.out_channels, 8, 8)))
    assert torch.count_nonzero(out) == 0


def test_blocks_use_torchvision_names_and_channel_arithmetic() -> None:
    basic, bottleneck = BasicBlock(64, 64), Bottleneck(256, 64)
    assert BasicBlock.expansion == 1 and Bottleneck.expansion == 4
    assert {n for n, _ in basic.named_children()} == {"conv1", "bn1", "relu", "conv2", "bn2"}
    assert {n for n, _ in bottleneck.named_children()} == {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu"}
    assert (bottleneck.conv1.out_channels, bottleneck.conv3.out_channels) == (64, 256)
    strided = Bottleneck(256, 128, stride=2, downsample=Bottleneck.projection(256, 512, 2, nn.BatchNorm2d))
    assert strided.conv2.stride == (2, 2) and strided.conv1.stride == (1, 1)  # v1.5: stride on the 3x3
    assert strided(torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)


def test_attention_is_applied_to_the_residual_branch() -> None:
    block = Bottleneck(64, 16, attn_layer=SqueezeExcite).eval()
    assert isinstance(block.attn, SqueezeExcite) and block.attn.channels == 64
    _zero_last_layer(block)  # branch is zero, SE scales zero: still the identity
    a = torch.relu(torch.randn(2, 64, 5, 5))
    with torch.no_grad():
        torch.testing.assert_close(block(a), a)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "se_resnet50", "preact_resnet18"])
def test_projection_shortcut_exactly_when_the_shape_changes(name: str) -> None:
    model = cnnbook.get_model(name)
    projected = []
    for stage_name in model.stage_names:
        for i, block in enumerate(getattr(model, stage_name)):
            changes = block.stride != 1 or block.conv1.in_channels != block.out_channels
            assert (block.downsample is not None) == changes, f"{stage_name}.{i}"
            if block.downsample is not None:
                projected.append(f"{stage_name}.{i}")
                assert block.downsample[0].kernel_size == (1, 1)
                assert block.downsample[0].stride == (block.stride, block.stride)
    expected = ["layer2.0", "layer3.0", "layer4.0"]
    if model.layer1[0].expansion == 4:
        expected = ["layer1.0", *expected]  # 64 -> 256 channels already in the first stage
    assert projected == expected


def test_block_without_projection_for_a_shape_change_is_explained() -> None:
    with pytest.raises(ValueError, match="projection"):
        BasicBlock(64, 128, stride=2)
    with pytest.raises(ValueError, match="projection"):
        Bottleneck(64, 64)  # 64 in, 256 out
    with pytest.raises(ValueError, match="no shortcut"):
        BasicBlock(64, 64, downsample=nn.Identity(), shortcut=False)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_plain_networks_have_no_shortcut_and_the_same_other_parameters(depth: int) -> None:
    plain, residual = cnnbook.get_model(f"plain_resnet{depth}"), cnnbook.get_model(f"resnet{depth}")
    assert all(not b.shortcut and b.downsample is None for b in _blocks(plain))
    projections = sum(_numel(b.downsample) for b in _blocks(residual) if b.downsample is not None)
    assert _numel(plain) == _numel(residual) - projections
    plain_keys = set(plain.state_dict())
    assert plain_keys == {k for k in residual.state_dict() if ".downsample." not in k}


def test_plain_block_changes_shape_without_projection() -> None:
    block = BasicBlock(16, 32, stride=2, shortcut=False)
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)


# ---- ResNet family --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,params", [
    ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
    ("resnet101", 44_549_160), ("resnet152", 60_192_808), ("resnext50_32x4d", 25_028_904),
    ("densenet121", 7_978_856), ("densenet169", 14_149_480), ("densenet201", 20_013_928),
])
def test_parameter_counts(name: str, params: int) -> None:
    assert _numel(cnnbook.get_model(name)) == params


def test_resnet50_has_about_26m_parameters() -> None:
    assert _numel(cnnbook.get_model("resnet50")) == 25_557_032  # the lecture's "~26M"


@pytest.mark.parametrize("name", [n for n in FAMILY] + ["resnet20_cifar", "plain_resnet20_cifar"])
def test_depth_counts_the_weight_layers(name: str) -> None:
    """ResNet-50 has 50 weight layers on its main path: convolutions (not the projections, not SE) + fc."""
    model = cnnbook.get_model(name)
    skip = {id(m) for mod in model.modules() if isinstance(mod, SqueezeExcite) for m in mod.modules()}
    for block in _blocks(model):
        if block.downsample is not None:
            skip |= {id(m) for m in block.downsample.modules()}
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in skip]
    assert len(layers) == cnnbook.get_model_info(name).depth


def test_se_resnet50_adds_exactly_the_se_parameters() -> None:
    se_model, plain_model = cnnbook.get_model("se_resnet50"), cnnbook.get_model("resnet50")
    se_blocks = [m for m in se_model.modules() if isinstance(m, SqueezeExcite)]
    assert len(se_blocks) == 16  # one per bottleneck: 3 + 4 + 6 + 3
    extra = _numel(se_model) - _numel(plain_model)
    assert extra == sum(_numel(m) for m in se_blocks)
    assert extra == sum(se_num_params(b.out_channels, 16) for b in _blocks(plain_model)) == 2_530_992
    assert _numel(se_model) == 28_088_024  # Hu et al. report 28.09M
    se_keys = {k for k in se_model.state_dict() if ".attn." not in k}
    assert se_keys == set(plain_model.state_dict())  # a ResNet with SE added, nothing else changed


def test_resnext_uses_32_groups() -> None:
    model = cnnbook.get_model("resnext50_32x4d")
    blocks = _blocks(model)
    assert blocks and all(b.conv2.groups == 32 for b in blocks)
    assert model.layer1[0].conv2.in_channels == 128  # 32 groups x 4 channels
    assert all(b.conv1.groups == 1 and b.conv3.groups == 1 for b in blocks)


def test_cifar_stem_and_widths_keep_32x32_images_small() -> None:
    model = cnnbook.get_model("resnet18", num_classes=10, stem="cifar", widths=(16, 32, 64, 128)).eval()
    assert isinstance(model.maxpool, nn.Identity) and model.conv1.kernel_size == (3, 3)
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 128, 4, 4)
    assert [s.reduction for s in model.feature_info] == [1, 1, 2, 4, 8]


@pytest.mark.parametrize("depth", [8, 20, 32, 56])
def test_cifar_resnet_has_6n_plus_2_layers(depth: int) -> None:
    for shortcut in (True, False):
        model = cifar_resnet(depth, shortcut=shortcut)
        n = (depth - 2) // 6
        assert [len(getattr(model, s)) for s in model.stage_names] == [n, n, n]
        assert all(b.shortcut == shortcut for b in _blocks(model))
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_preact_resnet_ends_with_bn_relu() -> None:
    model = cnnbook.get_model("preact_resnet18")
    assert all(isinstance(b, PreActBasicBlock) for b in _blocks(model))
    assert isinstance(model.final_act[0], nn.BatchNorm2d) and model.final_act[0].num_features == 512
    assert model.layer1[0].bn1.num_features == 64  # BN before the first convolution
    assert cnnbook.get_model("resnet18").final_act is None


def test_zero_init_residual_zeroes_the_last_bn_of_every_branch() -> None:
    model = cnnbook.get_model("resnet50", zero_init_residual=True)
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for b in _blocks(model))
    assert all(torch.all(b.bn2.weight == 1) for b in _blocks(model))


# ---- dense blocks ---------------------------------------------------------------------------------------
def test_dense_block_worked_example() -> None:
    """5 layers, growth rate k = 4: k0 + 5 * 4 channels out, 15 = 5 * 6 / 2 direct connections."""
    k0, k = 8, 4
    block = DenseBlock(num_layers=5, in_channels=k0, growth_rate=k).eval()
    assert [layer.conv1.in_channels for layer in block.values()] == [8, 12, 16, 20, 24]  # k0 + (l - 1) k
    assert all(layer.conv2.out_channels == k for layer in block.values())
    assert list(block) == [f"denselayer{i}" for i in range(1, 6)]
    x = torch.randn(2, k0, 6, 6)
    with torch.no_grad():
        out = block(x)
    assert out.shape == (2, k0 + 5 * k, 6, 6) and block.out_channels == dense_block_channels(k0, 5, k) == 28
    torch.testing.assert_close(out[:, :k0], x)  # concatenation keeps x_0 unchanged
    assert block.num_connections == dense_connections(5) == 15
    assert [dense_connections(n) for n in (1, 2, 3, 4)] == [1, 3, 6, 10]


def test_dense_block_equals_explicit_concatenation() -> None:
    """x_{i+1} = [x_i, f_i(x_i)], written out by hand."""
    block = DenseBlock(num_layers=3, in_channels=6, growth_rate=4).eval()
    x = torch.randn(1, 6, 5, 5)
    with torch.no_grad():
        expected = x
        for layer in block.values():
            expected = torch.cat([expected, layer(expected)], 1)  # one tensor or a list: same result
        torch.testing.assert_close(block(x), expected)


def test_dense_layer_names_match_torchvision() -> None:
    layer = DenseLayer(16, growth_rate=8)
    assert [n for n, _ in layer.named_children()] == ["norm1", "relu1", "conv1", "norm2", "relu2", "conv2"]
    assert layer.conv1.out_channels == 4 * 8 and layer.conv2.kernel_size == (3, 3)


@pytest.mark.parametrize("hw,out_hw", [(8, 4), (7, 3), (2, 1)])
def test_transition_halves_height_and_width(hw: int, out_hw: int) -> None:
    transition = Transition(28, 14)
    assert [n for n, _ in transition.named_children()] == ["norm", "relu", "conv", "pool"]
    assert transition(torch.randn(2, 28, hw, hw)).shape == (2, 14, out_hw, out_hw)


def test_densenet_forward_matches_relu_pool_linear() -> None:
    model = cnnbook.get_model("densenet_small").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.features(x)
        expected = model.classifier(torch.relu(feats).mean(dim=(2, 3)))
        torch.testing.assert_close(model(x), expected)
    assert feats.shape == (2, 90, 8, 8)  # 24 + 4*12 = 72 -> 36 -> 36 + 48 = 84 -> 42 -> 42 + 48 = 90


def test_densenet121_transitions_halve_channels() -> None:
    model = cnnbook.get_model("densenet121")
    outs = [getattr(model.features, f"transition{i}").conv.out_channels for i in (1, 2, 3)]
    assert outs == [128, 256, 512]  # (64 + 6*32) / 2, (128 + 12*32) / 2, (256 + 24*32) / 2
    assert model.classifier.in_features == 1024


# ---- squeeze-and-excitation -----------------------------------------------------------------------------
def test_se_rescales_each_channel_by_a_weight_in_0_1() -> None:
    se = SqueezeExcite(32, reduction=16).eval()
    assert (se.fc1.in_channels, se.fc1.out_channels, se.fc2.out_channels) == (32, 2, 32)
    u = torch.randn(3, 32, 7, 7)
    with torch.no_grad():
        s = se.channel_weights(u)
        out = se(u)
    assert s.shape == (3, 32, 1, 1)
    assert torch.all((s > 0) & (s < 1))
    torch.testing.assert_close(out, u * s)
    ratio = out / u  # one factor per sample and channel, the same at every position
    torch.testing.assert_close(ratio, s.expand_as(ratio))


def test_se_parameter_count_formula() -> None:
    for channels, reduction in [(64, 16), (2048, 16), (32, 4), (8, 16)]:
        assert _numel(SqueezeExcite(channels, reduction)) == se_num_params(channels, reduction)


# ---- input sizes and errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILY)
def test_min_input_size_is_exact(name: str) -> None:
    """The smallest input works; one pixel less is refused with the size to use."""
    model = cnnbook.get_model(name).eval()
    size = model.min_input_size
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, model.num_classes)
    with pytest.raises(ValueError, match=f"at least {size}x{size}"):
        model(torch.randn(1, 3, size - 1, size - 1))


def test_min_input_sizes() -> None:
    assert cnnbook.get_model("resnet50").min_input_size == 1  # every layer pads (k - 1) / 2
    assert cnnbook.get_model("densenet121").min_input_size == 29  # 3 unpadded 2x2 poolings after a /4 stem
    assert cnnbook.get_model("densenet_small").min_input_size == 4  # 2 transitions, CIFAR stem


@pytest.mark.parametrize("build", [
    lambda: SqueezeExcite(64, reduction=0),
    lambda: SqueezeExcite(64, reduction=-4),
    lambda: SqueezeExcite(0),
    lambda: cnnbook.get_model("se_resnet50", reduction=0),
    lambda: DenseLayer(16, growth_rate=0),
    lambda: DenseLayer(16, growth_rate=4, drop_rate=1.0),
    lambda: DenseBlock(num_layers=4, in_channels=16, growth_rate=0),
    lambda: DenseBlock(num_layers=0, in_channels=16, growth_rate=4),
    lambda: dense_connections(0),
    lambda: DenseNet(growth_rate=0),
    lambda: DenseNet(block_config=()),
    lambda: DenseNet(compression=0.0),
    lambda: cnnbook.get_model("densenet121", growth_rate=-32),
    lambda: DenseNet(stem="tiny"),
    lambda: ResNet(BasicBlock, (2, 2, 2), widths=(64, 128, 256, 512)),
    lambda: ResNet(BasicBlock, (2, 0, 2, 2)),
    lambda: ResNet(BasicBlock, (2, 2, 2, 2), stem="tiny"),
    lambda: cnnbook.get_model("resnet18", groups=2),
    lambda: cifar_resnet(21),
    lambda: BasicBlock(16, 16, stride=0),
])
def test_invalid_hyper_parameters_raise_value_error(build) -> None:
    with pytest.raises(ValueError, match="must|supports|changes"):
        build()


def test_reduction_error_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"reduction must be > 0.*got 0"):
        SqueezeExcite(64, reduction=0)
    with pytest.raises(ValueError, match=r"growth_rate must be > 0.*got 0"):
        DenseLayer(16, growth_rate=0)


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_an_unknown_stem_is_refused_with_the_choices(name: str) -> None:
    """Both families share one stem check: the message names the bad value and the two stems."""
    with pytest.raises(ValueError, match=r"stem must be one of \('imagenet', 'cifar'\).*got 'cifa'"):
        cnnbook.get_model(name, stem="cifa")
