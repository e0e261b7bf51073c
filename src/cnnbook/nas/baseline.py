"""Random search: the baseline every NAS method must beat (Li & Talwalkar 2019; Yu et al. 2019).

Draw architectures uniformly from the space, evaluate each, keep the best. It has no memory and
no model of the space, so any method that learns from its rewards should find good cells sooner.
"""

from __future__ import annotations

import random
import time
from typing import Callable

from ..config import capped
from .evaluate import EvalResult, SearchHistory, reward_of
from .space import SPACE, Arch, SearchSpace

__all__ = ["random_search"]


def random_search(
    evaluate: Callable[[Arch], EvalResult | float], evaluations: int, space: SearchSpace = SPACE, seed: int = 0,
) -> SearchHistory:
    """Evaluate ``evaluations`` uniformly drawn architectures of ``space``; return the search history."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1; got {evaluations}.")
    rng = random.Random(seed)
    history = SearchHistory("random search")
    start = time.perf_counter()
    for _ in range(capped(evaluations)):  # CNNBOOK_MAX_STEPS caps the proposals
        arch = space.sample(rng)
        history.add(arch, reward_of(evaluate(arch)), time.perf_counter() - start)
    history.seconds = time.perf_counter() - start
    history.trainings = len({r.arch for r in history.records})
    return history
