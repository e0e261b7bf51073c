"""Generate the reference outputs of the graded exercises, and their SHA-256 manifest.

    python autograder/make_references.py            # (re)write autograder/references/ and MANIFEST.sha256
    python autograder/make_references.py --check    # recompute in memory; fail if a stored file differs
    python autograder/make_references.py --list     # the items and their case counts

Every item is computed from the package's reference implementation (``cnnbook`` layers, models and
calculators, or ``torch.nn`` where the exercise asks to rebuild a torch layer), in float64 on the CPU,
with weights and inputs drawn here once and stored: the grader loads them into the student's module;
nothing is regenerated from seeds at grading time. Files are ``torch.save`` of plain containers
(tensors, ints, floats, strings) that ``cnnbook.grading.load_reference`` reads with
``weights_only=True``. The format of a case is described in ``cnnbook.grading.check_function`` and
``check_module``.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

import cnnbook
from cnnbook import grading
from cnnbook.nas.darts import MixedOp  # ch13: the reference DARTS edge, MixedOp(channels, ops)

HERE = Path(__file__).resolve().parent
ROOT = HERE / "references"

Item = Callable[[], dict[str, Any]]
ITEMS: dict[str, Item] = {}


def item(name: str) -> Callable[[Item], Item]:
    """Register the builder of reference item ``name`` ("<assignment>/<item>")."""

    def wrap(fn: Item) -> Item:
        ITEMS[name] = fn
        return fn

    return wrap


def _seed(name: str) -> None:
    torch.manual_seed(zlib.crc32(name.encode()))  # a fixed seed per item, so items are independent


def case(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


def f64(module: nn.Module) -> nn.Module:
    return module.to(torch.float64)


def state(module: nn.Module, rename: dict[str, str] | None = None) -> dict[str, Tensor]:
    """A module's state dict as float64 CPU tensors, keys renamed by prefix."""
    out = {}
    for key, value in module.state_dict().items():
        for old, new in (rename or {}).items():
            if key.startswith(old + "."):
                key = new + key[len(old):]
        out[key] = value.detach().clone()
    return out


# Inputs and weights are drawn in float32 and stored as float64: the student's code, run in float32, sees
# exactly the values the float64 reference was computed from, so only its own rounding is measured.
def randn(*shape: int) -> Tensor:
    return torch.randn(*shape, dtype=torch.float32).double()


def rand(*shape: int) -> Tensor:
    return torch.rand(*shape, dtype=torch.float32).double()


def f32(t: Tensor) -> Tensor:
    """Round to the nearest float32 value (kept in float64)."""
    return t.float().double()


# ==== ch02_lenet =====================================================================================
@item("ch02_lenet/conv_output_size")
def _() -> dict[str, Any]:
    cases = []
    for size, k, s, p in [(32, 5, 1, 0), (32, 3, 1, 0), (224, 11, 4, 2), (55, 3, 2, 0), (13, 2, 2, 0),
                          (7, 7, 1, 3), (227, 11, 4, 0), (6, 3, 3, 1), (1, 1, 1, 0), (31, 4, 3, 2)]:
        out = nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p)
        cases.append(case(f"size={size}, kernel_size={k}, stride={s}, padding={p}",
                          args=[size, k], kwargs={"stride": s, "padding": p}, expected=int(out.shape[-1])))
    return {"title": "conv_output_size", "cases": cases}


@item("ch02_lenet/lenet_flat_features")
def _() -> dict[str, Any]:
    cases = []
    for k in (3, 5, 1, 7):
        body = nn.Sequential(nn.Conv2d(1, 6, k), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, k), nn.MaxPool2d(2, 2))
        flat = torch.flatten(body(torch.zeros(1, 1, 32, 32)), 1).shape[1]
        if k in (3, 5):  # the package's LeNet agrees
            assert cnnbook.get_model("lenet5_modern" if k == 3 else "lenet5").flat_features == flat
        cases.append(case(f"kernel_size={k}", args=[k], expected=int(flat)))
    return {"title": "lenet_flat_features", "cases": cases}


_LENET_NAMES = {"features.0": "conv1", "features.3": "conv2", "classifier.0": "fc1",
                "classifier.2": "fc2", "classifier.4": "fc3"}


@item("ch02_lenet/lenet")
def _() -> dict[str, Any]:
    cases = []
    for num_classes, batch in ((10, 4), (5, 3)):
        model = f64(cnnbook.get_model("lenet5_modern", num_classes=num_classes)).eval()
        x = randn(batch, 1, 32, 32)
        with torch.no_grad():
            y = model(x)
        cases.append(case(f"num_classes={num_classes}, batch of {batch}", init_kwargs={"num_classes": num_classes},
                          state_dict=state(model, _LENET_NAMES), steps=[{"mode": "eval", "args": [x], "expected": y}]))
    return {"title": "LeNet", "cases": cases}


@item("ch02_lenet/count_parameters")
def _() -> dict[str, Any]:
    specs = [
        ("LeNet-5 (1998)", {"__module__": "cnnbook:lenet5"}),
        ("modern LeNet", {"__module__": "cnnbook:lenet5_modern"}),
        ("Conv2d without bias", {"__module__": "torch.nn:Conv2d",
                                 "kwargs": {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": False}}),
        ("BatchNorm2d (buffers are not parameters)", {"__module__": "torch.nn:BatchNorm2d",
                                                      "kwargs": {"num_features": 16}}),
    ]
    cases = []
    for name, spec in specs:
        module = grading.build_module_spec(spec)
        cases.append(case(name, args=[spec], expected=sum(p.numel() for p in module.parameters())))
    assert cases[0]["expected"] == 61_706
    return {"title": "count_parameters", "cases": cases}


# ==== ch03_pooling ===================================================================================
LECTURE_SIGNAL = [0, 0, 5, 0, 0, 6, 0, 0, 3, 0, 0, 4, 0, 0]


@item("ch03_pooling/max_pool1d")
def _() -> dict[str, Any]:
    from cnnbook.calc import pooling

    signal = torch.tensor(LECTURE_SIGNAL, dtype=torch.float64)
    inputs = [("the lecture's signal", signal, 3, 2, True), ("the lecture's signal", signal, 2, 2, False)]
    for n, z, s, ceil in [(15, 3, 2, False), (15, 3, 2, True), (10, 4, 3, True), (9, 2, 3, False),
                          (8, 8, 1, False), (12, 5, 2, True), (20, 3, 1, False)]:
        inputs.append((f"{n} random values", f32(randn(n) - 1.0), z, s, ceil))  # mostly negative
    cases = []
    for label, x, z, s, ceil in inputs:
        y = nn.functional.max_pool1d(x[None, None], z, s, ceil_mode=ceil)[0, 0]
        if label.startswith("the lecture"):  # the package's calculator agrees with torch
            assert pooling.pool1d(x.tolist(), z, s, ceil_mode=ceil) == y.tolist()
        cases.append(case(f"{label}, kernel_size={z}, stride={s}, ceil_mode={ceil}",
                          args=[x, z, s], kwargs={"ceil_mode": ceil}, expected=y))
    return {"title": "max_pool1d", "cases": cases}


@item("ch03_pooling/pool2d")
def _() -> dict[str, Any]:
    cases = []
    for shape, z, s in [((2, 3, 13, 13), 3, 2), ((1, 4, 8, 8), 2, 2), ((2, 2, 7, 9), 3, 3),
                        ((1, 2, 6, 6), 1, 2), ((1, 3, 11, 10), 4, 1)]:
        x = randn(*shape)
        for mode in ("max", "avg"):
            pool = nn.functional.max_pool2d if mode == "max" else nn.functional.avg_pool2d
            cases.append(case(f"input {shape}, kernel_size={z}, stride={s}, mode={mode!r}",
                              args=[x, z, s], kwargs={"mode": mode}, expected=pool(x, z, s)))
    return {"title": "pool2d", "cases": cases}


@item("ch03_pooling/coverage")
def _() -> dict[str, Any]:
    from cnnbook.calc import pooling

    cases = []
    for n, z, s in [(14, 3, 2), (14, 2, 2), (10, 3, 3), (9, 2, 3), (8, 4, 1), (5, 5, 2), (13, 3, 2)]:
        counts = [0] * n
        for start in range(0, n - z + 1, s):
            for i in range(start, start + z):
                counts[i] += 1
        assert pooling.coverage(n, z, s, ceil_mode=False) == counts
        cases.append(case(f"length={n}, kernel_size={z}, stride={s}", args=[n, z, s], expected=counts))
    return {"title": "coverage", "cases": cases}


# ==== ch04_nin_gap ===================================================================================
@item("ch04_nin_gap/conv1x1")
def _() -> dict[str, Any]:
    cases = []
    for n, c_in, c_out, h, w in [(2, 3, 8, 5, 5), (1, 1, 1, 4, 4), (3, 16, 4, 7, 6), (2, 8, 8, 1, 1)]:
        conv = f64(nn.Conv2d(c_in, c_out, 1))
        x = randn(n, c_in, h, w)
        cases.append(case(f"{c_in} -> {c_out} channels, input {(n, c_in, h, w)}",
                          args=[x, conv.weight.detach().clone(), conv.bias.detach().clone()], expected=conv(x)))
    return {"title": "conv1x1", "cases": cases}


@item("ch04_nin_gap/global_avg_pool")
def _() -> dict[str, Any]:
    cases = []
    for shape in [(2, 3, 5, 5), (4, 64, 7, 7), (1, 2, 3, 8), (2, 5, 1, 1)]:
        x = f32(randn(*shape) + 1.0)
        cases.append(case(f"input {shape}", args=[x],
                          expected=torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))
    return {"title": "global_avg_pool", "cases": cases}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@item("ch04_nin_gap/fc_head_parameters")
def _() -> dict[str, Any]:
    cases = []
    for c, h, w, k in [(64, 7, 7, 10), (512, 7, 7, 1000), (256, 6, 6, 1000), (16, 5, 3, 2)]:
        head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k))
        cases.append(case(f"channels={c}, height={h}, width={w}, num_classes={k}", args=[c, h, w, k],
                          expected=_count(head)))
    return {"title": "fc_head_parameters", "cases": cases}


@item("ch04_nin_gap/gap_head_parameters")
def _() -> dict[str, Any]:
    cases = []
    for c, k in [(64, 10), (512, 1000), (2048, 1000), (3, 2)]:
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, k))
        cases.append(case(f"channels={c}, num_classes={k}", args=[c, k], expected=_count(head)))
    return {"title": "gap_head_parameters", "cases": cases}


@item("ch04_nin_gap/mlpconv")
def _() -> dict[str, Any]:
    from cnnbook.models.nin import MLPConv

    cases = []
    for c_in, c_out, k, s, p, hw in [(3, 16, 5, 2, 2, 16), (8, 8, 3, 1, 1, 9), (4, 6, 1, 1, 0, 5)]:
        block = f64(MLPConv(c_in, (c_out, c_out, c_out), k, stride=s, padding=p)).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"MLPConv({c_in}, {c_out}, kernel_size={k}, stride={s}, padding={p})",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "kernel_size": k,
                                       "stride": s, "padding": p},
                          state_dict=state(block, {"0": "conv", "2": "mlp1", "4": "mlp2"}),
                          steps=[{"mode": "eval", "args": [x], "expected": block(x)}]))
    return {"title": "MLPConv", "cases": cases}


# ==== ch05_vgg ========================================================================================
@item("ch05_vgg/receptive_field")
def _() -> dict[str, Any]:
    cases = []
    for layers, k in [(1, 3), (2, 3), (3, 3), (4, 3), (2, 5), (3, 1), (5, 7)]:
        x = torch.zeros(1, 1, 41, 41)
        x[0, 0, 20, 20] = 1.0  # which outputs does one input reach? as far as one output sees
        body = nn.Sequential(*[nn.Conv2d(1, 1, k, padding=k // 2, bias=False) for _ in range(layers)])
        for conv in body:
            nn.init.ones_(conv.weight)
        reached = (body(x)[0, 0] != 0).any(dim=0).sum()
        cases.append(case(f"num_layers={layers}, kernel_size={k}", args=[layers], kwargs={"kernel_size": k},
                          expected=int(reached)))
    return {"title": "receptive_field", "cases": cases}


@item("ch05_vgg/stack_vs_single")
def _() -> dict[str, Any]:
    cases = []
    for c, layers in [(1, 2), (64, 2), (256, 3), (512, 3), (8, 1)]:
        stack = nn.Sequential(*[nn.Conv2d(c, c, 3, bias=False) for _ in range(layers)])
        single = nn.Conv2d(c, c, 2 * layers + 1, bias=False)
        cases.append(case(f"channels={c}, num_layers={layers}", args=[c, layers],
                          expected=(_count(stack), _count(single))))
    return {"title": "stack_vs_single", "cases": cases}


@item("ch05_vgg/vgg_block")
def _() -> dict[str, Any]:
    from cnnbook.models.vgg import make_layers

    cases = []
    for n, c_in, c_out, hw in [(2, 3, 16, 16), (3, 8, 8, 10), (1, 4, 6, 9)]:
        block = f64(make_layers([c_out] * n + ["M"], in_channels=c_in)).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"vgg_block({n}, {c_in}, {c_out}), input {(2, c_in, hw, hw)}", args=[n, c_in, c_out],
                          measure="num_parameters", expected=_count(block), probe=[x], probe_state=state(block),
                          expected_probe=block(x)))
    return {"title": "vgg_block", "cases": cases}


@item("ch05_vgg/vgg_features")
def _() -> dict[str, Any]:
    from cnnbook.models.vgg import cfgs, make_layers

    cases = []
    for label, cfg, c_in, hw in [("VGG-11 / 16 channels", cfgs["A"], 3, 32),
                                 ("a small table", [8, 8, "M", 16, "M", 16], 1, 12),
                                 ("a table ending without pooling", [4, "M", "M", 6, 6], 2, 8)]:
        if label.startswith("VGG"):
            cfg = [v if v == "M" else v // 16 for v in cfg]
        body = f64(make_layers(cfg, in_channels=c_in)).eval()
        x = randn(1, c_in, hw, hw)
        cases.append(case(f"{label}: {cfg}, in_channels={c_in}", args=[cfg], kwargs={"in_channels": c_in},
                          measure="num_parameters", expected=_count(body), probe=[x], probe_state=state(body),
                          expected_probe=body(x)))
    return {"title": "vgg_features", "cases": cases}


# ==== ch06_inception ==================================================================================
@item("ch06_inception/conv_mult_adds")
def _() -> dict[str, Any]:
    from cnnbook.calc.costs import conv_cost

    cases = []
    for k, c_in, c_out, h, w in [(3, 192, 256, 28, 28), (5, 192, 256, 28, 28), (1, 64, 32, 7, 9), (7, 3, 64, 112, 112)]:
        cases.append(case(f"kernel_size={k}, {c_in} -> {c_out} channels, output {h}x{w}", args=[k, c_in, c_out, h, w],
                          expected=conv_cost(k, c_in, c_out, h, w).mult_adds))
    return {"title": "conv_mult_adds", "cases": cases}


@item("ch06_inception/inception_mult_adds")
def _() -> dict[str, Any]:
    from cnnbook.calc.costs import inception_cost

    cases = []
    for c_in, h, w, ch in [(192, 28, 28, (64, 96, 128, 16, 32, 32)), (256, 28, 28, (128, 128, 192, 32, 96, 64)),
                           (832, 7, 7, (384, 192, 384, 48, 128, 128)), (10, 5, 6, (1, 2, 3, 4, 5, 6))]:
        c1, r3, c3, r5, c5, pp = ch
        branches = [[(1, c1)], [(1, r3), (3, c3)], [(1, r5), (5, c5)], ["pool", (1, pp)]]
        cases.append(case(f"in_channels={c_in}, {h}x{w}, channels {ch}", args=[c_in, h, w, *ch],
                          expected=inception_cost(c_in, h, w, branches).mult_adds))
    return {"title": "inception_mult_adds", "cases": cases}


def _randomise_bn(module: nn.Module) -> None:
    """Non-trivial batch-norm parameters and statistics, so that evaluation mode tests them."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data.copy_(f32(randn(c) * 0.3 + 1))
            m.bias.data.copy_(f32(randn(c) * 0.2))
            m.running_mean.copy_(f32(randn(c) * 0.2))
            m.running_var.copy_(f32(rand(c) + 0.5))


@item("ch06_inception/inception_module")
def _() -> dict[str, Any]:
    from cnnbook.layers import InceptionModule

    cases = []
    for c_in, ch, hw in [(192, (64, 96, 128, 16, 32, 32), 8), (12, (4, 6, 8, 2, 4, 3), 7), (5, (1, 2, 3, 1, 2, 4), 3)]:
        block = f64(InceptionModule(c_in, *ch, branch3_kernel=5))
        _randomise_bn(block)
        block.eval()
        x = randn(2, c_in, hw, hw)
        names = ["in_channels", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"]
        cases.append(case(f"Inception{(c_in, *ch)}, input {(2, c_in, hw, hw)}",
                          init_kwargs=dict(zip(names, (c_in, *ch))), state_dict=state(block),
                          steps=[{"mode": "eval", "args": [x], "expected": block(x)}]))
    return {"title": "Inception", "cases": cases}


# ==== ch07_batchnorm =================================================================================
# Small batches (m = N*H*W as low as 6) make the unbiased running-variance update clearly different
# from the biased one (m / (m - 1) = 1.2), and inputs with a non-zero mean and scale catch a missing step.
_BN_SHAPES = [(4, 3, 5, 5), (2, 6, 3, 1), (6, 4), (3, 2, 2, 1), (8, 5, 1, 1)]


def _bn_input(shape: tuple[int, ...]) -> Tensor:
    c = shape[1]
    centre = randn(c) * 3
    spread = rand(c) * 2 + 0.5
    view = [1, c] + [1] * (len(shape) - 2)
    return f32(centre.reshape(view) + spread.reshape(view) * randn(*shape))


@item("ch07_batchnorm/batch_statistics")
def _() -> dict[str, Any]:
    cases = []
    for shape in _BN_SHAPES:
        x = _bn_input(shape)
        dims = [0] + list(range(2, x.dim()))
        cases.append(case(f"input {shape}", args=[x], expected=(x.mean(dims), x.var(dims, unbiased=False)),
                          output_names=["mean", "var"]))
    return {"title": "batch_statistics", "cases": cases}


def _bn_params(c: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return f32(randn(c) * 0.5 + 1), randn(c) * 0.5, randn(c), f32(rand(c) + 0.5)


@item("ch07_batchnorm/batchnorm_train")
def _() -> dict[str, Any]:
    cases = []
    for shape, momentum, eps in zip(_BN_SHAPES, (0.1, 0.3, 0.1, 0.5, 0.01), (1e-5, 1e-3, 1e-5, 0.1, 1e-5)):
        x = _bn_input(shape)
        gamma, beta, mean, var = _bn_params(shape[1])
        new_mean, new_var = mean.clone(), var.clone()
        y = nn.functional.batch_norm(x, new_mean, new_var, gamma, beta, training=True, momentum=momentum, eps=eps)
        cases.append(case(f"input {shape}, momentum={momentum}, eps={eps}",
                          args=[x, gamma, beta, mean, var], kwargs={"momentum": momentum, "eps": eps},
                          expected=(y, new_mean, new_var), output_names=["y", "new_running_mean", "new_running_var"]))
    return {"title": "batchnorm_train", "cases": cases}


@item("ch07_batchnorm/batchnorm_eval")
def _() -> dict[str, Any]:
    cases = []
    for shape, eps in zip(_BN_SHAPES, (1e-5, 1e-3, 1e-5, 0.1, 1e-5)):
        x = _bn_input(shape)
        gamma, beta, mean, var = _bn_params(shape[1])
        y = nn.functional.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)
        cases.append(case(f"input {shape}, eps={eps}", args=[x, gamma, beta, mean, var], kwargs={"eps": eps},
                          expected=y))
    return {"title": "batchnorm_eval", "cases": cases}


@item("ch07_batchnorm/batchnorm_module")
def _() -> dict[str, Any]:
    cases = []
    for c, eps, momentum, shape in [(3, 1e-5, 0.1, (4, 3, 5, 5)), (5, 1e-3, 0.3, (2, 5, 3, 2))]:
        bn = f64(nn.BatchNorm2d(c, eps=eps, momentum=momentum))
        gamma, beta, mean, var = _bn_params(c)
        for name, value in (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var)):
            getattr(bn, name).data.copy_(value)
        start = {k: v.clone() for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
        steps = []
        for mode in ("train", "train", "eval"):
            x = _bn_input(shape)
            bn.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": bn(x)})
        cases.append(case(f"num_features={c}, eps={eps}, momentum={momentum}, input {shape}",
                          init_kwargs={"num_features": c, "eps": eps, "momentum": momentum},
                          state_dict=start, optional_state=["num_batches_tracked"], steps=steps,
                          expected_state={"running_mean": bn.running_mean.clone(),
                                          "running_var": bn.running_var.clone()}))
    return {"title": "BatchNorm2d", "cases": cases}


# ==== ch08_resnet ====================================================================================
@item("ch08_resnet/needs_projection")
def _() -> dict[str, Any]:
    from cnnbook.layers import BasicBlock

    cases = []
    for c_in, c_out, s in [(64, 64, 1), (64, 128, 2), (64, 64, 2), (32, 64, 1), (128, 128, 1), (3, 3, 3)]:
        try:  # the package's block refuses an identity shortcut exactly when the shapes differ
            BasicBlock(c_in, c_out, s)
            needed = False
        except ValueError:
            needed = True
        cases.append(case(f"in_channels={c_in}, out_channels={c_out}, stride={s}", args=[c_in, c_out, s],
                          expected=needed))
    return {"title": "needs_projection", "cases": cases}


def _basic_block(c_in: int, c_out: int, stride: int) -> nn.Module:
    from cnnbook.layers import BasicBlock

    project = stride != 1 or c_in != c_out
    downsample = BasicBlock.projection(c_in, c_out, stride, nn.BatchNorm2d) if project else None
    block = f64(BasicBlock(c_in, c_out, stride, downsample))
    _randomise_bn(block)
    return block


@item("ch08_resnet/residual_block")
def _() -> dict[str, Any]:
    cases = []
    for c_in, c_out, s, hw in [(8, 8, 1, 6), (8, 16, 2, 7), (6, 6, 2, 8), (4, 10, 1, 5)]:
        block = _basic_block(c_in, c_out, s)
        start = {k: v for k, v in state(block).items()}
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(3, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"ResidualBlock({c_in}, {c_out}, stride={s}), input {(3, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s},
                          state_dict=start, steps=steps))
    return {"title": "ResidualBlock", "cases": cases}


@item("ch08_resnet/make_stage")
def _() -> dict[str, Any]:
    cases = []
    for c_in, c_out, n, s, hw in [(8, 16, 3, 2, 9), (6, 6, 2, 1, 5), (4, 8, 1, 2, 6)]:
        blocks = [_basic_block(c_in, c_out, s)] + [_basic_block(c_out, c_out, 1) for _ in range(n - 1)]
        stage = nn.Sequential(*blocks).eval()
        x = randn(2, c_in, hw, hw)
        cases.append(case(f"make_stage({c_in}, {c_out}, {n}, {s}), input {(2, c_in, hw, hw)}", args=[c_in, c_out, n, s],
                          measure="num_parameters", expected=_count(stage), probe=[x], probe_state=state(stage),
                          expected_probe=stage(x)))
    return {"title": "make_stage", "cases": cases}


# ==== ch09_densenet_se ================================================================================
@item("ch09_densenet_se/dense_block_channels")
def _() -> dict[str, Any]:
    from cnnbook.layers import DenseBlock, dense_block_channels

    cases = []
    for c_in, n, k in [(3, 5, 4), (64, 6, 32), (128, 12, 32), (16, 1, 8)]:
        assert DenseBlock(n, c_in, k).out_channels == dense_block_channels(c_in, n, k)
        cases.append(case(f"in_channels={c_in}, num_layers={n}, growth_rate={k}", args=[c_in, n, k],
                          expected=dense_block_channels(c_in, n, k)))
    return {"title": "dense_block_channels", "cases": cases}


@item("ch09_densenet_se/dense_connections")
def _() -> dict[str, Any]:
    from cnnbook.layers import dense_connections

    return {"title": "dense_connections",
            "cases": [case(f"num_layers={n}", args=[n], expected=dense_connections(n)) for n in (1, 5, 6, 24)]}


@item("ch09_densenet_se/dense_block")
def _() -> dict[str, Any]:
    from cnnbook.layers import DenseBlock

    cases = []
    for n, c_in, k, hw in [(5, 3, 4, 6), (2, 8, 6, 5), (3, 4, 2, 4)]:
        block = f64(DenseBlock(n, c_in, k))
        _randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"DenseBlock({n}, {c_in}, {k}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"num_layers": n, "in_channels": c_in, "growth_rate": k},
                          state_dict=start, steps=steps))
    return {"title": "DenseBlock", "cases": cases}


@item("ch09_densenet_se/squeeze_excite")
def _() -> dict[str, Any]:
    from cnnbook.layers import SqueezeExcite

    cases = []
    for c, r, hw in [(32, 8, 5), (16, 16, 3), (12, 4, 7)]:
        se = f64(SqueezeExcite(c, r)).eval()
        for conv in (se.fc1, se.fc2):
            conv.weight.data.copy_(f32(conv.weight * 3.0))  # larger weights: the sigmoid leaves its linear region
        x = randn(2, c, hw, hw)
        cases.append(case(f"SqueezeExcite({c}, reduction={r}), input {(2, c, hw, hw)}",
                          init_kwargs={"channels": c, "reduction": r}, state_dict=state(se),
                          steps=[{"mode": "eval", "args": [x], "expected": se(x)}]))
    return {"title": "SqueezeExcite", "cases": cases}


# ==== ch10_unet ======================================================================================
@item("ch10_unet/center_crop")
def _() -> dict[str, Any]:
    from cnnbook.layers import center_crop

    cases = []
    for shape, h, w in [((1, 2, 6, 6), 2, 2), ((2, 3, 9, 8), 4, 5), ((1, 1, 7, 7), 7, 7), ((2, 4, 64, 64), 56, 56),
                        ((1, 2, 10, 5), 3, 2)]:
        x = randn(*shape)
        cases.append(case(f"input {shape} to {h}x{w}", args=[x, h, w], expected=center_crop(x, h, w).clone()))
    return {"title": "center_crop", "cases": cases}


@item("ch10_unet/skip_concat")
def _() -> dict[str, Any]:
    from cnnbook.layers import center_crop

    cases = []
    for skip_shape, x_shape in [((1, 8, 12, 12), (1, 8, 8, 8)), ((2, 3, 9, 9), (2, 5, 9, 9)),
                                ((2, 4, 11, 10), (2, 2, 6, 7))]:
        skip, x = randn(*skip_shape), randn(*x_shape)
        joined = torch.cat([center_crop(skip, x.shape[-2], x.shape[-1]), x], 1)
        cases.append(case(f"skip {skip_shape}, x {x_shape}", args=[skip, x], expected=joined))
    return {"title": "skip_concat", "cases": cases}


@item("ch10_unet/up_stage")
def _() -> dict[str, Any]:
    from cnnbook.layers import UNetUp

    cases = []
    for c_in, c_out, pad, hw, skip_hw in [(16, 8, 1, 4, 8), (16, 8, 0, 5, 14), (12, 4, 1, 3, 6)]:
        stage = f64(UNetUp(c_in, c_out, padding=pad)).eval()
        x, skip = randn(2, c_in, hw, hw), randn(2, c_out, skip_hw, skip_hw)
        cases.append(case(f"UpStage({c_in}, {c_out}, padding={pad}), x {(2, c_in, hw, hw)}, skip "
                          f"{(2, c_out, skip_hw, skip_hw)}", init_kwargs={"in_channels": c_in, "out_channels": c_out,
                                                                         "padding": pad},
                          state_dict=state(stage), steps=[{"mode": "eval", "args": [x, skip], "expected": stage(x, skip)}]))
    return {"title": "UpStage", "cases": cases}


# ==== ch11_mobilenet =================================================================================
@item("ch11_mobilenet/separable_mult_adds")
def _() -> dict[str, Any]:
    from cnnbook.calc.costs import separable_conv_cost, standard_conv_cost

    cases = []
    for k, m, n, d in [(3, 3, 5, 4), (3, 512, 512, 14), (5, 32, 64, 7), (1, 8, 8, 2), (3, 1024, 1024, 7)]:
        cases.append(case(f"k={k}, m={m}, n={n}, d={d}", args=[k, m, n, d],
                          expected=(standard_conv_cost(k, m, n, d, d).mult_adds,
                                    separable_conv_cost(k, m, n, d, d).mult_adds),
                          output_names=["standard", "separable"]))
    return {"title": "separable_mult_adds", "cases": cases}


@item("ch11_mobilenet/separable_block")
def _() -> dict[str, Any]:
    from cnnbook.layers import DepthwiseSeparableConv

    cases = []
    for c_in, c_out, s, hw in [(8, 16, 2, 8), (6, 6, 1, 5), (4, 10, 2, 7)]:
        block = f64(DepthwiseSeparableConv(c_in, c_out, 3, s))
        _randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"DepthwiseSeparableConv({c_in}, {c_out}, stride={s}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s},
                          state_dict=start, steps=steps))
    return {"title": "DepthwiseSeparableConv", "cases": cases}


@item("ch11_mobilenet/inverted_residual")
def _() -> dict[str, Any]:
    from cnnbook.layers import InvertedResidual

    cases = []
    for c_in, c_out, s, t, hw in [(8, 8, 1, 6, 6), (8, 12, 2, 6, 7), (6, 6, 1, 1, 5), (4, 4, 2, 3, 6)]:
        block = f64(InvertedResidual(c_in, c_out, s, t))
        _randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train", "eval"):
            x = randn(2, c_in, hw, hw) * 2  # large enough for ReLU6 to clip
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        cases.append(case(f"InvertedResidual({c_in}, {c_out}, stride={s}, expand_ratio={t}), input {(2, c_in, hw, hw)}",
                          init_kwargs={"in_channels": c_in, "out_channels": c_out, "stride": s, "expand_ratio": t},
                          state_dict=start, steps=steps))
    return {"title": "InvertedResidual", "cases": cases}


# ==== ch12_augmentation ==============================================================================
def _image(*shape: int) -> Tensor:
    return rand(*shape)


@item("ch12_augmentation/hflip")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = [case(f"input {shape}", args=[x], expected=TF.hflip(x))
             for shape in [(3, 5, 7), (1, 4, 4), (2, 3, 6, 5)] for x in [_image(*shape)]]
    return {"title": "hflip", "cases": cases}


@item("ch12_augmentation/hflip_where")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for n in (4, 5, 1):
        x = _image(n, 3, 6, 6)
        flip = torch.rand(n) < 0.5
        flip[0] = True
        expected = torch.stack([TF.hflip(img) if f else img for img, f in zip(x, flip)])
        cases.append(case(f"batch of {n}, flip={flip.tolist()}", args=[x, flip], expected=expected))
    return {"title": "hflip_where", "cases": cases}


@item("ch12_augmentation/pad_and_crop")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for shape, pad, top, left, size in [((3, 32, 32), 4, 0, 8, 32), ((3, 32, 32), 4, 7, 2, 32),
                                        ((1, 10, 12), 2, 3, 1, 8), ((2, 3, 8, 8), 1, 2, 0, 8)]:
        x = _image(*shape)
        expected = TF.crop(TF.pad(x, [pad]), top, left, size, size)
        cases.append(case(f"input {shape}, padding={pad}, top={top}, left={left}, size={size}",
                          args=[x, pad, top, left, size], expected=expected))
    return {"title": "pad_and_crop", "cases": cases}


@item("ch12_augmentation/adjust_brightness")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for shape, factor in [((3, 6, 6), 0.5), ((3, 6, 6), 1.7), ((2, 3, 4, 5), 1.2), ((3, 5, 5), 0.0)]:
        x = _image(*shape)
        cases.append(case(f"input {shape}, factor={factor}", args=[x, factor], expected=TF.adjust_brightness(x, factor)))
    return {"title": "adjust_brightness", "cases": cases}


@item("ch12_augmentation/adjust_contrast")
def _() -> dict[str, Any]:
    from torchvision.transforms.v2 import functional as TF

    cases = []
    for shape, factor in [((3, 6, 6), 0.5), ((3, 6, 6), 1.8), ((2, 3, 4, 5), 0.3), ((3, 7, 5), 2.5)]:
        x = _image(*shape)
        cases.append(case(f"input {shape}, factor={factor}", args=[x, factor], expected=TF.adjust_contrast(x, factor)))
    return {"title": "adjust_contrast", "cases": cases}


# ==== ch13_nas ========================================================================================
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
        _randomise_bn(mixed)
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


# ==== ch14_transfer ===================================================================================
def _pretrained(name: str = "resnet20_cifar") -> tuple[nn.Module, dict[str, Any]]:
    """A network with stored "pre-trained" weights (random here), and the spec that rebuilds it."""
    model = f64(cnnbook.get_model(name))
    _randomise_bn(model)
    sd = state(model)
    return model.eval(), {"__module__": f"cnnbook:{name}", "state_dict": sd}


@item("ch14_transfer/prepare_for_fine_tuning")
def _() -> dict[str, Any]:
    cases = []
    for k in (5,):  # (one case: the stored network is the largest reference file)
        model, spec = _pretrained()
        model.fc = f64(nn.Linear(model.fc.in_features, k))
        x = randn(2, 3, 32, 32)
        cases.append(case(f"resnet20_cifar, num_classes={k}", args=[spec, k], measure="trainable_parameters",
                          expected=["fc.bias", "fc.weight"], probe=[x], partial_state=True,
                          probe_state={"fc.weight": model.fc.weight.detach().clone(),
                                       "fc.bias": model.fc.bias.detach().clone()},
                          expected_probe=model(x)))
    return {"title": "prepare_for_fine_tuning", "cases": cases}


@item("ch14_transfer/train_only")
def _() -> dict[str, Any]:
    model = cnnbook.get_model("resnet20_cifar")
    names = [n for n, _ in model.named_parameters()]
    cases = []
    for prefixes in (["layer3", "fc"], ["fc"], ["layer2.2", "layer3", "fc"], ["bn1", "conv1"]):
        spec = {"__module__": "cnnbook:resnet20_cifar", "frozen": ["layer1"]}  # some already frozen
        cases.append(case(f"prefixes={prefixes}", args=[spec, prefixes], measure="trainable_parameters",
                          expected=sorted(n for n in names if n.startswith(tuple(prefixes)))))
    return {"title": "train_only", "cases": cases}


def _trainable_cases() -> list[tuple[str, dict[str, Any], int, int]]:
    out = []
    for label, spec in [("resnet20_cifar, layer1 and layer2 frozen",
                         {"__module__": "cnnbook:resnet20_cifar", "frozen": ["layer1", "layer2"]}),
                        ("resnet20_cifar, all but fc frozen",
                         {"__module__": "cnnbook:resnet20_cifar", "frozen": ["conv1", "bn1", "layer"]}),
                        ("LeNet-5, nothing frozen", {"__module__": "cnnbook:lenet5"})]:
        model = grading.build_module_spec(spec)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        out.append((label, spec, trainable, sum(p.numel() for p in model.parameters())))
    return out


@item("ch14_transfer/count_trainable")
def _() -> dict[str, Any]:
    return {"title": "count_trainable",
            "cases": [case(label, args=[spec], expected=n) for label, spec, n, _ in _trainable_cases()]}


@item("ch14_transfer/trainable_fraction")
def _() -> dict[str, Any]:
    return {"title": "trainable_fraction",
            "cases": [case(label, args=[spec], expected=n / total) for label, spec, n, total in _trainable_cases()]}


# ==== generation, checking, manifest =================================================================
def _inputs_are_float32(value: Any, where: str) -> None:
    """Every floating input the grader hands to student code must be exactly representable in float32."""
    if isinstance(value, Tensor):
        if value.is_floating_point() and not torch.equal(value, value.float().double()):
            raise AssertionError(f"{where} is not representable in float32: draw it with randn()/rand() or f32()")
    elif isinstance(value, dict):
        for key, v in value.items():
            if key not in ("expected", "expected_probe", "expected_state"):
                _inputs_are_float32(v, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _inputs_are_float32(v, f"{where}[{i}]")


def build(name: str) -> dict[str, Any]:
    _seed(name)
    with torch.no_grad():
        ref = ITEMS[name]()
    _inputs_are_float32(ref["cases"], name)
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="recompute and compare with the stored files")
    parser.add_argument("--list", action="store_true", help="list the items")
    parser.add_argument("items", nargs="*", help="only these items (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # bit-identical results from run to run
    names = args.items or sorted(ITEMS)
    if args.list:
        for name in names:
            print(f"{name}: {len(build(name)['cases'])} cases")
        return 0
    failures = []
    for name in names:
        ref = build(name)
        path = ROOT / f"{name}.pt"
        if args.check:
            if not path.is_file():
                failures.append(f"{name}: missing")
                continue
            stored = grading.load_reference(name, ROOT)
            problems = grading.compare(stored, {"format": grading.REFERENCE_FORMAT, **ref}, name)
            if problems:
                failures.append("\n".join(problems))
        else:
            grading.save_reference(ref, path)
            print(f"wrote {path.relative_to(HERE.parent)} ({len(ref['cases'])} cases)")
    if args.check:
        failures += grading.verify_manifest(ROOT)
        for line in failures:
            print(line, file=sys.stderr)
        print(f"{len(names)} items checked, {len(failures)} problems")
        return 1 if failures else 0
    stale = sorted({p.relative_to(ROOT).as_posix()[:-3] for p in ROOT.rglob("*.pt")} - set(ITEMS))
    for name in stale:
        (ROOT / f"{name}.pt").unlink()
        print(f"removed stale {name}.pt")
    print(f"wrote {grading.write_manifest(ROOT).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
