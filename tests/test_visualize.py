"""The ZF-Net-style visualisation helpers (cnnbook.visualize): computation on tiny models, no screen needed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from cnnbook.visualize import (
    feature_maps, filter_grid, occlusion_sensitivity, plot_filters, plot_maps, project_to_input, top_activating,
)


def tiny() -> nn.Sequential:
    # N x 3 x 16 x 16 -> conv N x 4 x 16 x 16 -> relu -> global max -> 2 classes
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2))


def test_filter_grid_layout_and_range() -> None:
    w = torch.randn(5, 3, 3, 3)
    grid = filter_grid(w, cols=3, pad=1)
    assert grid.shape == (2 * 4 - 1, 3 * 4 - 1, 3)             # 2 rows x 3 cols of 3 x 3 tiles, H x W x C
    assert grid.min() == 0 and grid.max() == 1
    assert torch.allclose(grid[:3, :3].permute(2, 0, 1), (w[0] - w[0].min()) / (w[0].max() - w[0].min()))
    assert filter_grid(torch.randn(4, 1, 5, 5)).shape == (11, 11, 1)
    with pytest.raises(ValueError):
        filter_grid(torch.randn(4, 2, 3, 3))


def test_feature_maps_match_the_layer_and_restore_mode() -> None:
    model = tiny().train()
    x = torch.randn(2, 3, 16, 16)
    maps = feature_maps(model, "1", x)                        # after the ReLU
    assert torch.allclose(maps, torch.relu(model[0](x)).detach())
    assert model.training


def test_top_activating_finds_the_bright_image() -> None:
    model = tiny()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
        model[0].weight[0, 0, 1, 1] = 1.0                       # channel 0 copies the red channel
    images = torch.zeros(6, 3, 16, 16)
    images[4, 0, 5, 5] = 3.0
    images[2, 0, 9, 9] = 2.0
    indices, values = top_activating(model, model[0], images, k=2, batch_size=4)
    assert indices.shape == values.shape == (4, 2)
    assert indices[0].tolist() == [4, 2] and values[0].tolist() == [3.0, 2.0]


def test_occlusion_sensitivity_drops_where_the_evidence_is() -> None:
    model = tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model[0].weight[0, 0, 1, 1] = 1.0
        model[4].weight[1, 0] = 5.0                             # class 1 <- channel 0
    image = torch.zeros(3, 16, 16)
    image[0, 2, 2] = 2.0                                        # the only evidence, top left
    heat = occlusion_sensitivity(model, image, target=1, patch=4, stride=4)
    assert heat.shape == (4, 4)
    assert heat[0, 0] == pytest.approx(0.5)                     # hidden: no evidence, a uniform guess
    assert heat[3, 3] > 0.99                                    # elsewhere: the evidence is seen


def test_project_to_input_of_first_layer_is_the_filter() -> None:
    model = tiny()
    image = torch.randn(3, 16, 16)
    channel = 2
    grad = project_to_input(model, model[0], image, channel)
    out = model[0](image[None])[0, channel]
    y, x = divmod(int(out.argmax()), 16)
    patch = torch.nn.functional.pad(grad, (1, 1, 1, 1))[:, y:y + 3, x:x + 3]
    assert torch.allclose(patch, model[0].weight[channel].detach(), atol=1e-6)
    assert float(grad.abs().sum()) == pytest.approx(float(patch.abs().sum()), rel=1e-5)  # zero outside the receptive field


def test_plots_draw() -> None:
    ax = plot_filters(filter_grid(torch.randn(4, 3, 3, 3)), title="filters")
    assert ax.get_title() == "filters"
    fig = plot_maps(torch.rand(5, 4, 4), cols=3, title="maps")
    assert len(fig.axes) == 6


class _Breaks(nn.Module):
    """A model whose forward pass fails, to see what a measurement leaves behind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.conv(x)
        raise RuntimeError("broken on purpose")


def test_a_failing_measurement_restores_training_mode_and_removes_its_hooks() -> None:
    """occlusion_sensitivity, feature_maps and the shared probing() leave the model as they found it."""
    from cnnbook._probe import probing

    model = _Breaks().train()
    with pytest.raises(RuntimeError, match="on purpose"):
        occlusion_sensitivity(model, torch.zeros(1, 8, 8), target=0)
    assert model.training
    with pytest.raises(RuntimeError, match="on purpose"):
        feature_maps(model, "conv", torch.zeros(1, 1, 8, 8))
    assert model.training and not model.conv._forward_hooks
    handle = model.conv.register_forward_hook(lambda *_: None)
    with pytest.raises(RuntimeError, match="on purpose"), probing(model, [handle]):
        assert not model.training and not torch.is_grad_enabled()
        model(torch.zeros(1, 1, 8, 8))
    assert model.training and not model.conv._forward_hooks and torch.is_grad_enabled()
