"""The model registry: one entry per network of the course.

Modelled on torchvision's ``torchvision.models._api`` (``register_model``, ``list_models``,
``get_model``), with the teaching facts each entry needs stored beside the builder as data:
the chapter that teaches it, the paper, the year, the native input size, and, where torchvision
has the same architecture, torchvision's builder name (the tests check parameter counts and
outputs against it).
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

__all__ = ["ModelInfo", "register_model", "list_models", "get_model", "get_meta_model", "get_model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What the course records about one registered network."""

    name: str                          # registry name; torchvision's where torchvision has the network
    builder: Callable[..., nn.Module]  # the public one-line builder, e.g. ``resnet50``
    chapter: int | None                # chapter of the book that teaches it; None: only in the zoo (chapter 15)
    paper: str                         # short citation, e.g. "He et al. 2015, Deep Residual Learning..."
    year: int                          # year of the paper
    input_size: tuple[int, int, int]   # native input (C, H, W)
    key_idea: str                      # one line for the model-zoo table
    depth: int | None = None           # weight layers on the main path, as the paper counts them
    torchvision: str | None = None     # torchvision builder with the same architecture, if any
    task: str = "classification"       # "classification" or "segmentation"
    # Keyword arguments and input size of a small configuration that trains on a CPU in minutes.
    small_kwargs: dict[str, Any] = field(default_factory=dict)
    small_input_size: tuple[int, int, int] = (3, 32, 32)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    paper: str,
    year: int,
    input_size: tuple[int, int, int],
    key_idea: str,
    depth: int | None = None,
    torchvision: str | None = None,
    task: str = "classification",
    small_kwargs: dict[str, Any] | None = None,
    small_input_size: tuple[int, int, int] = (3, 32, 32),
    name: str | None = None,
    chapter: int | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that records a public builder in the registry under its function name.

    ``chapter`` is optional: a network no chapter teaches is still listed, tested and shown in the zoo.
    """

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"A model named {key!r} is already registered.")
        _REGISTRY[key] = ModelInfo(
            name=key,
            builder=builder,
            chapter=chapter,
            paper=paper,
            year=year,
            input_size=input_size,
            key_idea=key_idea,
            depth=depth,
            torchvision=torchvision,
            task=task,
            small_kwargs=dict(small_kwargs or {}),
            small_input_size=small_input_size,
        )
        return builder

    return wrap


def _ensure_loaded() -> None:
    # Importing the models package runs every @register_model decorator.
    from . import models  # noqa: F401


def _patterns(value: str | Iterable[str] | None, name: str) -> list[str]:
    if value is None:
        return []
    patterns = [value] if isinstance(value, str) else list(value) if isinstance(value, Iterable) else [value]
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"{name} takes a glob pattern such as 'resnet*' or a list of them; got {value!r}.")
    return patterns


def list_models(
    chapter: int | None = None,
    task: str | None = None,
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> list[str]:
    """Sorted names of every registered network, optionally filtered, like torchvision's ``list_models``.

    Args:
        chapter: only the networks of this chapter.
        task: only ``"classification"`` or ``"segmentation"`` networks.
        include: glob pattern(s) (``fnmatch``), e.g. ``"resnet*"`` or ``["vgg*", "alexnet"]``: keep the
            names matching any of them.
        exclude: glob pattern(s): drop the names matching any of them, e.g. ``"*_bn"``.
    """
    _ensure_loaded()
    keep, drop = _patterns(include, "include"), _patterns(exclude, "exclude")
    names = [
        name
        for name, info in _REGISTRY.items()
        if (chapter is None or info.chapter == chapter) and (task is None or info.task == task)
    ]
    if keep:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in keep)]
    if drop:
        names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in drop)]
    return sorted(names)


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; an unknown name raises ``ValueError`` listing close names."""
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY.keys(), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model name {name!r}.{hint} "
            f"cnnbook.list_models() lists all {len(_REGISTRY)} registered names."
        )
    return _REGISTRY[name]


def get_model(name: str, *, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered network by name, like ``torchvision.models.get_model``.

    ``weights`` is ``None`` (random initialisation), ``"DEFAULT"`` or the name of a torchvision weights
    enum member (torchvision's ImageNet weights, for architectures torchvision has), or a path to a
    local checkpoint (a state dict saved with ``torch.save``); see ``cnnbook.weights``.
    """
    info = get_model_info(name)
    model = info.builder(**kwargs)
    if weights is not None:
        from .weights import load_weights

        load_weights(model, info, weights)
    return model


def get_meta_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered network on PyTorch's ``meta`` device: shapes and no data.

    Enough for counting parameters and mult-adds (:mod:`cnnbook.calc`) of networks as large as VGG-19
    without allocating their weights, which keeps a Binder session (1-2 GB) well within memory.
    """
    with torch.device("meta"):
        return get_model(name, **kwargs)
