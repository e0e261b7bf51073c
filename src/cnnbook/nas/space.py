"""The one search space of chapter 13, shared by evolution, REINFORCE and DARTS.

A cell-based space in the style of NAS-Bench-201 (Dong & Yang 2020), which was designed so that
different search methods can be compared on exactly the same architectures, and of the DARTS cell
(Liu, Simonyan, Yang 2018):

- a **cell** is a small directed acyclic graph (DAG) of ``nodes`` feature maps. Node 0 is the cell's
  input; every later node ``j`` is the sum of one operation applied to each earlier node ``i < j``;
  the last node is the cell's output. With 4 nodes there are 1 + 2 + 3 = 6 **edges**.
- every edge picks one **operation** from a small candidate set: ``none`` (the zero operation: no
  connection), ``skip`` (identity: a skip connection), ``max_pool3x3``, ``conv3x3``, ``conv5x5`` and
  ``sep_conv3x3`` (depthwise-separable, MobileNet's block). The convolutions are the package's
  :class:`~cnnbook.layers.ConvBNAct` and :class:`~cnnbook.layers.DepthwiseSeparableConv`.
- an **architecture** is plain data: a tuple with one operation name per edge, in the order of
  :attr:`SearchSpace.edges`. With 6 operations and 6 edges the space holds ``6 ** 6 = 46,656`` of them.
- the **network** around the cells is fixed (the "macro skeleton"): a stride-2 stem, a stage of cells
  at ``channels`` channels, a stride-2 reduction to ``2 * channels``, a second stage of cells, global
  average pooling and a linear classifier. Every cell of the network uses the same architecture, as
  in NASNet, AmoebaNet and DARTS, which search one cell and stack it.

The searched-over part is therefore small (one cell), while the network is a real CNN that trains on
a CPU in seconds. Two spellings of an architecture exist: names (``("conv3x3", "skip", ...)``, what
the code passes around) and integer codes (:meth:`SearchSpace.encode`, what a controller samples).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from ..layers import ConvBNAct, DepthwiseSeparableConv
from ..models._base import ImageClassifier, StageInfo, check_positive

__all__ = [
    "OPS", "Arch", "Zero", "make_op", "SearchSpace", "SPACE", "Cell", "CellNetwork", "arch_to_str",
]

Arch = tuple[str, ...]  # one operation name per edge, in the order of SearchSpace.edges


class Zero(nn.Module):
    """The ``none`` operation: outputs zeros of the input's shape (an edge that carries nothing).

    A discrete network never needs to compute it; it exists for DARTS, whose mixed operation must be
    able to weigh "no connection" against the other candidates.
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)  # N x C x H x W of zeros, still attached to the graph


# The candidate operations of an edge (stride 1, channels in = channels out, H and W kept).
OPS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda c: Zero(),
    "skip": lambda c: nn.Identity(),
    "max_pool3x3": lambda c: nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
    "conv3x3": lambda c: ConvBNAct(c, c, 3),
    "conv5x5": lambda c: ConvBNAct(c, c, 5),
    "sep_conv3x3": lambda c: DepthwiseSeparableConv(c, c, 3),
}


def make_op(name: str, channels: int) -> nn.Module:
    """The candidate operation ``name`` on ``channels`` channels (N x C x H x W -> N x C x H x W)."""
    if name not in OPS:
        raise ValueError(f"unknown operation {name!r}; the candidates are {list(OPS)}.")
    check_positive("channels", channels)
    return OPS[name](channels)


def arch_to_str(arch: Sequence[str], edges: Sequence[tuple[int, int]] | None = None) -> str:
    """A readable one-line form, grouped by target node: ``"1: conv3x3(0) | 2: skip(0) conv5x5(1) | ..."``."""
    edges = list(edges) if edges is not None else SPACE.edges
    groups: dict[int, list[str]] = {}
    for (i, j), op in zip(edges, arch):
        groups.setdefault(j, []).append(f"{op}({i})")
    return " | ".join(f"{j}: {' '.join(ops)}" for j, ops in sorted(groups.items()))


@dataclass(frozen=True)
class SearchSpace:
    """A cell with ``nodes`` nodes, one operation per edge chosen from ``ops``.

    Args:
        ops: names of the candidate operations (keys of :data:`OPS`), in the order the integer codes use.
        nodes: nodes of the cell's DAG, input node included (4 gives 6 edges, 3 gives 3).
    """

    ops: tuple[str, ...] = tuple(OPS)
    nodes: int = 4

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError(f"a cell needs at least 2 nodes (an input and an output); got nodes={self.nodes}.")
        if len(self.ops) < 1 or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must be distinct names; got {self.ops}.")
        for name in self.ops:
            if name not in OPS:
                raise ValueError(f"unknown operation {name!r}; the candidates are {list(OPS)}.")

    # ---- the space as data ------------------------------------------------------------------------
    @property
    def edges(self) -> list[tuple[int, int]]:
        """Every edge ``(i, j)``, ``i < j``, ordered by target node then source: (0,1), (0,2), (1,2), ..."""
        return [(i, j) for j in range(1, self.nodes) for i in range(j)]

    @property
    def num_edges(self) -> int:
        return self.nodes * (self.nodes - 1) // 2

    @property
    def size(self) -> int:
        """How many architectures the space holds, ``len(ops) ** num_edges`` (one choice per edge)."""
        return len(self.ops) ** self.num_edges

    def validate(self, arch: Sequence[str]) -> Arch:
        """``arch`` as a tuple, or ``ValueError`` naming what is wrong with it."""
        if isinstance(arch, str) or not isinstance(arch, Sequence):
            raise ValueError(f"an architecture is a sequence of {self.num_edges} operation names; got {arch!r}.")
        if len(arch) != self.num_edges:
            raise ValueError(
                f"an architecture of this space has one operation per edge, {self.num_edges} in all; "
                f"got {len(arch)}: {tuple(arch)}."
            )
        for position, name in enumerate(arch):
            if name not in self.ops:
                raise ValueError(
                    f"unknown operation {name!r} on edge {self.edges[position]}; the candidates are {list(self.ops)}."
                )
        return tuple(arch)

    def encode(self, arch: Sequence[str]) -> tuple[int, ...]:
        """Operation names -> integer codes (indices into ``ops``)."""
        return tuple(self.ops.index(name) for name in self.validate(arch))

    def decode(self, codes: Sequence[int]) -> Arch:
        """Integer codes -> operation names."""
        if len(codes) != self.num_edges:
            raise ValueError(f"expected {self.num_edges} codes, one per edge; got {len(codes)}: {tuple(codes)}.")
        for code in codes:
            if not 0 <= int(code) < len(self.ops):
                raise ValueError(f"code {code} is out of range: there are {len(self.ops)} operations {list(self.ops)}.")
        return tuple(self.ops[int(code)] for code in codes)

    def sample(self, rng: random.Random) -> Arch:
        """One architecture drawn uniformly at random (random search draws these)."""
        return tuple(rng.choice(self.ops) for _ in range(self.num_edges))

    def all_archs(self) -> Iterator[Arch]:
        """Every architecture of the space, in code order (only sensible for tiny spaces)."""
        return itertools.product(self.ops, repeat=self.num_edges)

    # ---- the network ------------------------------------------------------------------------------
    def build(
        self, arch: Sequence[str], num_classes: int = 10, in_channels: int = 3, channels: int = 16,
        cells_per_stage: int = 1,
    ) -> "CellNetwork":
        """The discrete network of ``arch``: every edge of every cell holds its one chosen operation."""
        arch = self.validate(arch)

        def make_edge(edge: int, width: int) -> nn.Module:
            return make_op(arch[edge], width)

        net = CellNetwork(self, make_edge, num_classes, in_channels, channels, cells_per_stage)
        net.arch = arch
        return net


SPACE = SearchSpace()  # the space of the chapter: 6 operations on 6 edges, 46,656 architectures


class Cell(nn.Module):
    """One cell: node 0 is the input, node ``j`` sums its incoming edges, the last node is the output.

    ``edge_ops[e]`` is the module on edge ``space.edges[e]``: a single operation in a discrete network,
    a :class:`~cnnbook.nas.darts.MixedOp` in the DARTS super-network (which then passes each edge its
    row of mixing ``weights``).
    """

    def __init__(self, edges: Sequence[tuple[int, int]], edge_ops: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(edges) != len(edge_ops):
            raise ValueError(f"{len(edges)} edges but {len(edge_ops)} edge operations.")
        self.edges = list(edges)
        self.nodes = max(j for _, j in self.edges) + 1
        self.edge_ops = nn.ModuleList(edge_ops)

    def forward(self, x: Tensor, weights: Tensor | None = None) -> Tensor:
        states = [x]  # node 0: N x C x H x W
        for j in range(1, self.nodes):
            incoming = [
                op(states[i]) if weights is None else op(states[i], weights[e])
                for e, ((i, target), op) in enumerate(zip(self.edges, self.edge_ops)) if target == j
            ]
            states.append(sum(incoming[1:], incoming[0]))  # node j: the sum of its incoming edges
        return states[-1]  # N x C x H x W


class CellNetwork(ImageClassifier):
    """The fixed skeleton around the searched cell (NAS-Bench-201's, scaled down to a CPU).

    stem (3x3, stride 2) -> ``cells_per_stage`` cells at C -> reduction (3x3, stride 2, C -> 2C)
    -> ``cells_per_stage`` cells at 2C -> global average pooling -> linear classifier.

    Args:
        space: the search space (gives the cell's edges).
        make_edge: ``make_edge(edge_index, channels)`` returns the module of one edge of one cell.
        num_classes: outputs of the classifier.
        in_channels: channels of the images.
        channels: C, the width of the first stage.
        cells_per_stage: cells stacked in each of the two stages.
    """

    classifier_path = "classifier"

    def __init__(
        self, space: SearchSpace, make_edge: Callable[[int, int], nn.Module], num_classes: int = 10,
        in_channels: int = 3, channels: int = 16, cells_per_stage: int = 1,
    ) -> None:
        super().__init__()
        for name, value in [("num_classes", num_classes), ("in_channels", in_channels),
                            ("channels", channels), ("cells_per_stage", cells_per_stage)]:
            check_positive(name, value)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_input_size = 4  # two stride-2 layers leave at least 1x1
        c = channels

        def stage(width: int) -> nn.ModuleList:
            return nn.ModuleList(
                Cell(space.edges, [make_edge(e, width) for e in range(space.num_edges)])
                for _ in range(cells_per_stage)
            )

        self.stem = ConvBNAct(in_channels, c, 3, stride=2)
        self.stage1 = stage(c)
        self.reduction = ConvBNAct(c, 2 * c, 3, stride=2)
        self.stage2 = stage(2 * c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * c, num_classes)
        self.feature_info = [StageInfo("stage1", c, 2), StageInfo("stage2", 2 * c, 4)]

    def cell_weights(self) -> Tensor | None:
        """Mixing weights passed to every cell (``None`` in a discrete network; DARTS overrides it)."""
        return None

    def forward_features(self, x: Tensor) -> Tensor:
        weights = self.cell_weights()
        x = self.stem(x)  # N x C x H/2 x W/2
        for cell in self.stage1:
            x = cell(x, weights)  # N x C x H/2 x W/2
        x = self.reduction(x)  # N x 2C x H/4 x W/4
        for cell in self.stage2:
            x = cell(x, weights)  # N x 2C x H/4 x W/4
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.pool(x), 1)  # N x 2C
        return x if pre_logits else self.classifier(x)  # N x num_classes
