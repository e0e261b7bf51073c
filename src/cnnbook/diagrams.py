"""Architecture diagrams drawn from the model itself, in one notation shared by every chapter.

The notation (``NOTATION``, drawn by :func:`draw_notation_legend`) gives each kind of layer its own
colour and shape: convolution, pooling, merge (concatenation or addition), dense (fully connected),
activation, normalisation, dropout and other reshaping, modules (a block such as an inception module or
a residual block, drawn as one box) and repeated blocks (xN).

:func:`layer_rows` does the computation, with no drawing: it walks the model's modules, runs one forward
pass with hooks to record every output shape, merges each convolution with the normalisation and
activation that follow it into one row, and collapses identical consecutive rows into one row xN.
:func:`draw_model` draws those rows as a top-to-bottom overview; :func:`draw_block` draws the graph of
one block (its branches and merges), traced with ``torch.fx``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Style", "NOTATION", "Row", "Node", "layer_rows", "describe_rows", "draw_model", "draw_notation_legend",
           "block_graph", "draw_block"]


# ---- the notation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """How one kind of layer is drawn."""

    name: str         # the word used in the book
    colour: str       # face colour
    glyph: str        # "box", "trapezoid", "circle", "pill", "rounded", "stack", "ellipse"
    meaning: str      # one line for the legend


NOTATION: dict[str, Style] = {
    "input": Style("input / output", "#e8e8e8", "ellipse", "the tensor entering (or leaving) the network"),
    "conv": Style("convolution", "#8fb8de", "box", "conv k×k, out channels (/s: stride s)"),
    "pool": Style("pooling", "#f5c26b", "trapezoid", "max / average pooling, k×k, /s: stride s"),
    "dense": Style("dense", "#c3a6d8", "box", "fully connected layer, out features"),
    "activation": Style("activation", "#9bd59b", "pill", "ReLU, tanh, sigmoid, ..."),
    "norm": Style("normalisation", "#f2e394", "pill", "BN: batch norm, LRN: local response norm"),
    "merge": Style("merge", "#f08c8c", "circle", "+ : add (residual), C : concatenate (channels)"),
    "module": Style("module", "#7fc8bd", "rounded", "a block drawn as one box (inception, residual, ...)"),
    "repeat": Style("repeated block", "#7fc8bd", "stack", "the same layer or block N times in a row"),
    "other": Style("dropout / reshape", "#ffffff", "pill", "dropout p, flatten, upsample"),
}

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
_POOL = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LocalResponseNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
_ACT = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU,
        nn.ELU, nn.Softmax, nn.PReLU, nn.Mish)
_OTHER = (nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Upsample, nn.Identity)
_PRIMITIVE = _CONV + _POOL + (nn.Linear,) + _NORM + _ACT + _OTHER
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _kind(module: nn.Module) -> str:
    if isinstance(module, _CONV):
        return "conv"
    if isinstance(module, _POOL):
        return "pool"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, _NORM) or "Norm" in type(module).__name__:
        return "norm"
    if isinstance(module, _ACT):
        return "activation"
    if isinstance(module, _OTHER) or not list(module.children()):
        return "other"
    return "module"


def _label(module: nn.Module) -> str:
    """The short text of a layer in the notation, e.g. ``conv 3×3, 64, /2`` or ``max pool 3×3, /2``."""
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = _pair(module.kernel_size)
        return f"up-conv {kh}×{kw}, {module.out_channels}, ×{_pair(module.stride)[0]}"
    if isinstance(module, _CONV):
        kh, kw = _pair(module.kernel_size)
        text = f"conv {kh}×{kw}, {module.out_channels}"
        if module.groups > 1:
            text += " dw" if module.groups == module.in_channels == module.out_channels else f", g{module.groups}"
        stride = _pair(module.stride)[0]
        return text + (f", /{stride}" if stride > 1 else "")
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        kind = "avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
        size = _pair(module.output_size)
        return f"global {kind} pool" if size == (1, 1) else f"adaptive {kind} pool → {size[0]}×{size[1]}"
    if isinstance(module, _POOL):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        k = _pair(module.kernel_size)[0]
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)[0]
        return f"{kind} pool {k}×{k}" + (f", /{stride}" if stride > 1 else "")
    if isinstance(module, nn.Linear):
        return f"dense {module.out_features}"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "BN"
    if isinstance(module, nn.LocalResponseNorm) or "ResponseNorm" in type(module).__name__:
        return "LRN"
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"dropout {module.p:g}"
    if isinstance(module, nn.Upsample):
        return f"upsample ×{module.scale_factor:g}" if module.scale_factor else "upsample"
    names = {"Tanh": "tanh", "Sigmoid": "sigmoid", "Flatten": "flatten", "GroupNorm": "GN", "LayerNorm": "LN"}
    return names.get(type(module).__name__, type(module).__name__)


# ---- pure computation: the rows of an overview -------------------------------------------------------
@dataclass
class Row:
    """One row of an overview diagram: a layer or a block, its tags (BN, ReLU, ...), its output shape."""

    kind: str                                   # a key of NOTATION
    label: str                                  # e.g. "conv 3×3, 64" or "Bottleneck"
    shape: tuple[int, ...]                      # output shape without the batch dimension
    name: str = ""                              # dotted module path of the (first) layer
    tags: list[tuple[str, str]] = field(default_factory=list)  # (kind, label) drawn beside the main glyph
    repeat: int = 1
    widths: tuple[int, ...] = ()                # a block's inner widths (see _trace_calls); () for a layer

    def key(self) -> tuple[Any, ...]:
        """What must be equal for two consecutive rows to collapse into one row xN.

        For blocks: the class, the output channels and the inner widths, so that GoogLeNet's 4a-4c (all
        512 channels out, with different branch widths) stay apart while a ResNet stage still collapses.
        """
        channels = self.shape[0] if self.shape else None
        return (self.kind, self.label, tuple(self.tags), channels if self.kind == "module" else None, self.widths)


def _is_conv_unit(module: nn.Module) -> bool:
    """A named group of one conv (or dense) layer with its normalisation and activation (ConvBNAct, ...)."""
    children = [c for c in module.children() if not isinstance(c, nn.Identity)]
    weights = [c for c in children if isinstance(c, _CONV + (nn.Linear,))]
    return (bool(children) and len(weights) == 1
            and all(_kind(c) in ("conv", "dense", "norm", "activation") for c in children))


def _is_layer_group(module: nn.Module) -> bool:
    """A Sequential subclass made only of layers (e.g. DenseNet's transition): shown layer by layer."""
    return isinstance(module, nn.Sequential) and all(
        isinstance(c, _PRIMITIVE) or not list(c.children()) for c in module.children())


def _calls_relu(module: nn.Module) -> bool:
    """True when the module's own forward applies a ReLU that is not a child module (``F.relu(x)``)."""
    import inspect

    forward = type(module).forward
    if forward is nn.Sequential.forward:
        return False
    try:
        return "relu(" in inspect.getsource(forward)
    except (OSError, TypeError):
        return False


def _describe(module: nn.Module) -> tuple[str, str, list[tuple[str, str]]]:
    """(kind, label, tags) of a unit; a conv unit is its conv (or dense) layer tagged with the rest."""
    if _is_conv_unit(module):
        parts = [c for c in module.children() if not isinstance(c, nn.Identity)]
        main = next(c for c in parts if isinstance(c, _CONV + (nn.Linear,)))
        tags = [(_kind(c), _label(c)) for c in parts if c is not main]
        if not any(kind == "activation" for kind, _ in tags) and _calls_relu(module):
            tags.append(("activation", "ReLU"))
        return _kind(main), _label(main), tags
    kind = _kind(module)
    return kind, (type(module).__name__ if kind == "module" else _label(module)), []


def _units(module: nn.Module, prefix: str = "", root: bool = True) -> list[tuple[str, nn.Module]]:
    """The modules an overview shows: primitives, and custom blocks kept whole as modules."""
    if isinstance(module, _PRIMITIVE) or not list(module.children()):
        return [(prefix, module)]
    if _is_conv_unit(module) and not root:
        return [(prefix, module)]
    if root or type(module) in _CONTAINERS or _is_layer_group(module):
        units: list[tuple[str, nn.Module]] = []
        for name, child in module.named_children():
            units += _units(child, f"{prefix}.{name}" if prefix else name, root=False)
        return units
    return [(prefix, module)]


def _shape(output: Any) -> tuple[int, ...]:
    tensor = output[0] if isinstance(output, (tuple, list)) else output
    return tuple(tensor.shape[1:]) if isinstance(tensor, Tensor) else ()


def _inner_width_hooks(unit: nn.Module, widths: set[int]) -> list[Any]:
    """Hooks that add to ``widths`` the output channels of every convolution inside ``unit`` that reads
    neither the unit's own input nor a 1 x 1 map (a squeeze-and-excitation gate) and is not depthwise: the
    widths a paper's table lists per block. The first block of a stage differs from the others only in the
    convolutions left out (and its stride), so it still collapses."""
    block_input: list[Any] = [None]

    def remember(module: nn.Module, inputs: tuple[Any, ...]) -> None:
        block_input[0] = inputs[0] if inputs else None

    def record(conv: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        depthwise = conv.groups > 1 and conv.groups == conv.in_channels
        gate = inputs and inputs[0].dim() == 4 and inputs[0].shape[-2:] == (1, 1)
        if inputs and inputs[0] is not block_input[0] and not depthwise and not gate:
            widths.add(conv.out_channels)

    convs = [m for m in unit.modules() if isinstance(m, _CONV) and m is not unit]
    return [unit.register_forward_pre_hook(remember), *(c.register_forward_hook(record) for c in convs)]


def _trace_calls(
    model: nn.Module, input_size: tuple[int, int, int],
) -> list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(path, module, input shape, output shape, inner widths) of every unit, in the order the forward pass
    calls them; the inner widths (:func:`_inner_width_hooks`) only for blocks, () for layers."""
    calls: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
    handles = []
    for path, unit in _units(model):
        if isinstance(unit, nn.Identity):
            continue
        widths: set[int] = set()
        if _kind(unit) == "module":
            handles += _inner_width_hooks(unit, widths)

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any, path: str = path,
                 widths: set[int] = widths) -> None:
            calls.append((path, module, _shape(inputs[0]) if inputs else (), _shape(output), tuple(sorted(widths))))
            widths.clear()

        handles.append(unit.register_forward_hook(hook))
    was_training = model.training
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return calls


def _collapse(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    for row in rows:
        if out and out[-1].key() == row.key() and row.kind not in ("input",):
            out[-1].repeat += row.repeat
            out[-1].shape = row.shape
        else:
            out.append(row)
    return out


def layer_rows(model: nn.Module | str, input_size: tuple[int, int, int] | None = None, collapse: bool = True) -> list[Row]:
    """The rows of the overview of ``model`` (a module, or a registered name built without memory).

    ``input_size`` is (C, H, W); by default the registered native size, or the model's
    ``fixed_input_size``. The first row is the input.
    """
    model, input_size = _resolve(model, input_size)
    rows = [Row("input", "input", tuple(input_size))]
    for path, module, in_shape, out_shape, widths in _trace_calls(model, input_size):
        kind, label, tags = _describe(module)
        previous = rows[-1]
        if len(previous.shape) >= 2 and len(in_shape) == 1 and label != "flatten":
            rows.append(Row("other", "flatten", in_shape))  # torch.flatten in forward
            previous = rows[-1]
        attach = (kind in ("norm", "activation") or (kind == "other" and label.startswith("dropout"))) and \
            previous.kind in ("conv", "dense", "norm") and out_shape == previous.shape
        if attach:
            previous.tags.append((kind, label))
        else:
            rows.append(Row(kind, label, out_shape, name=path, tags=tags, widths=widths))
    return _collapse(rows) if collapse else rows


def describe_rows(rows: list[Row]) -> str:
    """The rows after the input in words, for a diagram's alt text: "conv ×2 giving 64×224×224; pool giving ..."."""
    return "; ".join(f"{row.label}{f' ×{row.repeat}' if row.repeat > 1 else ''} giving {'×'.join(map(str, row.shape))}"
                     for row in rows[1:])


def _resolve(model: nn.Module | str, input_size: tuple[int, int, int] | None) -> tuple[nn.Module, tuple[int, int, int]]:
    if isinstance(model, str):
        from .registry import get_meta_model, get_model, get_model_info

        info = get_model_info(model)
        input_size = input_size or info.input_size
        built = get_meta_model(model)  # parameters without memory: VGG-19 costs nothing to draw
        try:
            _trace_calls(built, input_size)
            return built, input_size
        except Exception:  # an operation without a meta implementation: build it for real
            return get_model(model), input_size
    if input_size is None:
        fixed = getattr(model, "fixed_input_size", None)
        channels = getattr(model, "in_channels", 3)
        if fixed is None:
            raise ValueError("input_size (C, H, W) is needed for a model without fixed_input_size.")
        input_size = (channels, *fixed)
    return model, tuple(input_size)  # type: ignore[return-value]


# ---- drawing -----------------------------------------------------------------------------------------
def _glyph(ax: Any, kind: str, x: float, y: float, w: float, h: float, text: str = "", fontsize: float = 8,
           repeat: int = 1) -> None:
    """Draw the glyph of ``kind`` with its centre-left at (x, y), width w, height h."""
    from matplotlib import patches

    style = NOTATION[kind]
    edge = "#333333"
    bottom = y - h / 2
    if repeat > 1 or style.glyph == "stack":  # two shadows behind: the same thing several times
        for k in (2, 1):
            ax.add_patch(patches.FancyBboxPatch((x + 0.06 * k, bottom + 0.06 * k), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                                fc=style.colour, ec=edge, lw=0.6, alpha=0.6))
    glyph = "rounded" if style.glyph == "stack" else style.glyph
    if glyph == "box":
        ax.add_patch(patches.Rectangle((x, bottom), w, h, fc=style.colour, ec=edge, lw=0.8))
    elif glyph == "rounded":
        ax.add_patch(patches.FancyBboxPatch((x, bottom), w, h, boxstyle="round,pad=0,rounding_size=0.12",
                                            fc=style.colour, ec=edge, lw=1.6))
    elif glyph == "trapezoid":  # narrows downwards: pooling shrinks the map
        inset = 0.12 * w
        ax.add_patch(patches.Polygon([(x, y + h / 2), (x + w, y + h / 2), (x + w - inset, bottom), (x + inset, bottom)],
                                     closed=True, fc=style.colour, ec=edge, lw=0.8))
    elif glyph == "pill":
        dashed = kind == "other"
        ax.add_patch(patches.FancyBboxPatch((x, bottom), w, h, boxstyle=f"round,pad=0,rounding_size={h / 2}",
                                            fc=style.colour, ec=edge, lw=0.8, ls="--" if dashed else "-"))
    elif glyph == "ellipse":
        ax.add_patch(patches.Ellipse((x + w / 2, y), w, h, fc=style.colour, ec=edge, lw=0.8))
    elif glyph == "circle":
        r = h / 2
        ax.add_patch(patches.Circle((x + r, y), r, fc=style.colour, ec=edge, lw=0.8))
        ax.text(x + r, y, text or "+", ha="center", va="center", fontsize=fontsize + 1, weight="bold")
        return
    if repeat > 1:
        text = f"{text}  ×{repeat}"
    ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=fontsize)


def _tag_width(label: str) -> float:
    """Width (inches) of a tag pill that fits ``label`` at font size 6.5."""
    return max(0.5, 0.065 * len(label) + 0.18)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def draw_model(
    model: nn.Module | str, input_size: tuple[int, int, int] | None = None, title: str | None = None,
    max_rows: int = 26, collapse: bool = True,
) -> Any:
    """An overview of ``model``, top to bottom, in the book's notation; returns the matplotlib Figure.

    Each row is a layer (with its normalisation, activation and dropout as tags beside it) or a block
    drawn as one module box; identical consecutive rows appear once, marked xN. The output shape of each
    row (channels x height x width, or features) is written on its right. Long networks wrap into
    several columns of at most ``max_rows`` rows.

    Args:
        model: an ``nn.Module``, or the name of a registered network (built on the meta device, so even
            VGG-19 costs no memory).
        input_size: (C, H, W); defaults to the registered native size (or ``fixed_input_size``).
        title: defaults to the class name and input size.
    """
    import matplotlib.pyplot as plt

    name = model if isinstance(model, str) else type(model).__name__
    model, input_size = _resolve(model, input_size)
    rows = layer_rows(model, input_size, collapse=collapse)
    columns = [rows[i:i + max_rows] for i in range(0, len(rows), max_rows)]
    main_w, gap, row_h, glyph_h = 2.3, 0.08, 0.42, 0.3
    tags_w = max((sum(_tag_width(label) + gap for _, label in r.tags) for r in rows), default=0.0)
    col_w = main_w + tags_w + 1.45
    height = max(len(c) for c in columns) * row_h + 0.5
    fig = plt.figure(figsize=(col_w * len(columns) + 0.2, height + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.1, col_w * len(columns) + 0.1)
    ax.set_ylim(-height, 0.35)
    ax.axis("off")
    for c, column in enumerate(columns):
        x0 = c * col_w
        for r, row in enumerate(column):
            y = -0.25 - r * row_h
            _glyph(ax, row.kind, x0, y, main_w, glyph_h, row.label, repeat=row.repeat)
            tag_x = x0 + main_w + gap
            for tag_kind, tag_label in row.tags:
                _glyph(ax, tag_kind, tag_x, y, _tag_width(tag_label), glyph_h * 0.8, tag_label, fontsize=6.5)
                tag_x += _tag_width(tag_label) + gap
            ax.text(x0 + main_w + tags_w + 0.12, y, _shape_text(row.shape), ha="left", va="center",
                    fontsize=7.5, color="#444444", family="monospace")
            if r + 1 < len(column):
                ax.annotate("", xy=(x0 + main_w / 2, y - row_h + glyph_h / 2), xytext=(x0 + main_w / 2, y - glyph_h / 2),
                            arrowprops=dict(arrowstyle="-|>", lw=0.7, color="#555555", shrinkA=0, shrinkB=0))
        if c + 1 < len(columns):  # continue in the next column
            ax.text(x0 + main_w / 2, -0.25 - len(column) * row_h + 0.1, "continues →", ha="center", va="center",
                    fontsize=7, color="#555555")
    fig.suptitle(title or f"{name}, input {_shape_text(tuple(input_size))}", fontsize=9, y=0.999, va="top")
    return fig


def draw_notation_legend() -> Any:
    """The notation used by every diagram of the book: one example glyph and one line per entry."""
    import matplotlib.pyplot as plt

    examples = {"input": "input", "conv": "conv 3×3, 64", "pool": "max pool 2×2, /2", "dense": "dense 4096",
                "activation": "ReLU", "norm": "BN", "merge": "+", "module": "Inception", "repeat": "Bottleneck  ×3",
                "other": "dropout 0.5"}
    row_h = 0.5
    fig = plt.figure(figsize=(7.6, row_h * len(NOTATION) + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 7.6)
    ax.set_ylim(-row_h * len(NOTATION) - 0.1, 0.2)
    ax.axis("off")
    for i, (kind, style) in enumerate(NOTATION.items()):
        y = -0.2 - i * row_h
        small = style.glyph in ("pill", "circle")
        width = 0.9 if small else 2.0
        _glyph(ax, kind, 0.15 + (2.0 - width) / 2, y, width, 0.3, examples[kind], fontsize=7.5)
        ax.text(2.55, y, style.name, ha="left", va="center", fontsize=9, weight="bold")
        ax.text(4.25, y, style.meaning, ha="left", va="center", fontsize=7.5, color="#333333")
    return fig


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
    was_training = block.training
    block.eval()
    try:
        with torch.no_grad():
            parameter = next(block.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            ShapeProp(module).propagate(torch.zeros(1, *input_size, device=device))
    finally:
        block.train(was_training)
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


def _spread(desired: list[float], spacing: float) -> list[float]:
    """Positions near ``desired`` (already sorted) at least ``spacing`` apart, centred like them."""
    placed: list[float] = []
    for d in desired:
        placed.append(max(d, placed[-1] + spacing) if placed else d)
    shift = sum(desired) / len(desired) - sum(placed) / len(placed)
    return [p + shift for p in placed]


def _layout(nodes: list[Node], spacing: float) -> tuple[dict[str, float], dict[tuple[str, str], list[str]]]:
    """x position of every node, and the way points of every edge.

    An edge that skips levels gets one invisible way point per skipped level, which takes a column of its
    own (Sugiyama's dummy nodes), so long edges run beside the boxes instead of through them. Each level
    is placed under the mean position of its inputs, keeping the graph order when they tie.
    """
    by_name = {n.name: n for n in nodes}
    levels: dict[int, list[tuple[str, list[str]]]] = {}  # level -> [(name, inputs)]
    routes: dict[tuple[str, str], list[str]] = {}
    for node in nodes:
        inputs = []
        for source in node.inputs:
            previous, points = source, []
            for level in range(by_name[source].level + 1, node.level):
                point = f"{source}->{node.name}@{level}"
                levels.setdefault(level, []).append((point, [previous]))
                points.append(point)
                previous = point
            routes[(source, node.name)] = points
            inputs.append(previous)
        levels.setdefault(node.level, []).append((node.name, inputs))
    x: dict[str, float] = {}
    for level in sorted(levels):
        members = levels[level]
        desired = [sum(x[s] for s in inputs) / len(inputs) if inputs else 0.0 for _, inputs in members]
        ordered = sorted(range(len(members)), key=lambda i: desired[i])
        for i, position in zip(ordered, _spread([desired[i] for i in ordered], spacing)):
            x[members[i][0]] = position
    return x, routes


def draw_block(block: nn.Module, input_size: tuple[int, int, int], title: str | None = None) -> Any:
    """The graph of one block (e.g. an inception module or a residual block), top to bottom.

    Parallel branches sit side by side; merges (C: concatenation, +: addition) are circles; a layer's
    normalisation and activation are tags on its right, as in :func:`draw_model`. Returns the matplotlib
    Figure. ``input_size`` is the (C, H, W) the block receives.
    """
    import matplotlib.pyplot as plt

    nodes = block_graph(block, input_size)
    box_w, gap, box_h, row_h = 1.55, 0.05, 0.32, 0.72
    tags_w = max((sum(_tag_width(label) + gap for _, label in n.tags) for n in nodes), default=0.0)
    col_w = box_w + tags_w + 0.35
    x, routes = _layout(nodes, col_w)
    y = {name: 0.0 for name in x}
    for node in nodes:
        y[node.name] = -0.25 - node.level * row_h
    for (source, target), points in routes.items():
        for point in points:
            y[point] = -0.25 - int(point.rsplit("@", 1)[1]) * row_h
    left = min(x.values()) - box_w / 2 - 0.2
    right = max(x.values()) + col_w - box_w / 2 + 0.3
    levels = max(n.level for n in nodes) + 1
    height = levels * row_h + 0.3
    width = max(right - left, 3.2)
    fig = plt.figure(figsize=(width, height + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, left + width)
    ax.set_ylim(-height, 0.35)
    ax.axis("off")
    for (source, target), points in routes.items():  # edges first, under the glyphs
        path = [(x[source], y[source] - box_h / 2)] + [(x[p], y[p]) for p in points] + [(x[target], y[target] + box_h / 2)]
        xs, ys = zip(*path)
        ax.plot(xs[:-1], ys[:-1], color="#555555", lw=0.7)
        ax.annotate("", xy=path[-1], xytext=path[-2],
                    arrowprops=dict(arrowstyle="-|>", lw=0.7, color="#555555", shrinkA=0, shrinkB=1))
    for node in nodes:
        cx, cy = x[node.name], y[node.name]
        if node.kind == "merge":
            _glyph(ax, "merge", cx - box_h / 2, cy, box_h, box_h, node.label)
            right_edge = cx + box_h / 2
        else:
            _glyph(ax, node.kind, cx - box_w / 2, cy, box_w, box_h, node.label, fontsize=7)
            tag_x = cx + box_w / 2 + gap
            for kind, label in node.tags:
                _glyph(ax, kind, tag_x, cy, _tag_width(label), box_h * 0.8, label, fontsize=6)
                tag_x += _tag_width(label) + gap
            right_edge = cx + box_w / 2
        ax.text(right_edge + 0.04, cy - box_h / 2 - 0.03, _shape_text(node.shape), ha="left", va="top", fontsize=6,
                color="#444444", family="monospace")
    fig.suptitle(title or f"{type(block).__name__}, input {_shape_text(tuple(input_size))}", fontsize=9, y=0.999, va="top")
    return fig
