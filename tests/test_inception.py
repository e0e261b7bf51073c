"""Chapter 6: the Inception module, GoogLeNet, Inception-v3 and their auxiliary classifiers."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnbook
from cnnbook.layers import (
    InceptionA,
    InceptionAux,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionModule,
    InceptionV3Aux,
)
from cnnbook.models import (
    GOOGLENET_CFG,
    GoogLeNetOutputs,
    InceptionOutputs,
    googlenet_loss,
    inception_v3_loss,
)


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _torchvision(name: str, **kwargs: object) -> nn.Module:
    with warnings.catch_warnings():  # torchvision warns that its default initialisation may change
        warnings.simplefilter("ignore", FutureWarning)
        return torchvision.models.get_model(name, weights=None, **kwargs)


# ---- the Inception module ---------------------------------------------------------------------------


@pytest.mark.parametrize("branch3_kernel", [3, 5])
def test_first_inception_block_192_to_256_keeps_height_and_width(branch3_kernel: int) -> None:
    block = InceptionModule(192, 64, 96, 128, 16, 32, 32, branch3_kernel=branch3_kernel).eval()
    x = torch.randn(2, 192, 28, 28)
    with torch.no_grad():
        branches = [block.branch1(x), block.branch2(x), block.branch3(x), block.branch4(x)]
        out = block(x)
    assert [b.shape[1] for b in branches] == [64, 128, 32, 32]
    assert all(b.shape[2:] == (28, 28) for b in branches)
    assert out.shape == (2, 256, 28, 28) and block.out_channels == 256
    torch.testing.assert_close(out, torch.cat(branches, 1))


def test_googlenet_first_block_is_the_lecture_block() -> None:
    assert GOOGLENET_CFG["inception3a"] == (64, 96, 128, 16, 32, 32)
    model = cnnbook.get_model("googlenet", init_weights=False)
    assert model.inception3a.branch1.conv.in_channels == 192
    assert model.inception3a.out_channels == 256


def test_inception_block_cost_matches_the_lecture_table() -> None:
    """0.16M weights and 128M mult-adds at 28x28 (lecture), against 0.44M / 346M for one 3x3 convolution."""
    block = InceptionModule(192, 64, 96, 128, 16, 32, 32)  # the paper's 5x5
    conv_weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
    assert conv_weights == 163_328
    assert round(conv_weights * 28 * 28 / 1e6) == 128
    plain_3x3 = 3 * 3 * 192 * 256
    assert round(plain_3x3 / 1e6, 2) == 0.44 and round(plain_3x3 * 28 * 28 / 1e6) == 347  # lecture: 346M
    assert conv_weights < plain_3x3 / 2


@pytest.mark.parametrize("kernel", [0, 4, -3])
def test_inception_module_rejects_even_kernels(kernel: int) -> None:
    with pytest.raises(ValueError, match="branch3_kernel"):
        InceptionModule(192, 64, 96, 128, 16, 32, 32, branch3_kernel=kernel)


def test_googlenet_auxiliary_head_shape() -> None:
    head = InceptionAux(512, 10).eval()
    with torch.no_grad():
        assert head(torch.randn(2, 512, 14, 14)).shape == (2, 10)
    assert head.fc1.in_features == 128 * 4 * 4


# ---- the Inception-v3 blocks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block,in_shape,out_shape",
    [
        (InceptionA(192, pool_features=32), (192, 35, 35), (256, 35, 35)),  # Mixed_5b
        (InceptionA(288, pool_features=64), (288, 35, 35), (288, 35, 35)),  # Mixed_5d: figure 5, 35x35x288
        (InceptionB(288), (288, 35, 35), (768, 17, 17)),  # Mixed_6a: grid reduction
        (InceptionC(768, channels_7x7=128), (768, 17, 17), (768, 17, 17)),  # figure 6, 17x17x768
        (InceptionD(768), (768, 17, 17), (1280, 8, 8)),  # Mixed_7a: grid reduction
        (InceptionE(1280), (1280, 8, 8), (2048, 8, 8)),  # figure 7, 8x8x2048
        (InceptionE(2048), (2048, 8, 8), (2048, 8, 8)),  # Mixed_7c
    ],
    ids=["A-5b", "A-5d", "B", "C", "D", "E-7b", "E-7c"],
)
def test_v3_blocks_give_the_paper_shapes(block: nn.Module, in_shape: tuple, out_shape: tuple) -> None:
    block.eval()
    with torch.no_grad():
        out = block(torch.randn(1, *in_shape))
    assert out.shape == (1, *out_shape)
    assert block.out_channels == out_shape[0]


def test_v3_factorised_kernels() -> None:
    """Figure 6 factorises 7x7 into 1x7 and 7x1; figure 7 puts 1x3 and 3x1 side by side."""
    c = InceptionC(768, channels_7x7=128)
    assert c.branch7x7_2.conv.kernel_size == (1, 7) and c.branch7x7_3.conv.kernel_size == (7, 1)
    e = InceptionE(1280)
    assert e.branch3x3_2a.conv.kernel_size == (1, 3) and e.branch3x3_2b.conv.kernel_size == (3, 1)
    a = InceptionA(192, pool_features=32)
    assert a.branch3x3dbl_2.conv.kernel_size == (3, 3) and a.branch3x3dbl_3.conv.kernel_size == (3, 3)


def test_inception_v3_stage_grids_at_299() -> None:
    """35x35x288 after stage 3, 17x17x768 after stage 4, 8x8x2048 after stage 5 (table 1 of the paper)."""
    model = cnnbook.get_model("inception_v3", init_weights=False).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    for stage in model.feature_info:
        module = model.get_submodule(stage.module)
        module.register_forward_hook(lambda m, i, o, name=stage.module: shapes.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.randn(1, 3, 299, 299))
    assert shapes == {
        "Conv2d_2b_3x3": (64, 147, 147),
        "Conv2d_4a_3x3": (192, 71, 71),
        "Mixed_5d": (288, 35, 35),
        "Mixed_6e": (768, 17, 17),
        "Mixed_7c": (2048, 8, 8),
    }
    assert [s.channels for s in model.feature_info] == [64, 192, 288, 768, 2048]
    assert [s.reduction for s in model.feature_info] == [2, 4, 8, 16, 32]


def test_googlenet_feature_info_matches_the_maps() -> None:
    model = cnnbook.get_model("googlenet", init_weights=False).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    for stage in model.feature_info:
        module = model.get_submodule(stage.module)
        module.register_forward_hook(lambda m, i, o, name=stage.module: shapes.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for stage in model.feature_info:
        side = 224 // stage.reduction
        assert shapes[stage.module] == (stage.channels, side, side), stage
    assert [s.channels for s in model.feature_info] == [64, 192, 480, 832, 1024]


# ---- auxiliary classifiers and the training loss -----------------------------------------------------


def test_googlenet_loss_adds_auxiliary_losses_with_weight_0_3() -> None:
    target = torch.tensor([0, 3, 1])
    logits, aux2, aux1 = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    expected = F.cross_entropy(logits, target) + 0.3 * (F.cross_entropy(aux2, target) + F.cross_entropy(aux1, target))
    torch.testing.assert_close(googlenet_loss(GoogLeNetOutputs(logits, aux2, aux1), target), expected)
    torch.testing.assert_close(googlenet_loss(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(
        googlenet_loss((logits, None, aux1), target, aux_weight=1.0),
        F.cross_entropy(logits, target) + F.cross_entropy(aux1, target),
    )
    torch.testing.assert_close(
        inception_v3_loss(InceptionOutputs(logits, aux2), target),
        F.cross_entropy(logits, target) + 0.4 * F.cross_entropy(aux2, target),
    )


def test_googlenet_train_mode_returns_auxiliary_logits() -> None:
    model = cnnbook.get_model("googlenet", num_classes=10, width_divisor=8).train()
    x, target = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [t.shape for t in out] == [(2, 10)] * 3
    googlenet_loss(out, target).backward()
    assert all(p.grad is not None for p in model.parameters())  # the auxiliary heads learn too
    model.eval()
    assert isinstance(model(x), torch.Tensor)
    no_aux = cnnbook.get_model("googlenet", num_classes=10, width_divisor=8, aux_logits=False).train()
    assert no_aux.aux1 is None and isinstance(no_aux(x), torch.Tensor)


def test_inception_v3_train_mode_returns_auxiliary_logits() -> None:
    model = cnnbook.get_model("inception_v3", num_classes=10, width_divisor=8).train()
    x, target = torch.randn(2, 3, 299, 299), torch.tensor([1, 7])
    out = model(x)
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == (2, 10) and out.aux_logits.shape == (2, 10)
    inception_v3_loss(out, target).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    model.eval()
    with torch.no_grad():
        assert isinstance(model(x), torch.Tensor)


def test_reset_classifier_also_resets_auxiliary_heads() -> None:
    model = cnnbook.get_model("googlenet", width_divisor=8).train()
    model.reset_classifier(7)
    assert [t.shape for t in model(torch.randn(2, 3, 32, 32))] == [(2, 7)] * 3
    v3 = cnnbook.get_model("inception_v3", width_divisor=8)
    v3.reset_classifier(4)
    assert isinstance(v3.AuxLogits, InceptionV3Aux) and v3.AuxLogits.fc.out_features == 4


@pytest.mark.slow
def test_train_mode_matches_torchvision_with_auxiliary_outputs() -> None:
    """With dropout off, training-mode outputs (batch statistics, aux heads) equal torchvision's."""
    kwargs = dict(dropout=0.0, dropout_aux=0.0, transform_input=True)
    ours = cnnbook.get_model("googlenet", init_weights=False, **kwargs).train()
    theirs = _torchvision("googlenet", init_weights=False, **kwargs).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x), strict=True):
            torch.testing.assert_close(a, b)
    ours_v3 = cnnbook.get_model("inception_v3", dropout=0.0, init_weights=False).train()
    theirs_v3 = _torchvision("inception_v3", dropout=0.0, init_weights=False).train()
    ours_v3.load_state_dict(theirs_v3.state_dict(), strict=True)
    x = torch.randn(2, 3, 299, 299)  # the auxiliary head needs 299x299
    with torch.no_grad():
        for a, b in zip(ours_v3(x), theirs_v3(x), strict=True):
            torch.testing.assert_close(a, b)


# ---- parameter counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,with_aux,without_aux",
    [("googlenet", 13_004_888, 6_624_904), ("inception_v3", 27_161_264, 23_834_568)],
)
def test_parameter_counts_equal_torchvision(name: str, with_aux: int, without_aux: int) -> None:
    """GoogLeNet: 13,004,888 with the two aux heads (default), 6,624,904 without (the syllabus figure)."""
    fast = dict(init_weights=False)  # the counts do not depend on the initialisation
    assert _numel(cnnbook.get_model(name, **fast)) == _numel(_torchvision(name, **fast)) == with_aux
    no_aux = dict(aux_logits=False, **fast)
    assert _numel(cnnbook.get_model(name, **no_aux)) == _numel(_torchvision(name, **no_aux)) == without_aux


def test_paper_5x5_variant_has_more_parameters() -> None:
    torchvision_like = _numel(cnnbook.get_model("googlenet", init_weights=False))
    paper = cnnbook.get_model("googlenet", branch3_kernel=5, init_weights=False)
    assert paper.inception3a.branch3[1].conv.kernel_size == (5, 5)
    extra = sum(red * out * (25 - 9) for _, _, _, red, out, _ in GOOGLENET_CFG.values())
    assert _numel(paper) == torchvision_like + extra == torchvision_like + 380_928


# ---- input sizes and invalid arguments ---------------------------------------------------------------


def test_googlenet_min_input_size() -> None:
    model = cnnbook.get_model("googlenet", num_classes=10, width_divisor=8)
    assert model.min_input_size == 15
    model.train()
    assert isinstance(model(torch.randn(2, 3, 15, 15)), GoogLeNetOutputs)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 15, 15)).shape == (1, 10)
        with pytest.raises(ValueError, match="at least 15x15"):
            model(torch.randn(1, 3, 14, 14))


def test_inception_v3_min_input_size_depends_on_the_auxiliary_head() -> None:
    model = cnnbook.get_model("inception_v3", num_classes=10, width_divisor=8).eval()
    assert model.min_input_size == 75
    with torch.no_grad():
        assert model(torch.randn(1, 3, 75, 75)).shape == (1, 10)
        with pytest.raises(ValueError, match="at least 75x75"):
            model(torch.randn(1, 3, 74, 74))
    model.train()  # the auxiliary head's fixed 5x5 windows need the 17x17 grid
    assert model.min_input_size == 299
    with pytest.raises(ValueError, match="at least 299x299"):
        model(torch.randn(2, 3, 298, 298))
    no_aux = cnnbook.get_model("inception_v3", num_classes=10, width_divisor=8, aux_logits=False).train()
    assert no_aux.min_input_size == 75
    assert no_aux(torch.randn(2, 3, 75, 75)).shape == (2, 10)


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_invalid_arguments_raise(name: str) -> None:
    with pytest.raises(ValueError, match="width_divisor"):
        cnnbook.get_model(name, width_divisor=0)
    with pytest.raises(ValueError, match="in_channels must be 3"):
        cnnbook.get_model(name, in_channels=1, transform_input=True, width_divisor=8)
    with pytest.raises(ValueError, match="dropout"):
        cnnbook.get_model(name, dropout=1.5, width_divisor=8)
