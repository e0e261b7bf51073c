"""The environment every search method talks to: train a candidate briefly, return its reward and cost.

Real NAS papers train each candidate for many epochs on CIFAR-10 (Zoph & Le 2016 used 800 GPUs for
weeks). A course on a CPU needs a *proxy*: each candidate is trained for a couple of epochs on a small
data set, and its accuracy on held-out **validation** images is the reward. The proxy is noisy and
favours networks that learn fast, which is exactly the trade-off that cheap NAS methods make.

- :class:`NASBudget` holds the sizes of chapter 13, one preset per mode of :mod:`cnnbook.config`.
- :class:`NASData` splits a data set of :mod:`cnnbook.data` into training, validation and test images.
- :class:`Evaluator` trains an architecture with :func:`cnnbook.train.fit` and measures it; results are
  cached by architecture, so a candidate proposed twice is trained once.
- :class:`SearchHistory` records what a search did: (step, architecture, reward), for the plots.

The test images are never used during a search: only the winners are measured on them, at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ..calc.counting import count_mult_adds, count_parameters
from ..config import get_config
from ..data import DataBundle, load_dataset
from ..train import evaluate, fit, set_seed
from .space import SPACE, Arch, CellNetwork, SearchSpace

__all__ = [
    "NASBudget", "BUDGETS", "nas_budget", "NASData", "load_nas_data", "recalibrate_bn", "EvalResult",
    "Evaluator", "reward_of", "Record", "SearchHistory",
]


@dataclass(frozen=True)
class NASBudget:
    """How much every search of chapter 13 may spend; one preset per mode (``budget`` or ``full``)."""

    mode: str
    data: str              # data set name for cnnbook.data.load_dataset
    image_size: int        # side of the images every candidate sees
    channels: int          # C, the width of the first stage of every candidate
    cells_per_stage: int   # cells stacked in each of the two stages
    val_size: int          # training images held out to compute the reward (validation accuracy)
    eval_epochs: int       # epochs each candidate trains before its reward is measured
    batch_size: int        # mini-batch of candidate training and of DARTS
    lr: float              # Adam learning rate of the network weights
    evaluations: int       # candidates each discrete method (random, evolution, REINFORCE) may train
    population: int        # evolution: size of the population (the first ones are drawn at random)
    tournament: int        # evolution: candidates drawn per tournament
    darts_epochs: int      # DARTS: epochs of alternating weight / architecture steps on the super-network
    final_epochs: int      # each method's winner is retrained this long before its test accuracy is measured
    train_size: int | None = None  # training images loaded (validation included); None = the mode's default
    test_size: int | None = None   # test images loaded; None = the mode's default
    final_seeds: tuple[int, ...] = (0,)  # seeds of the winners' retraining (mean and spread over them)


BUDGETS: dict[str, NASBudget] = {
    # 2-core CPU, the whole chapter in about a minute of CPU (the book's chapters share 20 minutes): 800
    # Fashion-MNIST images at 16x16 (160 of them for validation), candidates of ~10K parameters, 20 per
    # discrete search, winners retrained 2 epochs on 3 seeds. On scikit-learn's digits every cell ended at
    # 98-99 % and the searches could not be told apart; on Fashion-MNIST small cells differ by several points.
    "budget": NASBudget(
        mode="budget", data="fashion_mnist", image_size=16, channels=8, cells_per_stage=1, val_size=160,
        eval_epochs=1, batch_size=32, lr=3e-3, evaluations=20, population=8, tournament=3,
        darts_epochs=3, final_epochs=2, train_size=800, test_size=1000, final_seeds=(0, 1, 2),
    ),
    # A GPU: CIFAR-10 (or the generated colour shapes offline), wider and deeper candidates, more of them.
    # Each search cell of the chapter stays under the book build's 10-minute limit per cell.
    "full": NASBudget(
        mode="full", data="cifar10", image_size=32, channels=16, cells_per_stage=2, val_size=5000,
        eval_epochs=1, batch_size=128, lr=3e-3, evaluations=60, population=12, tournament=4,
        darts_epochs=10, final_epochs=8, final_seeds=(0, 1, 2),  # 5 winners x 3 seeds x 8 epochs in one cell
    ),
}


def nas_budget(mode: str | None = None) -> NASBudget:
    """The preset of ``mode``, by default the mode ``cnnbook.config.get_config()`` reports (``CNNBOOK_MODE``)."""
    return BUDGETS[get_config(mode).mode]


def _stack(dataset: torch.utils.data.Dataset) -> tuple[Tensor, Tensor]:
    """Every ``(image, target)`` of ``dataset`` as two tensors (normalised images, int64 targets)."""
    images, targets = zip(*(dataset[i] for i in range(len(dataset))))  # type: ignore[arg-type]
    return torch.stack(images), torch.as_tensor(targets)


@dataclass
class NASData:
    """Training, validation and test images in memory, already normalised.

    The validation images are cut from the data set's *training* set, so that the search can compare
    candidates without ever looking at the test set.
    """

    name: str                   # the data actually used, as the loader reports it
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_size: tuple[int, int, int]  # (C, H, W)

    @classmethod
    def from_bundle(cls, bundle: DataBundle, val_size: int, seed: int = 0) -> "NASData":
        """Split ``bundle.train`` into training and ``val_size`` validation images (a fixed shuffle)."""
        x, y = _stack(bundle.train)
        if not 0 < val_size < len(x):
            raise ValueError(f"val_size must be between 1 and {len(x) - 1} (the training images); got {val_size}.")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        val, train = order[:val_size], order[val_size:]
        x_test, y_test = _stack(bundle.test)
        return cls(bundle.name, TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val]),
                   TensorDataset(x_test, y_test), bundle.num_classes, tuple(x.shape[1:]))  # type: ignore[arg-type]

    def loader(self, split: str, batch_size: int, seed: int = 0) -> DataLoader:
        """Mini-batches of ``split`` ("train" is shuffled from ``seed``; "val" and "test" are not)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test'; got {split!r}.")
        dataset = getattr(self, split)
        if split == "train":
            return DataLoader(dataset, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return DataLoader(dataset, max(batch_size, 256), shuffle=False)

    def summary(self) -> str:
        c, h, w = self.input_size
        return (f"{self.name}: {len(self.train):,} training / {len(self.val):,} validation / "
                f"{len(self.test):,} test images of {c}x{h}x{w}, {self.num_classes} classes")


def load_nas_data(budget: NASBudget | None = None) -> NASData:
    """The data of the chapter's searches: the budget's data set at its image size, split for NAS."""
    budget = budget or nas_budget()
    sizes = {key: value for key, value in (("train_size", budget.train_size), ("test_size", budget.test_size))
             if value is not None}
    bundle = load_dataset(budget.data, image_size=budget.image_size, **sizes)
    # Full mode holds out 5,000 of CIFAR-10's 50,000 images; a smaller copy of a data set (the full-mode
    # smoke test's tiny files) holds out a fifth of its images instead.
    return NASData.from_bundle(bundle, min(budget.val_size, len(bundle.train) // 5))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: DataLoader, batches: int = 4) -> None:
    """Recompute every BatchNorm's running statistics from ``batches`` training batches.

    After only a few dozen steps, BatchNorm's running averages still lag behind the weights, and a
    candidate would be judged partly on stale statistics. Averaging fresh batch statistics (momentum
    ``None`` = a plain cumulative average) removes that noise from the reward.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    device = next(model.parameters()).device
    model.train()
    for i, (x, _) in enumerate(loader):
        if i == batches:
            break
        model(x.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


@dataclass(frozen=True)
class EvalResult:
    """What the environment returns for one architecture."""

    arch: Arch
    val_acc: float             # the reward R_t
    params: int
    mult_adds: int             # per image, at the data's input size
    seconds: float             # wall time of training and measuring
    test_acc: float | None = None  # only measured for the final winners


class Evaluator:
    """Train a discrete architecture of ``space`` briefly and return its validation accuracy and cost.

    Every candidate starts from the same seed and sees the same mini-batches in the same order, so
    the comparison is fair and repeatable. Results are cached by architecture.

    Args:
        data: the split data (:class:`NASData`).
        space: the search space whose ``build`` makes the networks.
        epochs, batch_size, lr, channels, cells_per_stage: candidate training and size.
        seed: seeds initialisation and batch order.
        with_test: also measure test accuracy (only for the final winners, never during a search).
    """

    def __init__(
        self, data: NASData, space: SearchSpace = SPACE, epochs: int = 2, batch_size: int = 32, lr: float = 3e-3,
        channels: int = 8, cells_per_stage: int = 1, seed: int = 0, with_test: bool = False,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {epochs}.")
        self.data, self.space = data, space
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.channels, self.cells_per_stage, self.seed = channels, cells_per_stage, seed
        self.with_test = with_test
        self.cache: dict[Arch, EvalResult] = {}
        self.calls = 0  # requests, repeated candidates included

    @classmethod
    def from_budget(cls, data: NASData, budget: NASBudget, final: bool = False, **kwargs: object) -> "Evaluator":
        """The evaluator of a search (``final=False``) or of the final retraining of the winners."""
        epochs = budget.final_epochs if final else budget.eval_epochs
        return cls(data, epochs=epochs, batch_size=budget.batch_size, lr=budget.lr, channels=budget.channels,
                   cells_per_stage=budget.cells_per_stage, with_test=final, **kwargs)  # type: ignore[arg-type]

    @property
    def trainings(self) -> int:
        """Distinct architectures trained so far (what the search actually paid for)."""
        return len(self.cache)

    @property
    def seconds(self) -> float:
        """Wall time spent training and measuring, summed over the distinct candidates."""
        return sum(r.seconds for r in self.cache.values())

    def build(self, arch: Sequence[str]) -> CellNetwork:
        """The candidate network, freshly initialised from the evaluator's seed."""
        set_seed(self.seed)
        c_in = self.data.input_size[0]
        return self.space.build(arch, self.data.num_classes, c_in, self.channels, self.cells_per_stage)

    def __call__(self, arch: Sequence[str]) -> EvalResult:
        """Train ``arch`` (unless cached) and return its reward and cost."""
        arch = self.space.validate(arch)
        self.calls += 1
        if arch not in self.cache:
            self.cache[arch] = self._train_and_measure(arch)
        return self.cache[arch]

    def _train_and_measure(self, arch: Arch) -> EvalResult:
        start = time.perf_counter()
        model = self.build(arch)
        params = count_parameters(model)
        mult_adds = count_mult_adds(model, self.data.input_size)
        train = self.data.loader("train", self.batch_size, self.seed)
        fit(model, train, None, self.epochs, self.lr, optimizer="adam", seed=self.seed, progress=False)
        recalibrate_bn(model, train)
        _, val_acc = evaluate(model, self.data.loader("val", self.batch_size))
        test_acc = evaluate(model, self.data.loader("test", self.batch_size))[1] if self.with_test else None
        return EvalResult(arch, val_acc, params, mult_adds, time.perf_counter() - start, test_acc)


def reward_of(result: EvalResult | float) -> float:
    """The reward in what an environment returned: an :class:`EvalResult`'s validation accuracy, or a float.

    Search methods accept either, so tests can drive them with a cheap synthetic reward function.
    """
    return float(getattr(result, "val_acc", result))


@dataclass(frozen=True)
class Record:
    """One step of a search: the architecture it proposed and the reward it got."""

    step: int        # 1, 2, ... (number of candidates proposed so far)
    arch: Arch
    reward: float    # validation accuracy
    elapsed: float   # seconds since the search started, this candidate's evaluation included


@dataclass
class SearchHistory:
    """Everything a search proposed, in order, and what it cost."""

    method: str
    records: list[Record] = field(default_factory=list)
    seconds: float = 0.0     # wall time of the whole search
    trainings: int = 0       # distinct candidates trained (repeats are free)
    extra: dict[str, object] = field(default_factory=dict)  # method-specific traces (policy, alphas, ...)

    def add(self, arch: Arch, reward: float, elapsed: float = 0.0) -> Record:
        record = Record(len(self.records) + 1, arch, reward, elapsed)
        self.records.append(record)
        return record

    def rewards(self) -> list[float]:
        return [r.reward for r in self.records]

    def best_so_far(self) -> list[float]:
        """The best reward seen after 1, 2, ... proposals (the curve NAS papers plot)."""
        best, out = float("-inf"), []
        for r in self.records:
            best = max(best, r.reward)
            out.append(best)
        return out

    def best(self) -> Record:
        """The proposal with the highest reward (the earliest one on ties)."""
        if not self.records:
            raise ValueError(f"the {self.method} search has no records yet.")
        return max(self.records, key=lambda r: (r.reward, -r.step))

