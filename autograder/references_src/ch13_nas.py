"""Reference items of the ch13_nas assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch

from cnnbook.nas.darts import MixedOp  # the reference DARTS edge, MixedOp(channels, ops)

from ._common import case, f32, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch13_nas")


# DARTS' mixed operation (Liu, Simonyan, Yang 2018) is defined here from its formula,
# sum_k softmax(alpha)_k o_k(x), on the package's candidate operations (cnnbook.nas.space.make_op).
@item("ch13_nas/count_architectures")
def _() -> dict[str, Any]:
    from cnnbook.nas.space import OPS, SearchSpace

    cases = []
    for nodes, ops in [(4, 6), (3, 5), (5, 8), (2, 3), (4, 1)]:
        names = tuple(list(OPS)[:ops]) if ops <= len(OPS) else None
        size = SearchSpace(names, nodes).size if names else ops ** (nodes * (nodes - 1) // 2)
        cases.append(case(f"num_nodes={nodes}, num_ops={ops}", args=[nodes, ops], expected=size))
    return {"title": "count_architectures", "cases": cases}


@item("ch13_nas/mixed_op")
def _() -> dict[str, Any]:
    cases = []
    for c, names, hw in [(6, ["none", "skip", "max_pool3x3", "conv3x3", "conv5x5", "sep_conv3x3"], 5),
                         (4, ["conv3x3", "skip"], 6), (8, ["sep_conv3x3", "none", "max_pool3x3"], 4)]:
        mixed = f64(MixedOp(c, names))  # the package's DARTS edge is the reference
        randomise_bn(mixed)
        start = state(mixed)
        steps = []
        for mode in ("eval", "train"):
            x = randn(2, c, hw, hw)
            weights = f32(torch.softmax(randn(len(names)), 0))
            mixed.train(mode == "train")
            steps.append({"mode": mode, "args": [x, weights], "expected": mixed(x, weights)})
        cases.append(case(f"MixedOp({c}, {names}), input {(2, c, hw, hw)}",
                          init_kwargs={"channels": c, "ops": names}, state_dict=start, steps=steps))
    return {"title": "MixedOp", "cases": cases}


@item("ch13_nas/derive_architecture")
def _() -> dict[str, Any]:
    from cnnbook.nas.space import OPS

    names_all = list(OPS)
    cases = []
    for edges, names in [(6, names_all), (3, ["none", "skip", "conv3x3"]), (4, ["conv3x3", "none", "skip", "conv5x5"])]:
        alpha = randn(edges, len(names))
        alpha[0, names.index("none")] = 10.0  # "none" strongest on an edge: still never kept
        keep = [i for i, n in enumerate(names) if n != "none"]
        best = [names[keep[int(i)]] for i in alpha[:, keep].argmax(-1)]
        cases.append(case(f"{edges} edges, operations {names}", args=[alpha, names], expected=best))
    return {"title": "derive_architecture", "cases": cases}
