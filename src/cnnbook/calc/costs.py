"""Closed-form parameter and mult-add counts of convolutions, separable convolutions and inception blocks.

One mult-add is one multiplication followed by one addition (a fused multiply-accumulate), the unit of
the MobileNet paper (Howard et al. 2017, *MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications*) and of the lectures' "FLOPs" columns. Bias additions, normalisation,
activations and pooling are not counted, as in the papers. Notation of the MobileNet paper: a ``K x K``
kernel, ``M`` input channels, ``N`` output channels, a ``D x D`` output.

- standard convolution: ``K*K*M*N`` parameters, ``K*K*M*N*D*D`` mult-adds;
- depthwise separable convolution (a ``K x K`` depthwise then a 1x1 pointwise convolution):
  ``K*K*M + M*N`` parameters, ``K*K*M*D*D + M*N*D*D`` mult-adds, so the ratio to the standard
  convolution is ``1/N + 1/K**2`` (:func:`separable_ratio`).

The inception block (Szegedy et al. 2014, *Going Deeper with Convolutions*) is described as data: a list
of branches, each a list of layers applied in order, a layer being ``(kernel, out_channels)`` for a
convolution (stride 1, "same" padding) or ``"pool"`` for the stride-1 max-pooling that keeps the size.
No torch needed here: these are the formulas the chapters derive, tested against PyTorch's own counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

__all__ = [
    "Cost",
    "conv_cost",
    "standard_conv_cost",
    "depthwise_conv_cost",
    "pointwise_conv_cost",
    "separable_conv_cost",
    "separable_ratio",
    "linear_cost",
    "InceptionLayer",
    "inception_cost",
    "inception_branch_costs",
    "inception_out_channels",
    "GOOGLENET_INCEPTION_3A",
]


@dataclass(frozen=True)
class Cost:
    """Parameters and mult-adds of a layer or a block; costs add up with ``+`` and ``sum``."""

    params: int
    mult_adds: int

    def __add__(self, other: "Cost") -> "Cost":
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(self.params + other.params, self.mult_adds + other.mult_adds)

    def __radd__(self, other: object) -> "Cost":  # lets sum([...]) start from 0
        if other == 0:
            return self
        return NotImplemented

    def __mul__(self, times: int) -> "Cost":  # a block repeated ``times`` times
        return Cost(self.params * times, self.mult_adds * times)

    __rmul__ = __mul__

    def ratio_to(self, other: "Cost") -> tuple[float, float]:
        """``(params / other.params, mult_adds / other.mult_adds)``."""
        return self.params / other.params, self.mult_adds / other.mult_adds


def _check(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def _kernel(k: int | tuple[int, int]) -> tuple[int, int]:
    kh, kw = (k, k) if isinstance(k, int) else k
    _check(kernel_height=kh, kernel_width=kw)
    return kh, kw


def conv_cost(
    k: int | tuple[int, int],
    c_in: int,
    c_out: int,
    h_out: int,
    w_out: int,
    groups: int = 1,
    bias: bool = False,
) -> Cost:
    """Any ``nn.Conv2d``: ``kh*kw*(c_in/groups)*c_out`` weights, each used once per output position.

    ``groups=1`` is a standard convolution, ``groups=c_in=c_out`` a depthwise one, and the grouped
    convolutions of AlexNet (2 groups) and ResNeXt (32 groups) lie in between.
    """
    kh, kw = _kernel(k)
    _check(c_in=c_in, c_out=c_out, h_out=h_out, w_out=w_out, groups=groups)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}.")
    weights = kh * kw * (c_in // groups) * c_out
    return Cost(weights + (c_out if bias else 0), weights * h_out * w_out)


def standard_conv_cost(k: int, c_in: int, c_out: int, h_out: int, w_out: int, bias: bool = False) -> Cost:
    """``K*K*M*N`` parameters and ``K*K*M*N*D*D`` mult-adds (plus ``N`` bias parameters if ``bias``)."""
    return conv_cost(k, c_in, c_out, h_out, w_out, bias=bias)


def depthwise_conv_cost(k: int, channels: int, h_out: int, w_out: int, bias: bool = False) -> Cost:
    """One ``K x K`` filter per input channel: ``K*K*M`` parameters, ``K*K*M*D*D`` mult-adds."""
    return conv_cost(k, channels, channels, h_out, w_out, groups=channels, bias=bias)


def pointwise_conv_cost(c_in: int, c_out: int, h_out: int, w_out: int, bias: bool = False) -> Cost:
    """A 1x1 convolution: ``M*N`` parameters, ``M*N*D*D`` mult-adds."""
    return conv_cost(1, c_in, c_out, h_out, w_out, bias=bias)


def separable_conv_cost(k: int, c_in: int, c_out: int, h_out: int, w_out: int, bias: bool = False) -> Cost:
    """Depthwise ``K x K`` then pointwise 1x1: ``K*K*M + M*N`` parameters, ``K*K*M*D*D + M*N*D*D`` mult-adds.

    The lecture's example (6x6x3 input, 3x3 kernels, 5 filters, 4x4 output) costs 432 + 240 = 672
    mult-adds instead of 2160.
    """
    return depthwise_conv_cost(k, c_in, h_out, w_out, bias) + pointwise_conv_cost(c_in, c_out, h_out, w_out, bias)


def separable_ratio(k: int, n: int) -> float:
    """Separable / standard mult-adds (and parameters, without bias): ``1/N + 1/K**2``.

    ``separable_ratio(3, 5) = 0.311`` (672 / 2160); ``separable_ratio(3, 512) = 0.113``, about 9x cheaper.
    """
    _check(k=k, n=n)
    return 1 / n + 1 / k**2


def linear_cost(in_features: int, out_features: int, bias: bool = True) -> Cost:
    """A fully connected layer: ``in*out`` weights (plus ``out`` biases) and ``in*out`` mult-adds."""
    _check(in_features=in_features, out_features=out_features)
    weights = in_features * out_features
    return Cost(weights + (out_features if bias else 0), weights)


# A layer of an inception branch: (kernel, out_channels) for a convolution, "pool" for the 3x3/1 max-pool.
InceptionLayer = Union[tuple[int, int], str]

# GoogLeNet's first inception block (3a): 192 channels in, 64 + 128 + 32 + 32 = 256 out, at 28x28.
GOOGLENET_INCEPTION_3A: list[list[InceptionLayer]] = [
    [(1, 64)],               # 1x1
    [(1, 96), (3, 128)],     # 1x1 reduce, then 3x3
    [(1, 16), (5, 32)],      # 1x1 reduce, then 5x5
    ["pool", (1, 32)],       # 3x3 max-pool, then 1x1 projection
]


def _branch_cost(c_in: int, h: int, w: int, branch: Sequence[InceptionLayer], bias: bool) -> tuple[Cost, int]:
    if not any(isinstance(layer, tuple) for layer in branch):
        raise ValueError(f"A branch needs at least one (kernel, out_channels) convolution; got {list(branch)!r}.")
    cost, channels = Cost(0, 0), c_in
    for layer in branch:
        if layer == "pool":
            continue  # a stride-1 pooling keeps channels and size and has no parameters or mult-adds
        if not (isinstance(layer, tuple) and len(layer) == 2):
            raise ValueError(f'A branch layer is (kernel, out_channels) or "pool"; got {layer!r}.')
        k, c_out = layer
        cost = cost + conv_cost(k, channels, c_out, h, w, bias=bias)
        channels = c_out
    return cost, channels


def inception_branch_costs(
    c_in: int, h: int, w: int, branches: Sequence[Sequence[InceptionLayer]], bias: bool = False
) -> list[Cost]:
    """The cost of each branch of an inception block, in order (see :func:`inception_cost`)."""
    _check(c_in=c_in, h=h, w=w)
    return [_branch_cost(c_in, h, w, branch, bias)[0] for branch in branches]


def inception_out_channels(c_in: int, branches: Sequence[Sequence[InceptionLayer]]) -> int:
    """Channels of the concatenated output: the sum of each branch's last convolution."""
    return sum(_branch_cost(c_in, 1, 1, branch, False)[1] for branch in branches)


def inception_cost(
    c_in: int, h: int, w: int, branches: Sequence[Sequence[InceptionLayer]] = GOOGLENET_INCEPTION_3A, bias: bool = False
) -> Cost:
    """Parameters and mult-adds of an inception block on a ``c_in x h x w`` input (branches keep ``h x w``).

    Each branch costs ``h*w*sum(k**2 * c_prev * c_out)`` over its convolutions, ``c_prev`` being the
    channels entering each one (``c_in`` for the first, the 1x1 reduction's output for the next).
    GoogLeNet's block 3a (the default) at 28x28: 163,328 parameters and 128M mult-adds, against
    0.44M / 346M for one 3x3 convolution and 1.23M / 963M for one 5x5 convolution from 192 to 256 channels.
    """
    return sum(inception_branch_costs(c_in, h, w, branches, bias), Cost(0, 0))
