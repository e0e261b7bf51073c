"""The interface every classifier of the course shares.

Following timm, every classifier splits into ``forward_features`` (the convolutional body, returning a
feature map) and ``forward_head`` (pooling, flattening, classifier), can swap its classifier with
``reset_classifier(num_classes)``, and describes its stages in ``feature_info`` (channels and total
stride), which the transfer-learning chapter and the receptive-field calculator use.

Attribute names follow torchvision where torchvision has the same network, so that a torchvision
``state_dict`` loads into ours with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import torch
from torch import Tensor, nn

from .._checks import check_positive

__all__ = ["StageInfo", "ImageClassifier", "check_image_batch", "check_positive", "trunc_normal_init",
           "imagenet_to_google_scaling", "stage_ends"]


@dataclass(frozen=True)
class StageInfo:
    """One stage of a network's body, as seen from the outside."""

    module: str     # dotted path of the module whose output ends the stage, e.g. "layer2"
    channels: int   # channels of that output
    reduction: int  # total stride of that output relative to the input (1, 2, 4, ... 32)


def stage_ends(prefix: str, strides: list[int], channels: list[int]) -> list[StageInfo]:
    """One ``StageInfo`` per resolution of a ``Sequential`` body called ``prefix``: its module ``i`` ends a
    stage when module ``i + 1`` has stride 2 (or when it is the last). ``strides[i]`` and ``channels[i]``
    describe module ``i``. Used by every network whose body is one ``features`` Sequential."""
    if len(strides) != len(channels):
        raise ValueError(f"strides and channels must have one entry per module; got {len(strides)} and {len(channels)}.")
    infos: list[StageInfo] = []
    reduction = 1
    for i, stride in enumerate(strides):
        reduction *= stride
        if i + 1 == len(strides) or strides[i + 1] != 1:
            infos.append(StageInfo(f"{prefix}.{i}", channels[i], reduction))
    return infos


def check_image_batch(x: Tensor, name: str, in_channels: int, expected: str) -> tuple[int, int]:
    """Check that ``x`` is an ``N x in_channels x H x W`` tensor and return ``(H, W)``.

    Every network of the package (classifiers and U-Net alike) starts its input checks here, so the
    messages name the expected shape, ``expected``, the same way everywhere.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of shape {expected}; got {type(x).__name__}.")
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(f"{name} expects a 4-D batch of shape {expected}; got shape {tuple(x.shape)}.{hint}")
    _, c, h, w = x.shape
    if c != in_channels:
        raise ValueError(
            f"{name} expects {in_channels} input channel(s), shape {expected}; got {c} channel(s) in shape "
            f"{tuple(x.shape)}. Build the model with in_channels={c} or convert the images."
        )
    return h, w


class ImageClassifier(nn.Module):
    """Base class: input checking, ``forward = forward_head(forward_features(x))``, classifier swap.

    Subclasses set, in ``__init__``:

    - ``self.in_channels``: channels the first layer expects;
    - ``self.min_input_size``: the smallest height/width for which every layer has a non-empty output;
    - ``self.fixed_input_size``: ``(H, W)`` when the head has no adaptive pooling and only that size fits;
    - ``self.feature_info``: a list of :class:`StageInfo`;
    - class attribute ``classifier_path``: dotted path of the final layer that ``reset_classifier`` replaces.

    and implement ``forward_features`` and ``forward_head``.
    """

    classifier_path: str = "fc"
    in_channels: int = 3
    min_input_size: int = 1
    fixed_input_size: tuple[int, int] | None = None
    feature_info: list[StageInfo]

    # ---- input checking -------------------------------------------------------------------------
    def expected_shape(self) -> str:
        if self.fixed_input_size is not None:
            h, w = self.fixed_input_size
            return f"(N, {self.in_channels}, {h}, {w})"
        return f"(N, {self.in_channels}, H, W) with H, W >= {self.min_input_size}"

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` naming the expected shape when ``x`` does not fit this network."""
        name = type(self).__name__
        h, w = check_image_batch(x, name, self.in_channels, self.expected_shape())
        if self.fixed_input_size is not None and (h, w) != tuple(self.fixed_input_size):
            raise ValueError(
                f"{name} expects inputs of shape {self.expected_shape()}; got {tuple(x.shape)}. "
                f"Resize (or pad) the images to {self.fixed_input_size[0]}x{self.fixed_input_size[1]}."
            )
        if min(h, w) < self.min_input_size:
            raise ValueError(
                f"{name} expects inputs of shape {self.expected_shape()}; got {tuple(x.shape)}, "
                f"which some layer would shrink to nothing. Use images of at least "
                f"{self.min_input_size}x{self.min_input_size}."
            )

    # ---- the three-part forward -----------------------------------------------------------------
    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    # ---- classifier swap (transfer learning) ----------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return reduce(getattr, self.classifier_path.split("."), self)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer with a freshly initialised one for ``num_classes`` classes.

        ``num_classes=0`` replaces it with ``nn.Identity``, so the model returns its pre-logit features.
        """
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 removes the classifier); got {num_classes}.")
        old = self.get_classifier()
        new: nn.Module
        if num_classes == 0:
            new = nn.Identity()
        elif isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, num_classes)
        elif isinstance(old, nn.Conv2d):
            new = nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size)
        else:
            raise TypeError(f"Cannot reset a classifier of type {type(old).__name__}.")
        new = new.to(next(self.parameters()).device)
        parent_path, _, attr = self.classifier_path.rpartition(".")
        parent = reduce(getattr, parent_path.split("."), self) if parent_path else self
        if isinstance(parent, nn.Sequential) and attr.isdigit():
            parent[int(attr)] = new
        else:
            setattr(parent, attr, new)
        self.num_classes = num_classes

    @property
    def num_features(self) -> int:
        """Width of the vector that enters the final layer."""
        old = self.get_classifier()
        if isinstance(old, nn.Linear):
            return old.in_features
        if isinstance(old, nn.Conv2d):
            return old.in_channels
        raise TypeError(f"{type(self).__name__} has no readable classifier width.")


class AuxHeadClassifier(ImageClassifier):
    """Base of the networks with auxiliary classifiers for training (GoogLeNet, Inception-v3).

    In training mode with ``aux_logits``, ``forward`` returns ``outputs_type(logits, *auxiliary logits)``
    (torchvision's named tuples); in evaluation, or without auxiliary heads, only the logits.
    ``reset_classifier`` also replaces the last layer of every auxiliary head.

    Subclasses set ``aux_logits`` and the class attribute ``outputs_type``, and implement ``_body(x,
    with_aux)``, which returns the features and then the auxiliary outputs in ``outputs_type``'s order
    (``None`` when not computed), and ``aux_heads()``.
    """

    outputs_type: type
    aux_logits: bool = False

    def _body(self, x: Tensor, with_aux: bool) -> tuple[Tensor | None, ...]:
        raise NotImplementedError

    def aux_heads(self) -> list[nn.Module | None]:
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        return self._body(x, with_aux=False)[0]

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor | None, ...]:  # type: ignore[override]
        self.check_input(x)
        with_aux = self.training and self.aux_logits
        features, *aux = self._body(x, with_aux)
        logits = self.forward_head(features)
        return self.outputs_type(logits, *aux) if with_aux else logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier and the last layer of every auxiliary head."""
        super().reset_classifier(num_classes)
        for head in self.aux_heads():
            if head is not None:
                head.reset_classifier(num_classes)


def trunc_normal_init(model: nn.Module, std: float) -> None:
    """torchvision's initialisation of GoogLeNet (std 0.01) and Inception-v3 (std 0.1): every convolution
    and linear weight from a normal distribution truncated to [-2, 2], BatchNorm as the identity."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2, b=2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def imagenet_to_google_scaling(x: Tensor) -> Tensor:
    """Map an ImageNet-normalised image (N x 3 x H x W) to the [-1, 1] scaling that Google's GoogLeNet and
    Inception-v3 weights expect, channel by channel (torchvision's ``transform_input``)."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)
