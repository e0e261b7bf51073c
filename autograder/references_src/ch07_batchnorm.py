"""Reference items of the ch07_batchnorm assignment (see ``autograder/make_references.py``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ._common import case, f32, f64, rand, randn, registry

ITEMS, item = registry("ch07_batchnorm")


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
