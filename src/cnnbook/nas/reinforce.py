"""Reinforcement-learning NAS: a controller trained with REINFORCE (Williams 1992; Zoph & Le 2016).

The search is a loop between an agent and an environment:

- the **controller** (the agent) holds a policy pi_theta over architectures and samples one: the
  **action** A_t, here one operation per edge of the cell;
- the **environment** trains the sampled network briefly and returns its validation accuracy as the
  **reward** R_t (:class:`~cnnbook.nas.evaluate.Evaluator`);
- the controller moves its parameters theta along the REINFORCE estimate of the gradient of the
  expected reward, ``(R_t - b_t) * grad log pi_theta(A_t)``, where the **baseline** b_t (a moving
  average of past rewards) makes architectures better than usual more likely and worse ones less.

Zoph & Le's controller is an LSTM that emits the decisions one after another, each conditioned on the
previous ones. This one is the simplest policy that still learns: an independent categorical
distribution per edge, ``softmax(theta[edge])``, initialised uniform (theta = 0).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import capped
from .evaluate import EvalResult, SearchHistory, reward_of
from .space import SPACE, Arch, SearchSpace

__all__ = ["Controller", "reinforce_search"]


class Controller(nn.Module):
    """A policy over the architectures of ``space``: one categorical distribution per edge.

    ``logits`` has one row per edge and one column per candidate operation (E x K), all zero at first,
    so every architecture starts equally likely.
    """

    def __init__(self, space: SearchSpace = SPACE) -> None:
        super().__init__()
        self.space = space
        self.logits = nn.Parameter(torch.zeros(space.num_edges, len(space.ops)))  # theta: E x K

    def probs(self) -> Tensor:
        """pi_theta per edge: E x K, every row sums to 1."""
        return F.softmax(self.logits, dim=-1)

    def log_prob(self, codes: Tensor) -> Tensor:
        """log pi_theta(A) of an architecture given as E integer codes: the sum of its edges' log-probabilities."""
        return F.log_softmax(self.logits, dim=-1).gather(1, codes.view(-1, 1)).sum()

    def sample(self, generator: torch.Generator | None = None) -> tuple[Arch, Tensor]:
        """Draw an action A_t (one operation per edge); return it and its log-probability (differentiable)."""
        codes = torch.multinomial(self.probs().detach(), 1, generator=generator).view(-1)  # E
        return self.space.decode(codes.tolist()), self.log_prob(codes)

    def most_likely(self) -> Arch:
        """The architecture the policy prefers: the most probable operation on every edge."""
        return self.space.decode(self.logits.argmax(dim=-1).tolist())

    def entropy(self) -> Tensor:
        """Entropy of the policy in nats (E * log K when uniform; 0 when it has made up its mind)."""
        p = self.probs()
        return -(p * F.log_softmax(self.logits, dim=-1)).sum()


def reinforce_search(
    evaluate: Callable[[Arch], EvalResult | float],
    evaluations: int,
    space: SearchSpace = SPACE,
    lr: float = 2.0,
    baseline_decay: float = 0.8,
    entropy_weight: float = 0.0,
    seed: int = 0,
    scale_advantage: bool = False,
) -> SearchHistory:
    """Train a :class:`Controller` for ``evaluations`` steps of sample -> reward -> update.

    Args:
        evaluate: the environment, ``arch -> reward`` (an Evaluator or a function returning a float).
        evaluations: actions sampled, one controller update after each.
        lr: step size of the gradient *ascent* on theta (plain SGD, as in Williams 1992).
        baseline_decay: b_{t+1} = decay * b_t + (1 - decay) * R_t; b_1 = R_1.
        entropy_weight: bonus for keeping the policy uncertain (exploration); 0 turns it off.
        seed: seeds the controller's sampling.
        scale_advantage: divide R_t - b_t by the standard deviation of the rewards seen so far, so that the
            step size does not depend on the reward's scale. When candidates differ by a point or two of
            accuracy, the raw advantage is ~0.01 and the policy barely moves in a few dozen steps; scaled,
            a candidate one standard deviation better than usual moves theta by about ``lr``.

    ``history.extra`` holds ``"probs"`` (the policy, E x K, before each step and after the last) and
    ``"baseline"`` (b_t at each step), and ``"controller"`` (the trained controller).
    """
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1; got {evaluations}.")
    if not 0.0 <= baseline_decay < 1.0:
        raise ValueError(f"baseline_decay must be in [0, 1); got {baseline_decay}.")
    generator = torch.Generator().manual_seed(seed)
    controller = Controller(space)
    optimizer = torch.optim.SGD(controller.parameters(), lr=lr)
    history = SearchHistory("REINFORCE")
    probs, baselines = [controller.probs().detach().clone()], []
    baseline: float | None = None
    start = time.perf_counter()
    for _ in range(capped(evaluations)):  # CNNBOOK_MAX_STEPS caps the controller's steps
        arch, log_prob = controller.sample(generator)  # action A_t ~ pi_theta
        reward = reward_of(evaluate(arch))  # reward R_t from the environment
        history.add(arch, reward, time.perf_counter() - start)
        baseline = reward if baseline is None else baseline
        baselines.append(baseline)
        advantage = reward - baseline  # better than usual -> make A_t more likely
        if scale_advantage:
            advantage /= _reward_scale(history.rewards())
        loss = -advantage * log_prob - entropy_weight * controller.entropy()  # minimise -J(theta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        baseline = baseline_decay * baseline + (1 - baseline_decay) * reward
        probs.append(controller.probs().detach().clone())
    history.seconds = time.perf_counter() - start
    history.trainings = len({r.arch for r in history.records})
    history.extra.update(probs=torch.stack(probs), baseline=baselines, controller=controller)
    return history


def _reward_scale(rewards: list[float]) -> float:
    """Standard deviation of the rewards so far (1.0 until two distinct rewards make one)."""
    if len(rewards) < 2:
        return 1.0
    std = torch.tensor(rewards, dtype=torch.float64).std(unbiased=False).item()
    return std if std > 1e-12 else 1.0
