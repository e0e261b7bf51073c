"""The figures of chapter 13 (display only: every number comes from a search history)."""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from .evaluate import SearchHistory
from .space import SPACE, SearchSpace

__all__ = ["plot_search_progress", "plot_mixing_weights", "plot_policy"]


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
