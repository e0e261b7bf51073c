"""Channel-width arithmetic shared by the efficient networks (MobileNet v2/v3, EfficientNet, RegNet)."""

from __future__ import annotations

__all__ = ["make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``min_value`` (default
    ``divisor``) and never more than 10% below ``value``.

    The rule of TensorFlow's MobileNet release, which torchvision copies: hardware runs channel counts
    that are multiples of 8 faster, so every width multiplier is followed by this rounding. With the same
    rule our channel counts equal torchvision's, e.g. ``make_divisible(32 * 0.35) == 16``.
    """
    if divisor <= 0:
        raise ValueError(f"divisor must be > 0 (channel counts become multiples of it); got {divisor!r}.")
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:  # rounding down lost more than 10%: go one step up
        rounded += divisor
    return rounded
