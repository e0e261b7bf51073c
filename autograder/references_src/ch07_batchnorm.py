"""Reference items of the ch07_batchnorm assignment (see ``autograder/make_references.py``).

PyTorch's ``batch_norm`` (float64) is the reference for the forward passes and the module, and autograd
through it for the backward pass. Every item has a ``_visible`` twin on other inputs, which the notebook's
test cells check in front of the student with the same messages.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._common import case, f32, f64, rand, randn, registry

ITEMS, item = registry("ch07_batchnorm")

# What the student's cells may not use: PyTorch's batch norm in any form, and autograd for the backward pass.
_BATCH_NORM = ["torch.nn.functional.batch_norm", "torch.batch_norm", "torch.native_batch_norm",
               "torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d", "torch.nn.modules.batchnorm",
               "cnnbook.layers"]
_AUTOGRAD = ["torch.autograd", "torch.func"]

# Small batches (m = N*H*W as low as 6) make the unbiased running-variance update clearly different
# from the biased one (m / (m - 1) = 1.2), and inputs with a non-zero mean and scale catch a missing step.
_BN_SHAPES = [(4, 3, 5, 5), (2, 6, 3, 1), (6, 4), (3, 2, 2, 1), (8, 5, 1, 1)]
_VISIBLE_SHAPES = [(5, 2, 3, 3), (7, 3)]


def _bn_input(shape: tuple[int, ...]) -> Tensor:
    c = shape[1]
    centre = randn(c) * 3
    spread = rand(c) * 2 + 0.5
    view = [1, c] + [1] * (len(shape) - 2)
    return f32(centre.reshape(view) + spread.reshape(view) * randn(*shape))


def _bn_params(c: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return f32(randn(c) * 0.5 + 1), randn(c) * 0.5, randn(c), f32(rand(c) + 0.5)


def _train_cases(shapes: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    cases = []
    for shape, momentum, eps in zip(shapes, (0.1, 0.3, 0.1, 0.5, 0.01), (1e-5, 1e-3, 1e-5, 0.1, 1e-5)):
        x = _bn_input(shape)
        gamma, beta, mean, var = _bn_params(shape[1])
        new_mean, new_var = mean.clone(), var.clone()
        y = nn.functional.batch_norm(x, new_mean, new_var, gamma, beta, training=True, momentum=momentum, eps=eps)
        cases.append(case(f"input {shape}, momentum={momentum}, eps={eps}",
                          args=[x, gamma, beta, mean, var], kwargs={"momentum": momentum, "eps": eps},
                          expected=(y, new_mean, new_var), output_names=["y", "new_running_mean", "new_running_var"]))
    return cases


@item("ch07_batchnorm/batchnorm_train")
def _() -> dict[str, Any]:
    return {"title": "batchnorm_train", "cases": _train_cases(_BN_SHAPES), "forbidden": _BATCH_NORM}


@item("ch07_batchnorm/batchnorm_train_visible")
def _() -> dict[str, Any]:
    return {"title": "batchnorm_train (visible)", "cases": _train_cases(_VISIBLE_SHAPES), "forbidden": _BATCH_NORM}


def _eval_cases(shapes: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    cases = []
    for shape, eps in zip(shapes, (1e-5, 1e-3, 1e-5, 0.1, 1e-5)):
        x = _bn_input(shape)
        gamma, beta, mean, var = _bn_params(shape[1])
        y = nn.functional.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)
        cases.append(case(f"input {shape}, eps={eps}", args=[x, gamma, beta, mean, var], kwargs={"eps": eps},
                          expected=y))
    return cases


@item("ch07_batchnorm/batchnorm_eval")
def _() -> dict[str, Any]:
    return {"title": "batchnorm_eval", "cases": _eval_cases(_BN_SHAPES), "forbidden": _BATCH_NORM}


@item("ch07_batchnorm/batchnorm_eval_visible")
def _() -> dict[str, Any]:
    return {"title": "batchnorm_eval (visible)", "cases": _eval_cases(_VISIBLE_SHAPES), "forbidden": _BATCH_NORM}


def _backward_cases(shapes: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    cases = []
    for shape, eps in zip(shapes, (1e-5, 1e-3, 1e-5, 0.1, 1e-5)):
        x = _bn_input(shape)
        gamma, beta, _, _ = _bn_params(shape[1])
        dout = randn(*shape)
        with torch.enable_grad():
            xg, gg, bg = (t.clone().requires_grad_() for t in (x, gamma, beta))
            y = nn.functional.batch_norm(xg, None, None, gg, bg, training=True, eps=eps)
            dx, dgamma, dbeta = torch.autograd.grad(y, (xg, gg, bg), dout)
        cases.append(case(f"input {shape}, eps={eps}", args=[dout, x, gamma, beta], kwargs={"eps": eps},
                          expected=(dx, dgamma, dbeta), output_names=["dx", "dgamma", "dbeta"]))
    return cases


@item("ch07_batchnorm/batchnorm_backward")
def _() -> dict[str, Any]:
    return {"title": "batchnorm_backward", "cases": _backward_cases(_BN_SHAPES),
            "forbidden": _BATCH_NORM + _AUTOGRAD}


@item("ch07_batchnorm/batchnorm_backward_visible")
def _() -> dict[str, Any]:
    return {"title": "batchnorm_backward (visible)", "cases": _backward_cases(_VISIBLE_SHAPES),
            "forbidden": _BATCH_NORM + _AUTOGRAD}


def _module_cases(configs: list[tuple[int, float, float, tuple[int, ...]]]) -> list[dict[str, Any]]:
    cases = []
    for c, eps, momentum, shape in configs:
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
    return cases


@item("ch07_batchnorm/batchnorm_module")
def _() -> dict[str, Any]:
    return {"title": "BatchNorm2d", "forbidden": _BATCH_NORM,
            "cases": _module_cases([(3, 1e-5, 0.1, (4, 3, 5, 5)), (5, 1e-3, 0.3, (2, 5, 3, 2))])}


@item("ch07_batchnorm/batchnorm_module_visible")
def _() -> dict[str, Any]:
    return {"title": "BatchNorm2d (visible)", "forbidden": _BATCH_NORM,
            "cases": _module_cases([(2, 1e-5, 0.1, (3, 2, 4, 4))])}
