"""Local response normalisation (Krizhevsky, Sutskever, Hinton 2012, section 3.3), as AlexNet used it.

Each activation is divided by a power of the energy of its neighbours *across channels* at the same
pixel, a form of "lateral inhibition": a strongly responding kernel map damps the maps next to it.
For channel ``i`` of ``C`` channels, with ``a`` the ReLU output and ``b`` the normalised output,

    b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n/2)}^{min(C - 1, i + n/2)} a[j]^2) ** beta

with the paper's values k = 2, n = 5, alpha = 1e-4, beta = 0.75. The paper reports that it lowered
top-1/top-5 error by 1.4%/1.2%; later networks (VGG found no gain with it) dropped it for batch
normalisation, which is why the torchvision AlexNet has none.

Two conventions for alpha. The paper multiplies the *sum* of squares by alpha. PyTorch's
``nn.LocalResponseNorm`` (like Caffe's LRN layer) multiplies the *mean* of the ``n`` squares, that is
``alpha / n`` times the sum. The same normalisation therefore needs ``alpha_torch = n * alpha_paper``:
the paper's alpha = 1e-4 with n = 5 is ``nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)``.
(Caffe's reference AlexNet writes alpha = 1e-4 in its own convention, so it normalises 5 times more
weakly than the paper.) :class:`LocalResponseNorm` below takes alpha in the paper's convention.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["LocalResponseNorm"]


class LocalResponseNorm(nn.Module):
    """Normalise each channel by the squared activations of its ``size`` neighbouring channels.

    Krizhevsky et al. 2012 apply it after the ReLU of conv1 and conv2. The computation is the one of
    ``torch.nn.functional.local_response_norm`` (same operations, same speed), written out so that it
    reads as the formula in the module docstring.

    Args:
        size: ``n``, the number of adjacent channels summed over (centred on the channel itself).
        alpha: scale of the sum of squares, **in the paper's convention** (PyTorch's is ``size`` times larger).
        beta: exponent.
        k: additive constant; it keeps the denominator away from zero.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> None:
        super().__init__()
        if not (isinstance(size, int) and size > 0):
            raise ValueError(f"size must be a positive number of channels; got {size!r}.")
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0; got alpha={alpha!r}, beta={beta!r}.")
        if not k > 0:
            raise ValueError(f"k must be > 0 (it keeps the denominator away from zero); got {k!r}.")
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    @property
    def torch_alpha(self) -> float:
        """The same alpha in the convention of PyTorch and Caffe, as in ``nn.LocalResponseNorm(size, torch_alpha, beta, k)``."""
        return self.alpha * self.size

    def forward(self, x: Tensor) -> Tensor:  # N x C x H x W -> N x C x H x W
        if x.dim() != 4:
            raise ValueError(f"LocalResponseNorm expects an N x C x H x W tensor; got shape {tuple(x.shape)}.")
        n = self.size
        squares = (x * x).unsqueeze(1)  # N x 1 x C x H x W: the channels become a depth axis
        # Zero "channels" beyond the first and the last, so the window of n channels fits everywhere.
        squares = F.pad(squares, (0, 0, 0, 0, n // 2, (n - 1) // 2))  # N x 1 x (C + n - 1) x H x W
        # A window of n channels by 1 x 1 pixels, summed (divisor 1) rather than averaged.
        sums = F.avg_pool3d(squares, (n, 1, 1), stride=1, divisor_override=1).squeeze(1)  # N x C x H x W
        return x / (self.k + self.alpha * sums).pow(self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha} (paper convention), beta={self.beta}, k={self.k}"
