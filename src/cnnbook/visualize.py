"""What a convolutional layer responds to, in the spirit of ZF-Net (Zeiler and Fergus 2013/2014).

Zeiler and Fergus, "Visualizing and Understanding Convolutional Networks", looked inside a trained
AlexNet four ways, all of which are here in a simple form:

- the first-layer filters, drawn as small images (:func:`filter_grid`);
- the feature maps of a layer for one input (:func:`feature_maps`);
- for each channel, the inputs that activate it most (:func:`top_activating`);
- occlusion sensitivity: how much the score of the true class drops when a grey square hides each part
  of the image (:func:`occlusion_sensitivity`);
- and a projection of one strong activation back to the pixels (:func:`project_to_input`): the gradient
  of that activation with respect to the input, which for the first layer is the deconvnet's projection
  (the filter, painted where it fired); deeper, the deconvnet differs only in how it passes ReLUs.

Computation and display are apart: the functions above return tensors and do not import matplotlib;
the ``plot_*`` functions draw what they computed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._probe import probing

__all__ = [
    "filter_grid", "feature_maps", "top_activating", "occlusion_sensitivity", "project_to_input",
    "plot_filters", "plot_maps",
]


def _layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """``layer`` itself, or the submodule of ``model`` with that dotted name (e.g. ``"features.0"``)."""
    return model.get_submodule(layer) if isinstance(layer, str) else layer


def filter_grid(weight: Tensor, cols: int | None = None, pad: int = 1) -> Tensor:
    """First-layer filters tiled into one image: H x W x C (C = 1 or 3), values in [0, 1].

    Args:
        weight: ``C_out x C_in x k x k`` with ``C_in`` 1 (grey) or 3 (colour, drawn as RGB).
        cols: tiles per row (default: about square).
        pad: pixels of white between tiles.

    Each filter is stretched to [0, 1] on its own (its smallest weight black, its largest white), so
    that the pattern shows however large its weights are; mid-grey is not zero.
    """
    if weight.dim() != 4 or weight.shape[1] not in (1, 3):
        raise ValueError(f"expected C_out x (1 or 3) x k x k first-layer weights; got {tuple(weight.shape)}.")
    w = weight.detach().float().cpu()
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    tiles = (w - lo) / (hi - lo).clamp_min(1e-12)  # C_out x C_in x kh x kw, each in [0, 1]
    n, c, kh, kw = tiles.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = torch.ones(c, rows * (kh + pad) - pad, cols * (kw + pad) - pad)
    for i, tile in enumerate(tiles):
        r, q = divmod(i, cols)
        canvas[:, r * (kh + pad): r * (kh + pad) + kh, q * (kw + pad): q * (kw + pad) + kw] = tile
    return canvas.permute(1, 2, 0)  # H x W x C


@torch.no_grad()
def feature_maps(model: nn.Module, layer: nn.Module | str, images: Tensor) -> Tensor:
    """The output of ``layer`` (a module of ``model`` or its dotted name) for ``images`` (N x C x H x W).

    The model runs in eval mode; a forward hook records the layer's output, which is returned
    (N x C' x H' x W' for a convolution). The model's own output is discarded.
    """
    module = _layer(model, layer)
    seen: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    with probing(model, [handle]):
        model(images)
    return seen[0]


@torch.no_grad()
def top_activating(model: nn.Module, layer: nn.Module | str, images: Tensor, k: int = 5,
                   batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """For each channel of ``layer``: the ``k`` images with the strongest activation, and that activation.

    The strength of an image for a channel is the maximum of the channel's map over all positions
    (ZF-Net shows the top 9 per channel). Returns ``(indices, values)``, both ``C x k``, strongest first.
    """
    strengths = []
    for start in range(0, len(images), batch_size):
        maps = feature_maps(model, layer, images[start:start + batch_size])  # B x C x H x W
        strengths.append(maps.flatten(2).amax(dim=2))                      # B x C
    per_image = torch.cat(strengths)                                        # N x C
    values, indices = per_image.topk(min(k, len(images)), dim=0)            # k x C
    return indices.T.contiguous(), values.T.contiguous()


@torch.no_grad()
def occlusion_sensitivity(model: nn.Module, image: Tensor, target: int, patch: int = 8, stride: int = 4,
                          fill: float = 0.0, batch_size: int = 64) -> Tensor:
    """Probability of class ``target`` while a ``patch`` x ``patch`` square hides each part of ``image``.

    ``image`` is one C x H x W (normalised) input; ``fill`` is the value of the square (0: the mean
    image, after normalisation). Returns an H' x W' map with one entry per position of the square
    (moved ``stride`` pixels at a time); a low value means the model needs what the square hid.
    """
    if image.dim() != 3:
        raise ValueError(f"image must be C x H x W; got {tuple(image.shape)}.")
    _, h, w = image.shape
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    occluded = image.expand(len(ys) * len(xs), *image.shape).clone()
    for i, (y, x) in enumerate((y, x) for y in ys for x in xs):
        occluded[i, :, y:y + patch, x:x + patch] = fill
    with probing(model):  # evaluation mode, restored even if a batch fails
        probs = torch.cat([model(occluded[s:s + batch_size]).softmax(dim=1)[:, target]
                           for s in range(0, len(occluded), batch_size)])
    return probs.view(len(ys), len(xs))


def project_to_input(model: nn.Module, layer: nn.Module | str, image: Tensor, channel: int) -> Tensor:
    """Gradient of the strongest activation of ``channel`` in ``layer`` with respect to ``image`` (C x H x W).

    For a first-layer convolution this is the deconvnet's projection of that one unit: the filter,
    placed where the unit's receptive field lies, and zero elsewhere.
    """
    module = _layer(model, layer)
    seen: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    x = image.detach()[None].clone().requires_grad_(True)
    with probing(model, [handle], grad=True):
        model(x)
        (grad,) = torch.autograd.grad(seen[0][0, channel].max(), x)
    return grad[0]


# ---- display -------------------------------------------------------------------------------------------
def plot_filters(grid: Tensor, ax: Any = None, title: str | None = None) -> Any:
    """Draw a :func:`filter_grid` (grey or RGB); returns the Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    image = grid.numpy()
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def plot_maps(maps: Tensor, channels: list[int] | None = None, cols: int = 8, title: str | None = None) -> Any:
    """Draw the maps of one image (C x H x W), one panel per channel; returns the Figure."""
    import matplotlib.pyplot as plt

    channels = list(range(len(maps))) if channels is None else channels
    rows = math.ceil(len(channels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, channels):
        ax.imshow(maps[c].numpy(), cmap="viridis", interpolation="nearest")
        ax.set_title(f"map {c}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
