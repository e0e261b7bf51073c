"""Stochastic depth (Huang et al. 2016, Deep Networks with Stochastic Depth).

In training, each sample skips a residual branch with probability ``p``: the branch output is
multiplied by 0 (dropped) or by ``1 / (1 - p)`` (kept, rescaled so its expected value is unchanged).
In evaluation the branch is always kept and not rescaled. EfficientNet and ConvNeXt use it, with ``p``
growing linearly with depth. Same behaviour as ``torchvision.ops.StochasticDepth``; it has no weights.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["StochasticDepth"]


class StochasticDepth(nn.Module):
    """Drop whole samples ("row") or the whole batch ("batch") of a residual branch with probability ``p``."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is the drop probability, in [0, 1]; got {p!r}.")
        if mode not in ("row", "batch"):
            raise ValueError(f"mode must be 'row' (per sample) or 'batch' (all samples at once); got {mode!r}.")
        self.p = p
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = x.new_empty(size).bernoulli_(survival)  # 1 = keep the branch for this sample
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"
