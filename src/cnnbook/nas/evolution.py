"""Evolutionary NAS: regularised ("aging") evolution, Real, Aggarwal, Huang, Le 2018 (AmoebaNet).

A population of architectures evolves under selection:

1. **initialise**: ``population`` architectures drawn at random and evaluated;
2. **select**: a *tournament* draws ``tournament`` members at random and keeps the best as a parent;
3. **crossover** (with probability ``crossover_prob``): a second parent is selected the same way and
   the child takes the operations of one parent up to a cut point, the other's after it (one-point),
   or alternates at several cut points (multi-point);
4. **mutate**: change one edge's operation, or add / remove a skip connection (an edge that carried
   nothing now carries the identity, or the other way round);
5. **update**: the child is evaluated and joins the population; to keep its size, the *oldest* member
   dies (regularised evolution: only architectures that stay good when re-discovered survive), or,
   in a classic genetic algorithm, the *worst*.

AmoebaNet-A, found this way, matched the best hand-designed and RL-found networks on ImageNet.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Callable, Sequence

from ..config import capped
from .evaluate import EvalResult, SearchHistory, reward_of
from .space import SPACE, Arch, SearchSpace

__all__ = ["mutate_op", "mutate_skip", "mutate", "crossover", "tournament_select", "regularized_evolution"]

Member = tuple[Arch, float]  # an architecture and its reward


def mutate_op(arch: Sequence[str], rng: random.Random, space: SearchSpace = SPACE) -> Arch:
    """Change the operation of one randomly chosen edge to a different candidate."""
    arch = list(space.validate(arch))
    if len(space.ops) < 2:
        raise ValueError(f"a mutation needs at least two candidate operations; the space has {list(space.ops)}.")
    edge = rng.randrange(len(arch))
    arch[edge] = rng.choice([op for op in space.ops if op != arch[edge]])
    return tuple(arch)


def mutate_skip(arch: Sequence[str], rng: random.Random, space: SearchSpace = SPACE) -> Arch:
    """Add a skip connection (``none`` -> ``skip``) or remove one (``skip`` -> ``none``) on a random edge.

    Falls back to :func:`mutate_op` when the space has no ``skip``/``none`` pair or no edge holds either.
    """
    arch = list(space.validate(arch))
    swap = {"none": "skip", "skip": "none"}
    edges = [e for e, op in enumerate(arch) if op in swap]
    if not {"none", "skip"} <= set(space.ops) or not edges:
        return mutate_op(arch, rng, space)
    edge = rng.choice(edges)
    arch[edge] = swap[arch[edge]]
    return tuple(arch)


def mutate(arch: Sequence[str], rng: random.Random, space: SearchSpace = SPACE, skip_prob: float = 0.5) -> Arch:
    """One mutation: add/remove a skip connection with probability ``skip_prob``, else change an operation."""
    if rng.random() < skip_prob:
        return mutate_skip(arch, rng, space)
    return mutate_op(arch, rng, space)


def crossover(
    first: Sequence[str], second: Sequence[str], rng: random.Random, points: int = 1, space: SearchSpace = SPACE,
) -> Arch:
    """A child of two parents: cut both at ``points`` random positions and alternate the pieces.

    ``points=1`` is one-point crossover (the child starts as ``first`` and ends as ``second``);
    ``points=2`` and more are multi-point crossover.
    """
    first, second = space.validate(first), space.validate(second)
    if not 1 <= points < len(first):
        raise ValueError(f"points must be between 1 and {len(first) - 1} (edges - 1); got {points}.")
    cuts = sorted(rng.sample(range(1, len(first)), points))
    child, parents, source, begin = [], (first, second), 0, 0
    for cut in [*cuts, len(first)]:
        child.extend(parents[source][begin:cut])
        source, begin = 1 - source, cut
    return tuple(child)


def tournament_select(population: Sequence[Member], rng: random.Random, size: int) -> Arch:
    """Draw ``size`` members at random (without replacement) and return the best one's architecture."""
    contestants = rng.sample(list(population), min(size, len(population)))
    return max(contestants, key=lambda member: member[1])[0]


def regularized_evolution(
    evaluate: Callable[[Arch], EvalResult | float],
    evaluations: int,
    population: int = 8,
    tournament: int = 3,
    crossover_prob: float = 0.5,
    crossover_points: int = 1,
    replace: str = "oldest",
    space: SearchSpace = SPACE,
    seed: int = 0,
) -> SearchHistory:
    """Evolve architectures of ``space`` for ``evaluations`` proposals; return the search history.

    Args:
        evaluate: the environment, ``arch -> reward`` (an :class:`~cnnbook.nas.evaluate.Evaluator` or any
            function returning a float or an object with ``val_acc``).
        evaluations: total proposals, the random initial population included.
        population: members kept alive.
        tournament: contestants per selection (larger = greedier).
        crossover_prob: probability that a child has two parents (then it is also mutated).
        crossover_points: cut points of the crossover (1 = one-point).
        replace: ``"oldest"`` (regularised evolution) or ``"worst"`` (classic steady-state GA).
        seed: seeds the random choices (the evaluator has its own seed).
    """
    if replace not in ("oldest", "worst"):
        raise ValueError(f"replace must be 'oldest' or 'worst'; got {replace!r}.")
    if population < 2 or not 1 <= tournament <= population:
        raise ValueError(f"need population >= 2 and 1 <= tournament <= population; got {population}, {tournament}.")
    if evaluations < population:
        raise ValueError(f"evaluations ({evaluations}) must cover the initial population ({population}).")
    evaluations = max(population, capped(evaluations))  # CNNBOOK_MAX_STEPS: the initial population, then the cap
    rng = random.Random(seed)
    history = SearchHistory("evolution")
    alive: deque[Member] = deque()
    start = time.perf_counter()

    def propose(arch: Arch) -> None:
        reward = reward_of(evaluate(arch))
        history.add(arch, reward, time.perf_counter() - start)
        alive.append((arch, reward))

    for _ in range(population):  # 1. a random initial population
        propose(space.sample(rng))
    while len(history.records) < evaluations:
        parent = tournament_select(alive, rng, tournament)  # 2. selection
        if rng.random() < crossover_prob:  # 3. crossover with a second parent
            other = tournament_select(alive, rng, tournament)
            parent = crossover(parent, other, rng, crossover_points, space)
        propose(mutate(parent, rng, space))  # 4. mutation, then evaluation
        if replace == "oldest":  # 5. update: the oldest dies ...
            alive.popleft()
        else:  # ... or the worst
            alive.remove(min(alive, key=lambda member: member[1]))
    history.seconds = time.perf_counter() - start
    history.trainings = len({r.arch for r in history.records})
    return history

