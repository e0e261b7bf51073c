"""cnnbook.claims: the build-time checks behind the chapters' comparative sentences."""

from __future__ import annotations

import math

import pytest

from cnnbook.claims import ClaimError, expect, expect_greater, expect_within, seeds


def test_expect_passes_silently_and_fails_with_the_claim_and_its_numbers() -> None:
    expect(0.91 > 0.88, "ReLU ends above tanh", relu=0.91, tanh=0.88)
    with pytest.raises(ClaimError) as failure:
        expect(0.85 > 0.88, "ReLU ends above tanh", relu=0.85, tanh=0.88)
    message = str(failure.value)
    assert "'ReLU ends above tanh'" in message and "relu=0.85" in message and "tanh=0.88" in message
    assert isinstance(failure.value, AssertionError)  # a failing cell fails the book build


def test_expect_needs_the_sentence() -> None:
    with pytest.raises(ValueError, match="claim as the prose states it"):
        expect(True, "  ")


def test_seed_statistics() -> None:
    stats = seeds([0.90, 0.92, 0.91])
    assert math.isclose(stats.mean, 0.91) and (stats.low, stats.high) == (0.90, 0.92)
    assert math.isclose(stats.spread, 0.02)
    assert "range 0.9-0.92 over 3 seeds" in str(stats)
    with pytest.raises(ValueError, match="at least two seeds"):
        seeds([0.9])
    with pytest.raises(ValueError, match="diverged"):
        seeds([0.9, float("nan")])


def test_greater_needs_a_gap_larger_than_the_spread() -> None:
    a, b = expect_greater([0.90, 0.91, 0.92], [0.80, 0.82, 0.81], "residual beats plain")
    assert a.mean > b.mean
    # The means differ by 0.02 but one network's seeds range over 0.05: not a difference the runs show.
    with pytest.raises(ClaimError, match="gap=0.02"):
        expect_greater([0.88, 0.93, 0.90], [0.89, 0.88, 0.87], "A beats B")
    with pytest.raises(ClaimError):  # the wrong direction never passes
        expect_greater([0.80, 0.81], [0.90, 0.91], "A beats B")


def test_within_is_the_complement_of_greater() -> None:
    expect_within([0.88, 0.93, 0.90], [0.89, 0.88, 0.87], "A and B cannot be told apart")
    with pytest.raises(ClaimError, match="cannot be told apart"):
        expect_within([0.90, 0.91, 0.92], [0.80, 0.82, 0.81], "A and B cannot be told apart")
