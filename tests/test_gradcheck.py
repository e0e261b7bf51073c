"""cnnbook.gradcheck: the numerical gradient students check their backward passes against."""

from __future__ import annotations

import pytest
import torch

from cnnbook.gradcheck import check_gradients, numerical_gradient, relative_error


def _affine(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x @ w)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    w = torch.randn(4, 5, generator=g, dtype=torch.float64)
    dout = torch.randn(3, 5, generator=g, dtype=torch.float64)
    return x, w, dout


def _autograd(x: torch.Tensor, w: torch.Tensor, dout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    _affine(x, w).backward(dout)
    return x.grad, w.grad


def test_numerical_gradient_matches_autograd_for_every_input() -> None:
    x, w, dout = _inputs()
    dx, dw = numerical_gradient(_affine, [x, w], dout)
    ax, aw = _autograd(x, w, dout)
    assert torch.allclose(dx, ax, rtol=1e-7, atol=1e-9)
    assert torch.allclose(dw, aw, rtol=1e-7, atol=1e-9)


def test_numerical_gradient_works_in_float64_on_copies() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32)
    seen = []

    def f(t: torch.Tensor) -> torch.Tensor:
        seen.append(t.dtype)
        return t ** 3

    (grad,) = numerical_gradient(f, [x], torch.ones(3))
    assert set(seen) == {torch.float64}
    assert torch.equal(x, torch.tensor([1.0, 2.0, 3.0]))  # the caller's tensor is untouched
    assert torch.allclose(grad, 3 * x.double() ** 2, rtol=1e-8)


def test_relative_error_is_scale_free_and_zero_for_equal_gradients() -> None:
    a = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    assert relative_error(a, a) == 0.0
    assert relative_error(a * 1e-6, a * 1e-6 * (1 + 1e-3)) == pytest.approx(relative_error(a, a * (1 + 1e-3)))
    assert relative_error(torch.tensor([1.0]), torch.tensor([3.0])) == pytest.approx(0.5)


def test_check_gradients_prints_one_line_per_input_and_passes_a_correct_backward(
        capsys: pytest.CaptureFixture[str]) -> None:
    x, w, dout = _inputs()
    ax, aw = _autograd(x, w, dout)
    errors = check_gradients(_affine, {"x": x, "w": w}, dout, {"x": ax, "w": aw}, tolerance=1e-7)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["max relative error dx", "max relative error dw"]
    assert max(errors.values()) < 1e-7


def test_check_gradients_catches_a_wrong_backward() -> None:
    x, w, dout = _inputs()
    ax, aw = _autograd(x, w, dout)
    wrong = aw.clone()
    wrong[0, 0] += 0.1  # one element off
    errors = check_gradients(_affine, {"x": x, "w": w}, dout, {"x": ax, "w": wrong})
    assert errors["x"] < 1e-7 < 1e-3 < errors["w"]
    with pytest.raises(AssertionError, match=r"dw \("):
        check_gradients(_affine, {"x": x, "w": w}, dout, {"w": wrong}, tolerance=1e-6)


def test_bad_input_is_named() -> None:
    x, w, dout = _inputs()
    with pytest.raises(ValueError, match="dout has shape"):
        numerical_gradient(_affine, [x, w], dout[:, :2])
    with pytest.raises(KeyError, match="name no input"):
        check_gradients(_affine, {"x": x, "w": w}, dout, {"b": x})
    with pytest.raises(TypeError, match="floating-point"):
        numerical_gradient(lambda t: t * 2.0, [torch.arange(3)], torch.ones(3))
    with pytest.raises(ValueError, match="shape of its input"):
        relative_error(x, w)
