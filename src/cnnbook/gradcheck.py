"""Gradient checking for hand-written backward passes (the CS231n recipe).

A backward pass receives ``dout``, the gradient of some loss with respect to the forward output, and
returns the gradient with respect to each input. Any loss will do for checking it, so we pick
``L = sum(f(x) * dout)`` for a fixed random ``dout``: its gradient with respect to the output is exactly
``dout``, and its gradient with respect to an input ``x`` is what the backward pass must return.

``numerical_gradient`` estimates that gradient by central differences, one element at a time, in
float64 (in float32 the rounding error of ``f`` swamps the difference quotient):

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2 h)

``relative_error`` compares two gradients the way CS231n does, ``max |a - b| / max(|a| + |b|, tiny)``
element by element, so it means the same for large and small gradients. In float64 a correct backward
pass gives about 1e-7 or less; an error above 1e-4 is almost always a bug (a kink such as a ReLU or a
max with ties near ``x`` can raise a correct pass's error, so draw inputs away from kinks).

``check_gradients`` runs both and prints one line per input::

    >>> check_gradients(f, {"x": x, "w": w}, dout, {"x": dx, "w": dw})
    max relative error dx: 3.1e-10
    max relative error dw: 8.7e-11
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["numerical_gradient", "relative_error", "check_gradients"]

_TINY = 1e-12  # keeps the relative error defined where both gradients are zero


def _as_float64(value: Tensor, what: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{what} has dtype {value.dtype}: gradients exist only for floating-point tensors; "
                        f"pass it as .double()")
    return value.detach().to("cpu", torch.float64).clone()


def _loss(f: Callable[..., Tensor], inputs: Sequence[Tensor], dout: Tensor) -> float:
    out = f(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"f must return one tensor, got {type(out).__name__}; wrap f to return the output "
                        f"whose gradient you check")
    if out.shape != dout.shape:
        raise ValueError(f"dout has shape {tuple(dout.shape)} but f returns shape {tuple(out.shape)}: "
                         f"draw dout with the output's shape")
    return float((out.detach().to("cpu", torch.float64) * dout).sum())


def numerical_gradient(f: Callable[..., Tensor], inputs: Sequence[Tensor], dout: Tensor,
                       h: float = 1e-6) -> list[Tensor]:
    """Central-difference gradient of ``sum(f(*inputs) * dout)`` with respect to each input, in float64.

    ``f`` is called with float64 CPU copies of ``inputs`` (never the caller's tensors), 2 * numel times
    per input, so keep the inputs small (a few hundred elements).
    """
    if h <= 0:
        raise ValueError(f"h must be positive, got {h}; 1e-6 suits float64")
    xs = [_as_float64(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
    d = _as_float64(dout, "dout")
    grads = []
    for x in xs:
        grad = torch.zeros_like(x)
        flat, flat_grad = x.view(-1), grad.view(-1)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + h
            plus = _loss(f, xs, d)
            flat[i] = old - h
            minus = _loss(f, xs, d)
            flat[i] = old
            flat_grad[i] = (plus - minus) / (2 * h)
        grads.append(grad)
    return grads


def relative_error(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max(|a| + |b|, 1e-12)`` over the elements; 0.0 for two empty tensors."""
    a64, b64 = _as_float64(a, "a"), _as_float64(b, "b")
    if a64.shape != b64.shape:
        raise ValueError(f"cannot compare gradients of shapes {tuple(a64.shape)} and {tuple(b64.shape)}: "
                         f"a gradient has the shape of its input")
    if a64.numel() == 0:
        return 0.0
    return float(((a64 - b64).abs() / (a64.abs() + b64.abs()).clamp_min(_TINY)).max())


def check_gradients(f: Callable[..., Tensor], inputs: Mapping[str, Tensor], dout: Tensor,
                    analytic: Mapping[str, Tensor], h: float = 1e-6,
                    tolerance: float | None = None) -> dict[str, float]:
    """Compare hand-written gradients with numerical ones; print and return the error per input.

    ``f`` takes the inputs positionally, in the order of ``inputs`` (name -> tensor). ``analytic`` maps
    some or all of those names to the gradients your backward pass returned for the same inputs and
    ``dout``. Prints ``max relative error d<name>: <error>`` for each. With ``tolerance``, raises
    AssertionError naming every input whose error exceeds it.
    """
    unknown = sorted(set(analytic) - set(inputs))
    if unknown:
        raise KeyError(f"analytic gradients {unknown} name no input; the inputs are {list(inputs)}")
    if not analytic:
        raise ValueError("analytic is empty: pass the gradients your backward pass returned, by input name")
    numeric = dict(zip(inputs, numerical_gradient(f, list(inputs.values()), dout, h)))
    errors = {}
    for name, grad in analytic.items():
        errors[name] = relative_error(grad, numeric[name])
        print(f"max relative error d{name}: {errors[name]:.2e}")
    if tolerance is not None:
        bad = [f"d{n} ({e:.2e})" for n, e in errors.items() if not e <= tolerance]
        if bad:
            raise AssertionError(f"relative error above {tolerance:.0e} for {', '.join(bad)}: "
                                 f"the backward pass disagrees with the numerical gradient")
    return errors
