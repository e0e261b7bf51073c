"""Build-time checks of the comparative sentences in the chapters.

A chapter that writes "A converges faster than B" or "the difference is within the spread of the seeds"
backs the sentence with one call here, in the same (hidden) cell that glues the numbers into the prose.
When a later change to the code, the data or the settings makes the numbers stop supporting the sentence,
the call raises ``ClaimError`` and the book build fails with the claim and its numbers, instead of
publishing a sentence that its own figures contradict.

>>> from cnnbook.claims import expect, expect_greater, seeds
>>> expect(0.91 > 0.88, "ReLU ends above tanh", relu=0.91, tanh=0.88)
>>> resnet, plain = [0.90, 0.91, 0.92], [0.80, 0.82, 0.81]
>>> expect_greater(resnet, plain, "the residual network beats its plain twin beyond the seed spread")
>>> seeds(resnet).mean
0.91

Seed statistics: ``spread`` is max - min over the seeds (with three seeds it is the honest summary; a
standard deviation of three numbers says little). "A beats B" means the gap between the means exceeds
the larger of the two spreads; "A and B are within the spread" means it does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ClaimError", "SeedStats", "expect", "expect_greater", "expect_within", "seeds"]


class ClaimError(AssertionError):
    """A sentence of the book is no longer supported by the numbers computed in the build."""


@dataclass(frozen=True)
class SeedStats:
    """Summary of one measurement repeated over seeds."""

    values: tuple[float, ...]
    mean: float
    low: float
    high: float

    @property
    def spread(self) -> float:
        """Range over the seeds (max - min)."""
        return self.high - self.low

    def __str__(self) -> str:
        return f"{self.mean:.4g} (range {self.low:.4g}-{self.high:.4g} over {len(self.values)} seeds)"


def seeds(values: Sequence[float]) -> SeedStats:
    """Mean and range of one measurement over seeds; at least two finite values."""
    floats = tuple(float(v) for v in values)
    if len(floats) < 2:
        raise ValueError(f"seeds() needs the measurement of at least two seeds to show a spread; got {floats}.")
    if not all(math.isfinite(v) for v in floats):
        raise ValueError(f"seeds() got a value that is not finite: {floats}. A run diverged; fix it first.")
    return SeedStats(floats, round(sum(floats) / len(floats), 12), min(floats), max(floats))


def _numbers(numbers: dict[str, object]) -> str:
    def show(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{name}={show(value)}" for name, value in numbers.items()) or "(none given)"


def expect(condition: object, claim: str, **numbers: object) -> None:
    """Fail the build when ``condition`` is false: the prose's ``claim`` no longer holds for these ``numbers``."""
    if not claim.strip():
        raise ValueError("expect() needs the claim as the prose states it, so a failure says which sentence broke.")
    if not condition:
        raise ClaimError(
            f"The book claims: {claim!r}, but the numbers computed in this build do not support it: "
            f"{_numbers(numbers)}. Rerun the experiment with settings that show the effect, or change the sentence."
        )


def expect_greater(a: Sequence[float], b: Sequence[float], claim: str, **numbers: object) -> tuple[SeedStats, SeedStats]:
    """"A beats B": the mean of ``a`` exceeds the mean of ``b`` by more than the larger spread of the two."""
    sa, sb = seeds(a), seeds(b)
    margin = max(sa.spread, sb.spread)
    expect(sa.mean - sb.mean > margin, claim, a=str(sa), b=str(sb), gap=sa.mean - sb.mean, spread=margin, **numbers)
    return sa, sb


def expect_within(a: Sequence[float], b: Sequence[float], claim: str, **numbers: object) -> tuple[SeedStats, SeedStats]:
    """"A and B cannot be told apart": the gap between the means is no larger than the larger spread."""
    sa, sb = seeds(a), seeds(b)
    margin = max(sa.spread, sb.spread)
    expect(abs(sa.mean - sb.mean) <= margin, claim, a=str(sa), b=str(sb), gap=sa.mean - sb.mean, spread=margin,
           **numbers)
    return sa, sb
