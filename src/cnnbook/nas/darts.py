"""Gradient-based NAS: DARTS, Differentiable Architecture Search (Liu, Simonyan, Yang 2018).

Evolution and REINFORCE treat the choice of an operation as discrete, so they must train a separate
network for every candidate. DARTS relaxes the choice into a continuous one:

- every edge (i, j) of the cell's DAG carries a **mixed operation**, the softmax-weighted sum of all
  K candidates, ``o_bar(x) = sum_k softmax(alpha_ij)_k * o_k(x)``;
- the architecture parameters alpha start equal (zeros, so every weight is 1/K) and are learned by
  gradient descent on the **validation** loss, alternating with ordinary steps of the network weights
  w on the **training** loss (first-order DARTS: the gradient for alpha ignores how w would change);
- at the end, every edge keeps its **strongest** operation, the one with the largest weight, ``none``
  excepted, which gives a discrete architecture of the same space.

One *super-network* holding every candidate is trained once, so the search costs about as much as
training a few networks instead of hundreds. The discrete result is then retrained and measured by the
same :class:`~cnnbook.nas.evaluate.Evaluator` as the other methods.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..config import max_steps
from ..train import get_device, set_seed
from .evaluate import EvalResult, NASData, SearchHistory, reward_of
from .space import SPACE, Arch, CellNetwork, SearchSpace, make_op

__all__ = ["MixedOp", "DartsNetwork", "discretize", "darts_search"]


class MixedOp(nn.Module):
    """DARTS' mixed operation on one edge: ``sum_k weights[k] * ops[k](x)``.

    Args:
        channels: channels of the edge (every candidate keeps C and H x W).
        ops: names of the K candidate operations (keys of :data:`cnnbook.nas.space.OPS`).

    ``forward(x, weights)`` takes the K mixing weights of this edge, ``softmax(alpha_edge)``; with equal
    alphas the output is the plain mean of the candidates' outputs.
    """

    def __init__(self, channels: int, ops: Sequence[str] = SPACE.ops) -> None:
        super().__init__()
        self.names = tuple(ops)
        self.ops = nn.ModuleList(make_op(name, channels) for name in self.names)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        if weights.shape != (len(self.ops),):
            raise ValueError(f"expected {len(self.ops)} mixing weights, one per candidate; got shape {tuple(weights.shape)}.")
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # N x C x H x W


class DartsNetwork(CellNetwork):
    """The super-network: the skeleton of :class:`~cnnbook.nas.space.CellNetwork` with a MixedOp on every edge.

    ``alphas`` (E x K, one row per edge) are the architecture parameters, shared by every cell as in
    the discrete networks; ``softmax(alphas, -1)`` are the mixing weights. The candidates' BatchNorms
    are not affine (their scale and shift stay 1 and 0), as in the DARTS search, so that a candidate
    cannot grow its output to win the mixture: only its weight can.
    """

    def __init__(
        self, space: SearchSpace = SPACE, num_classes: int = 10, in_channels: int = 3, channels: int = 8,
        cells_per_stage: int = 1,
    ) -> None:
        super().__init__(space, lambda edge, width: MixedOp(width, space.ops), num_classes, in_channels,
                         channels, cells_per_stage)
        self.space = space
        self.alphas = nn.Parameter(torch.zeros(space.num_edges, len(space.ops)))  # equal initial weights
        for cell in [*self.stage1, *self.stage2]:
            for m in cell.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)

    def cell_weights(self) -> Tensor:
        """The mixing weights of every edge, softmax(alpha): E x K, each row in (0, 1) and summing to 1."""
        return F.softmax(self.alphas, dim=-1)

    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha: learned on validation batches."""
        return [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        """w: every trainable parameter except alpha, learned on training batches."""
        return [p for p in self.parameters() if p is not self.alphas and p.requires_grad]

    def discretize(self) -> Arch:
        """The strongest operation of every edge (``none`` excluded): a discrete architecture of the space."""
        return discretize(self.cell_weights().detach(), self.space)


def discretize(weights: Tensor, space: SearchSpace = SPACE, drop: Sequence[str] = ("none",)) -> Arch:
    """Keep, on every edge, the operation with the largest weight among those not in ``drop``.

    ``weights`` is E x K (alphas or their softmax: the argmax is the same).
    """
    if weights.shape != (space.num_edges, len(space.ops)):
        raise ValueError(f"weights must be {space.num_edges} x {len(space.ops)} (edges x operations); "
                         f"got {tuple(weights.shape)}.")
    keep = [k for k, name in enumerate(space.ops) if name not in drop]
    if not keep:
        raise ValueError(f"every operation of the space is dropped ({list(drop)}); nothing left to keep.")
    best = weights[:, keep].argmax(dim=1)  # E indices into keep
    return tuple(space.ops[keep[int(k)]] for k in best)


def _forever(loader: DataLoader) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches of ``loader``, reshuffled at every pass, without end."""
    while True:
        yield from loader


def darts_search(
    data: NASData,
    evaluate: Callable[[Arch], EvalResult | float] | None = None,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 3e-3,
    alpha_lr: float = 1e-2,
    channels: int = 8,
    cells_per_stage: int = 1,
    space: SearchSpace = SPACE,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> SearchHistory:
    """First-order DARTS on ``space``: train the super-network, discretise, evaluate the result.

    Each step takes one validation batch for an alpha step (Adam, ``alpha_lr``) and then one training
    batch for a w step (Adam, ``lr``); ``epochs`` passes over the training images.

    Returns a history whose one record is the discretised architecture and the reward ``evaluate``
    gives it (the same environment as the discrete methods; without ``evaluate`` the reward is the
    super-network's validation accuracy). ``history.extra`` holds ``"weights"``: the mixing weights
    softmax(alpha) after every step, a (steps + 1) x E x K tensor starting from the equal 1/K;
    ``"network"``: the trained super-network; ``"search_seconds"``: the time of the super-network alone.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    device = get_device(device)
    start = time.perf_counter()
    set_seed(seed)
    net = DartsNetwork(space, data.num_classes, data.input_size[0], channels, cells_per_stage).to(device)
    w_optimizer = torch.optim.Adam(net.weight_parameters(), lr=lr)
    a_optimizer = torch.optim.Adam(net.arch_parameters(), lr=alpha_lr)
    train = data.loader("train", batch_size, seed)
    val = _forever(DataLoader(data.val, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed + 1)))
    weights = [net.cell_weights().detach().cpu().clone()]
    net.train()
    cap, steps = max_steps(), 0  # CNNBOOK_MAX_STEPS (a smoke test): stop after that many steps
    for _ in range(epochs):
        for x, y in train:
            if cap is not None and steps >= cap:
                break
            steps += 1
            x_val, y_val = next(val)
            # 1. architecture step: alpha <- alpha - alpha_lr * grad_alpha L_val(w, alpha)
            val_loss = F.cross_entropy(net(x_val.to(device)), y_val.to(device))
            (net.alphas.grad,) = torch.autograd.grad(val_loss, net.arch_parameters())  # alpha only, not w
            a_optimizer.step()
            # 2. weight step: w <- w - lr * grad_w L_train(w, alpha)
            w_optimizer.zero_grad()
            F.cross_entropy(net(x.to(device)), y.to(device)).backward()
            w_optimizer.step()
            weights.append(net.cell_weights().detach().cpu().clone())
    search_seconds = time.perf_counter() - start
    arch = net.discretize()
    reward = reward_of(evaluate(arch)) if evaluate is not None else _accuracy(net, data, batch_size, device)
    history = SearchHistory("DARTS")
    history.add(arch, reward, time.perf_counter() - start)
    history.seconds = time.perf_counter() - start
    history.trainings = 1
    history.extra.update(weights=torch.stack(weights), network=net, search_seconds=search_seconds)
    return history


@torch.no_grad()
def _accuracy(net: nn.Module, data: NASData, batch_size: int, device: torch.device) -> float:
    """Validation accuracy of the super-network itself (used when no evaluator is given)."""
    net.eval()
    correct = sum(int((net(x.to(device)).argmax(1) == y.to(device)).sum()) for x, y in data.loader("val", batch_size))
    net.train()
    return correct / len(data.val)
