"""One block (an inception module, a residual block, ...) as a graph of layers and merges, traced with torch.fx.

:func:`block_graph` is the computation, with no drawing: the nodes the notation draws (layers, merges,
activations), each with its output shape, its inputs and its level from the input. ``cnnbook.diagrams.draw_block``
lays them out and draws them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._probe import model_device, probing
from .layer_rows import _PRIMITIVE, _describe, _is_conv_unit

__all__ = ["Node", "block_graph"]


# ---- the graph of one block (branches and merges) ----------------------------------------------------
@dataclass
class Node:
    """One node of a block graph."""

    name: str
    kind: str
    label: str
    shape: tuple[int, ...]
    inputs: list[str]
    tags: list[tuple[str, str]] = field(default_factory=list)
    level: int = 0


_MERGE_FUNCTIONS = {torch.cat: "C", torch.concat: "C", torch.add: "+", operator.add: "+", operator.iadd: "+",
                    torch.mul: "×", operator.mul: "×"}
_MERGE_METHODS = {"add": "+", "add_": "+", "mul": "×", "mul_": "×"}
_ACT_FUNCTIONS = ("relu", "relu_", "relu6", "sigmoid", "tanh", "hardswish", "silu", "gelu")


def _target_name(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _traced_nodes(block: nn.Module, input_size: tuple[int, int, int]) -> dict[str, Node]:
    """Trace ``block`` with torch.fx and keep the nodes the notation draws (layers, merges, activations)."""
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, _PRIMITIVE) or _is_conv_unit(m) or super().is_leaf_module(m, qualname)

    graph = Tracer().trace(block)
    module = fx.GraphModule(block, graph)
    with probing(block):
        ShapeProp(module).propagate(torch.zeros(1, *input_size, device=model_device(block)))
    nodes: dict[str, Node] = {}
    alias: dict[str, str] = {}  # nodes not drawn (getattr, flatten, ...) stand for their input
    for n in graph.nodes:
        meta = n.meta.get("tensor_meta")
        shape = tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else ()
        sources = [alias.get(a.name, a.name) for a in n.all_input_nodes]
        sources = [s for s in dict.fromkeys(sources) if s in nodes]
        target = _target_name(n.target)
        if n.op == "placeholder":
            nodes[n.name] = Node(n.name, "input", "input", shape, [])
        elif n.op == "call_module" and not isinstance(module.get_submodule(n.target), nn.Identity):
            sub = module.get_submodule(n.target)
            kind, label, tags = _describe(sub)
            nodes[n.name] = Node(n.name, kind, label, shape, sources, tags)
        elif n.op in ("call_function", "call_method") and (n.target in _MERGE_FUNCTIONS or target in _MERGE_METHODS) \
                and len(sources) > 1:
            symbol = _MERGE_FUNCTIONS.get(n.target) or _MERGE_METHODS[target]  # type: ignore[call-overload]
            nodes[n.name] = Node(n.name, "merge", symbol, shape, sources)
        elif n.op in ("call_function", "call_method") and target in _ACT_FUNCTIONS:
            nodes[n.name] = Node(n.name, "activation", "ReLU" if target.startswith("relu") and target != "relu6"
                                 else target.rstrip("_"), shape, sources)
        else:  # the output, getattr, flatten, functional dropout...: stand for their input
            alias[n.name] = sources[0] if sources else ""
    return nodes


def _absorb_tags(nodes: dict[str, Node]) -> dict[str, Node]:
    """Fold a normalisation or activation into the layer before it, as in the overview diagrams."""
    consumers: dict[str, int] = {}
    for node in nodes.values():
        for s in node.inputs:
            consumers[s] = consumers.get(s, 0) + 1
    replaced: dict[str, str] = {}
    for name in list(nodes):
        node = nodes[name]
        node.inputs = [replaced.get(s, s) for s in node.inputs]
        if node.kind in ("norm", "activation") and len(node.inputs) == 1:
            source = nodes[node.inputs[0]]
            if source.kind in ("conv", "dense") and consumers.get(source.name, 0) == 1:
                source.tags.append((node.kind, node.label))
                source.shape = node.shape
                replaced[name] = source.name
                consumers[source.name] = consumers.pop(name, 0)
                del nodes[name]
    return nodes


def block_graph(block: nn.Module, input_size: tuple[int, int, int]) -> list[Node]:
    """The graph of ``block`` traced with ``torch.fx``: layers (with their BN/activation tags), merges, shapes.

    Each node's ``level`` is its row in :func:`draw_block`: a node sits just above the first node that
    uses it, so that a short branch (or a shortcut) runs alongside the long one down to the merge.
    """
    nodes = _absorb_tags(_traced_nodes(block, input_size))
    order = list(nodes)
    for name in order:  # longest path from the input
        node = nodes[name]
        node.level = max((nodes[s].level + 1 for s in node.inputs), default=0)
    users: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for s in nodes[name].inputs:
            users[s].append(name)
    for name in reversed(order):  # as late as possible, except the input
        if users[name] and nodes[name].kind != "input":
            nodes[name].level = min(nodes[u].level for u in users[name]) - 1
    return [nodes[name] for name in order]
