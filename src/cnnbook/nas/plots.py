"""The figures of chapter 13 (display only: every number comes from a search history)."""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from .evaluate import SearchHistory
from .space import SPACE, Arch, SearchSpace

# One colour per operation, the same in every figure of the chapter.
OP_COLOURS = {"none": "#bbbbbb", "skip": "C0", "max_pool3x3": "C2", "conv3x3": "C3", "conv5x5": "C1",
              "sep_conv3x3": "C4"}


def _edge_bend(i: int, j: int) -> float:
    """Curvature of edge i -> j: straight between neighbours, longer edges above or below the chain."""
    if j - i == 1:
        return 0.0
    rad = 0.35 + 0.1 * (j - i - 1)  # longer edges bend more, so their labels do not collide
    return -rad if i % 2 == 0 else rad  # negative bends upward: (0,2) and (0,3) above, (1,3) below


def plot_cells(archs: dict[str, Arch], space: SearchSpace = SPACE, title: str | None = None, cols: int = 3) -> Any:
    """Each architecture drawn as its cell: nodes 0 (input) ... n-1 (output), one labelled arrow per edge.

    ``none`` edges are left out (they carry nothing); every other edge is coloured by its operation.
    At most ``cols`` cells per row.
    """
    import matplotlib.pyplot as plt

    cols = min(cols, len(archs))
    rows = -(-len(archs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.2 * rows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat[len(archs):]:
        ax.axis("off")
    for ax, (label, arch) in zip(axes.flat, archs.items()):
        arch = space.validate(arch)
        for (i, j), op in zip(space.edges, arch):
            if op == "none":
                continue
            bend = _edge_bend(i, j)
            ax.annotate("", xy=(j, 0), xytext=(i, 0), arrowprops=dict(
                arrowstyle="-|>", color=OP_COLOURS[op], lw=2, shrinkA=11, shrinkB=11,
                connectionstyle=f"arc3,rad={bend}"))
            height = -0.5 * bend * (j - i)  # the middle of the arc
            ax.text((i + j) / 2, height + (0.07 if bend == 0 else 0), op, ha="center",
                    va="bottom" if height >= 0 else "top", fontsize=8, color=OP_COLOURS[op])
        for node in range(space.nodes):
            ax.plot(node, 0, "o", ms=18, mfc="white", mec="black")
            ax.text(node, 0, str(node), ha="center", va="center", fontsize=9)
        ax.set(xlim=(-0.4, space.nodes - 0.6), ylim=(-0.65, 1.0), aspect="equal")
        ax.set_title(label, fontsize=11)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig

__all__ = ["plot_cells", "plot_search_progress", "plot_mixing_weights", "plot_policy"]


def plot_search_progress(histories: Sequence[SearchHistory], title: str | None = None) -> Any:
    """Best validation accuracy so far, against candidates evaluated (left) and against wall time (right).

    Every reward is a dot; the line is the best so far. A one-shot method (DARTS: a single record)
    appears as a star where its one result lies.
    """
    import matplotlib.pyplot as plt

    fig, (ax_n, ax_t) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for i, h in enumerate(histories):
        colour = f"C{i}"
        steps = [r.step for r in h.records]
        times = [r.elapsed for r in h.records]
        if len(h.records) == 1:
            for ax, x in ((ax_n, steps), (ax_t, times)):
                ax.plot(x, h.rewards(), "*", ms=14, color=colour, label=f"{h.method} (one super-network)")
            continue
        for ax, x in ((ax_n, steps), (ax_t, times)):
            ax.plot(x, h.rewards(), ".", color=colour, alpha=0.35)
            ax.step(x, h.best_so_far(), where="post", color=colour, label=h.method)
    ax_n.set(xlabel="candidates evaluated", ylabel="validation accuracy", title="best so far per candidate")
    ax_t.set(xlabel="wall time of the search (s)", ylabel="validation accuracy", title="best so far per second")
    for ax in (ax_n, ax_t):
        ax.grid(alpha=0.3)
    ax_n.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_mixing_weights(weights: Tensor, space: SearchSpace = SPACE, title: str | None = None) -> Any:
    """DARTS' softmax(alpha) on every edge during the search: one panel per edge, one line per operation.

    ``weights`` is (steps + 1) x E x K, as ``darts_search`` records it.
    """
    import matplotlib.pyplot as plt

    edges = space.edges
    cols = min(3, len(edges))
    rows = -(-len(edges) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.5 * rows), sharex=True, sharey=True,
                             constrained_layout=True, squeeze=False)
    for e, ((i, j), ax) in enumerate(zip(edges, axes.flat)):
        for k, name in enumerate(space.ops):
            ax.plot(weights[:, e, k].numpy(), color=f"C{k}", label=name)
        ax.axhline(1 / len(space.ops), color="grey", lw=0.8, ls=":")
        ax.set_title(f"edge {i} -> {j}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(edges):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("search step")
    for ax in axes[:, 0]:
        ax.set_ylabel("weight softmax(alpha)")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    return fig


def plot_policy(probs: Tensor, space: SearchSpace = SPACE, title: str | None = None) -> Any:
    """The REINFORCE controller's probability of each operation, averaged over the edges, per step.

    ``probs`` is (steps + 1) x E x K, as ``reinforce_search`` records it.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
    mean = probs.mean(dim=1)  # (steps + 1) x K
    for k, name in enumerate(space.ops):
        ax.plot(mean[:, k].numpy(), color=f"C{k}", label=name)
    ax.axhline(1 / len(space.ops), color="grey", lw=0.8, ls=":")
    ax.set(xlabel="controller update", ylabel="probability (mean over edges)", title=title or "REINFORCE policy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    return fig
