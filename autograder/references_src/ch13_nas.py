"""Reference items of the ch13_nas assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnbook.nas.darts import MixedOp  # the reference DARTS edge, MixedOp(channels, ops)

from ._common import case, f32, f64, randn, randomise_bn, registry, state

ITEMS, item = registry("ch13_nas")


_FORBIDDEN = ["cnnbook.nas.darts"]  # the package's DARTS edge, which Part 1 rebuilds


def _mixed_op_cases(configs: list[tuple[int, list[str], int]]) -> list[dict[str, Any]]:
    cases = []
    for c, names, hw in configs:
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
    return cases


@item("ch13_nas/mixed_op_visible")
def _() -> dict[str, Any]:
    return {"title": "MixedOp (visible)", "forbidden": _FORBIDDEN,
            "cases": _mixed_op_cases([(3, ["conv3x3", "skip", "sep_conv3x3"], 4)])}


@item("ch13_nas/mixed_op")
def _() -> dict[str, Any]:
    return {"title": "MixedOp", "forbidden": _FORBIDDEN,
            "cases": _mixed_op_cases([(6, ["none", "skip", "max_pool3x3", "conv3x3", "conv5x5", "sep_conv3x3"], 5),
                                      (4, ["conv3x3", "skip"], 6), (8, ["sep_conv3x3", "none", "max_pool3x3"], 4)])}


class _Supernet(nn.Module):
    """The exercise's ``Supernet`` (stem, one DARTS edge, pooling, classifier) on the package's MixedOp."""

    def __init__(self, in_channels: int, channels: int, ops: list[str], num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.edge = MixedOp(channels, ops)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        x = torch.relu(self.stem(x))
        return self.fc(self.edge(x, weights).mean(dim=(2, 3)))


def _search(net: nn.Module, alpha: Tensor, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
            rounds: int) -> dict[str, Any]:
    """First-order DARTS: alpha (Adam) on the validation batch, then w (SGD, momentum) on the training batch."""
    alpha = alpha.clone().requires_grad_()
    w_opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    a_opt = torch.optim.Adam([alpha], lr=0.03, betas=(0.5, 0.999))
    losses = []
    net.train()
    with torch.enable_grad():
        for _ in range(rounds):
            a_opt.zero_grad()
            val_loss = nn.functional.cross_entropy(net(val[0], torch.softmax(alpha, 0)), val[1])
            val_loss.backward()
            a_opt.step()
            w_opt.zero_grad()
            train_loss = nn.functional.cross_entropy(net(train[0], torch.softmax(alpha, 0).detach()), train[1])
            train_loss.backward()
            w_opt.step()
            losses.append([val_loss.item(), train_loss.item()])
    return {"losses": torch.tensor(losses, dtype=torch.float64), "alpha": alpha.detach().clone(),
            "weights": {n: p.detach().clone() for n, p in net.named_parameters()}}


def _search_case(c_in: int, channels: int, ops: list[str], classes: int, batch: int, hw: int,
                 rounds: int) -> dict[str, Any]:
    net = f64(_Supernet(c_in, channels, ops, classes))
    randomise_bn(net)
    start = state(net)
    alpha = f32(randn(len(ops)) * 0.5)
    train = (randn(batch, c_in, hw, hw), torch.randint(0, classes, (batch,)))
    val = (randn(batch, c_in, hw, hw), torch.randint(0, classes, (batch,)))
    expected = _search(net, alpha, train, val, rounds)
    return case(f"Supernet({c_in}, {channels}, {ops}, {classes}), batches of {batch} x {hw}x{hw}, {rounds} rounds",
                args=[start, ops, alpha, train, val, rounds], expected=expected)


@item("ch13_nas/darts_round_visible")
def _() -> dict[str, Any]:
    return {"title": "darts_round (visible)",
            "cases": [_search_case(1, 4, ["none", "skip", "conv3x3", "max_pool3x3"], 3, 6, 6, 2)]}


@item("ch13_nas/darts_round")
def _() -> dict[str, Any]:
    return {"title": "darts_round",
            "cases": [_search_case(3, 6, ["none", "skip", "max_pool3x3", "conv3x3", "sep_conv3x3"], 4, 8, 6, 2),
                      _search_case(1, 4, ["conv5x5", "skip", "none"], 5, 5, 7, 3)]}


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
