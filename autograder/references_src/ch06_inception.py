"""Reference items of the ch06_inception assignment (see ``autograder/make_references.py``).

The inception module is referenced by the package's ``cnnbook.layers.InceptionModule`` (with the paper's
5x5 third branch), the costs by ``cnnbook.calc.costs``, and the training step by a float64 run of the
notebook's own ``TinyGoogLeNet`` (its class is read from the solution notebook's locked cell, so that the
network the grader trains is the one the student sees) with PyTorch's cross-entropy and SGD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import torch
from torch import Tensor, nn

from ._common import case, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch06_inception")

# What the student's cells may not use: the package's reference blocks, models, costs and training loop,
# and torchvision's GoogLeNet.
_FORBIDDEN = ["cnnbook.layers", "cnnbook.models", "cnnbook.calc", "cnnbook.train", "torchvision"]
_NOTEBOOK = Path(__file__).resolve().parents[2] / "solutions" / "ch06_inception" / "inception.ipynb"
AUX_WEIGHT = 0.3  # Szegedy et al. (2014): the auxiliary losses are added with weight 0.3


def _inception_mult_adds_cases(configs: list[tuple[int, int, int, tuple[int, ...]]]) -> list[dict[str, Any]]:
    from cnnbook.calc.costs import inception_cost

    cases = []
    for c_in, h, w, ch in configs:
        c1, r3, c3, r5, c5, pp = ch
        branches = [[(1, c1)], [(1, r3), (3, c3)], [(1, r5), (5, c5)], ["pool", (1, pp)]]
        cases.append(case(f"in_channels={c_in}, {h}x{w}, channels {ch}", args=[c_in, h, w, *ch],
                          expected=inception_cost(c_in, h, w, branches).mult_adds))
    return cases


@item("ch06_inception/inception_mult_adds_visible")
def _() -> dict[str, Any]:
    return {"title": "inception_mult_adds (visible)", "forbidden": _FORBIDDEN,
            "cases": _inception_mult_adds_cases([(192, 28, 28, (64, 96, 128, 16, 32, 32))])}


@item("ch06_inception/inception_mult_adds")
def _() -> dict[str, Any]:
    return {"title": "inception_mult_adds", "forbidden": _FORBIDDEN,
            "cases": _inception_mult_adds_cases([(256, 28, 28, (128, 128, 192, 32, 96, 64)),
                                                 (832, 7, 7, (384, 192, 384, 48, 128, 128)),
                                                 (10, 5, 6, (1, 2, 3, 4, 5, 6)), (3, 4, 9, (2, 1, 1, 5, 7, 3))])}


def _inception_cases(configs: list[tuple[int, tuple[int, ...], int]]) -> list[dict[str, Any]]:
    from cnnbook.layers import InceptionModule

    cases = []
    for c_in, ch, hw in configs:
        block = f64(InceptionModule(c_in, *ch, branch3_kernel=5))
        randomise_bn(block)
        start = state(block)
        steps = []
        for mode in ("eval", "train"):
            x = randn(2, c_in, hw, hw)
            block.train(mode == "train")
            steps.append({"mode": mode, "args": [x], "expected": block(x)})
        names = ["in_channels", "ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj"]
        cases.append(case(f"Inception{(c_in, *ch)}, input {(2, c_in, hw, hw)}", init_kwargs=dict(zip(names, (c_in, *ch))),
                          state_dict=start, optional_state=["num_batches_tracked"], steps=steps))
    return cases



@item("ch06_inception/inception_module_visible")
def _() -> dict[str, Any]:
    return {"title": "Inception (visible)", "forbidden": _FORBIDDEN,
            "cases": _inception_cases([(6, (2, 3, 4, 1, 2, 2), 5)])}


@item("ch06_inception/inception_module")
def _() -> dict[str, Any]:
    return {"title": "Inception", "forbidden": _FORBIDDEN,
            "cases": _inception_cases([(192, (64, 96, 128, 16, 32, 32), 8), (12, (4, 6, 8, 2, 4, 3), 7),
                                       (5, (1, 2, 3, 1, 2, 4), 3)])}


def _loss(outputs: Any, targets: Tensor) -> Tensor:
    if isinstance(outputs, Tensor):
        return nn.functional.cross_entropy(outputs, targets)
    logits, aux1, aux2 = outputs
    ce = nn.functional.cross_entropy
    return ce(logits, targets) + AUX_WEIGHT * (ce(aux1, targets) + ce(aux2, targets))


def _loss_cases(configs: list[tuple[int, int, bool]]) -> list[dict[str, Any]]:
    cases = []
    for n, k, training in configs:
        targets = torch.randint(0, k, (n,))
        heads = [randn(n, k) * 2 for _ in range(3)]
        outputs = tuple(heads) if training else heads[0]
        label = "training: (logits, aux1, aux2)" if training else "evaluation: logits only"
        cases.append(case(f"{label}, {n} examples, {k} classes", args=[outputs, targets],
                          expected=_loss(outputs, targets)))
    return cases


@item("ch06_inception/googlenet_loss_visible")
def _() -> dict[str, Any]:
    return {"title": "googlenet_loss (visible)", "forbidden": _FORBIDDEN,
            "cases": _loss_cases([(4, 3, True), (4, 3, False)])}


@item("ch06_inception/googlenet_loss")
def _() -> dict[str, Any]:
    return {"title": "googlenet_loss", "forbidden": _FORBIDDEN,
            "cases": _loss_cases([(8, 10, True), (5, 4, True), (6, 10, False), (1, 2, True)])}


def tiny_googlenet_class() -> type[nn.Module]:
    """The class defined in the notebook's locked cell "tiny_googlenet" (the notebook is its one source)."""
    cells = [c for c in nbformat.read(_NOTEBOOK, as_version=4).cells
             if c.metadata.get("nbgrader", {}).get("grade_id") == "tiny_googlenet"]
    if len(cells) != 1:
        raise AssertionError(f"{_NOTEBOOK} must have one cell with grade id 'tiny_googlenet'")
    namespace: dict[str, Any] = {"torch": torch, "nn": nn}
    exec(compile(cells[0].source, f"{_NOTEBOOK.name}:tiny_googlenet", "exec"), namespace)  # noqa: S102
    return namespace["TinyGoogLeNet"]


def _train_cases(configs: list[tuple[int, int, float, float, int]]) -> list[dict[str, Any]]:
    net = tiny_googlenet_class()
    cases = []
    for n, k, lr, momentum, steps in configs:
        model = f64(net(num_classes=k))
        randomise_bn(model)
        start = state(model)
        images, labels = randn(n, 1, 12, 12), torch.randint(0, k, (n,))
        optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        losses = []
        with torch.enable_grad():
            for _ in range(steps):
                model.train()
                optimiser.zero_grad()
                loss = _loss(model(images), labels)
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
        cases.append(case(f"TinyGoogLeNet(num_classes={k}), {n} images, SGD(lr={lr}, momentum={momentum}), "
                          f"{steps} steps", args=[start, images, labels], kwargs={"lr": lr, "momentum": momentum,
                                                                                 "steps": steps},
                          expected=(torch.tensor(losses, dtype=torch.float64), state(model)),
                          output_names=["losses", "state_dict"]))
    return cases


@item("ch06_inception/train_step_visible")
def _() -> dict[str, Any]:
    return {"title": "train_step (visible)", "forbidden": _FORBIDDEN, "cases": _train_cases([(6, 5, 0.1, 0.0, 1)])}


@item("ch06_inception/train_step")
def _() -> dict[str, Any]:
    return {"title": "train_step", "forbidden": _FORBIDDEN,
            "cases": _train_cases([(8, 5, 0.1, 0.9, 3), (4, 3, 0.05, 0.0, 2), (10, 10, 0.2, 0.5, 3)])}
