"""Argument checks shared by layers and models: a bad hyper-parameter raises ``ValueError`` saying which and why.

This module imports nothing from the package, so layers and models can both use it without import cycles.
"""

from __future__ import annotations

__all__ = ["STEMS", "check_positive", "check_dropout", "check_stem"]

# The two stems of the ResNet and DenseNet families: ImageNet's 7x7/2 conv + 3x3/2 pool, or CIFAR's one 3x3 conv.
STEMS = ("imagenet", "cifar")


def check_positive(name: str, value: float, why: str = "") -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` is not strictly positive."""
    if not value > 0:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name} must be > 0{reason}; got {value!r}.")


def check_dropout(dropout: float) -> None:
    """Raise ``ValueError`` unless ``0 <= dropout < 1`` (1 would zero every activation)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a probability in [0, 1); got {dropout!r}.")


def check_stem(stem: str) -> None:
    """Raise ``ValueError`` unless ``stem`` is one of ``STEMS``."""
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS} (ImageNet's 7x7/2 stem with pooling, or CIFAR's 3x3); "
                         f"got {stem!r}.")
