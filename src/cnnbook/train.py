"""One small training helper, used by every chapter: a plain PyTorch loop you can read in one sitting.

``fit`` trains with SGD (momentum) or Adam and records, per epoch, the training loss and accuracy, the
test loss and accuracy, and the training time (wall-clock and CPU), in a :class:`History`. ``evaluate``
computes loss and accuracy on a loader; ``plot_history`` draws histories (computation and display are
kept apart).

Models whose training-mode output is a tuple (GoogLeNet and Inception-v3 return auxiliary logits) are
trained by passing a ``loss_fn`` that takes the whole output, e.g. :func:`aux_loss`; accuracy is always
measured on the first (main) output. Segmentation works unchanged: with N x C x H x W logits and
N x H x W masks, cross-entropy and accuracy are per pixel.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .config import get_config, max_steps, progress_setting

__all__ = ["History", "set_seed", "get_device", "fit", "evaluate", "aux_loss", "plot_history"]


@dataclass
class History:
    """Per-epoch measurements of one training run (lists of equal length, one entry per epoch)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)  # wall-clock seconds of training (not evaluation), cumulative
    cpu_time: list[float] = field(default_factory=list)  # CPU seconds of this process while training, cumulative

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1]

    @property
    def train_time(self) -> float:
        """Wall-clock seconds spent training (excluding the evaluations after each epoch)."""
        return self.time[-1] if self.time else 0.0

    @property
    def train_cpu_time(self) -> float:
        """The CPU seconds the process (all its threads) spent training. Unlike :attr:`train_time`, this
        hardly changes when other programs share the machine."""
        return self.cpu_time[-1] if self.cpu_time else 0.0

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch, so that a run can be repeated exactly on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the mode's device (``cuda`` in full mode when available, else ``cpu``)."""
    if device is not None:
        return torch.device(device)
    return torch.device(get_config().device)


def _main(output: Any) -> Tensor:
    """The main logits of a model output (the first element of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _default_loss(output: Any, target: Tensor) -> Tensor:
    if isinstance(output, (tuple, list)):
        raise TypeError("The model returned a tuple (auxiliary outputs?): pass loss_fn=aux_loss() or your own.")
    return F.cross_entropy(output, target)


def aux_loss(weight: float = 0.3) -> Callable[[Any, Tensor], Tensor]:
    """Loss for networks with auxiliary classifiers: main loss + ``weight`` x each auxiliary loss.

    GoogLeNet (Szegedy et al. 2014) weights its two auxiliary losses by 0.3 during training. The rule is
    :func:`cnnbook.models.googlenet_loss`'s, the one implementation; this only fixes its weight, for
    ``fit(..., loss_fn=aux_loss(0.3))``.
    """
    from .models.googlenet import googlenet_loss  # imported here: models import nothing from train

    def loss(output: Any, target: Tensor) -> Tensor:
        return googlenet_loss(output, target, aux_weight=weight)

    return loss


def _correct(logits: Tensor, target: Tensor) -> tuple[int, int]:
    """Correct predictions and predictions made (per image, or per pixel for segmentation)."""
    return int((logits.argmax(dim=1) == target).sum()), target.numel()


def _interactive() -> bool:
    """True in a live notebook or a terminal; False in batch execution (book build, nbgrader, pytest)."""
    shell = sys.modules.get("IPython")
    if shell is not None:
        ip = shell.get_ipython()
        kernel = getattr(ip, "kernel", None)
        if kernel is not None:  # live front ends allow input(); nbclient (the book build) does not
            return bool(getattr(kernel, "_allow_stdin", False))
    return sys.stderr.isatty()


def _progress(iterable: Iterable, show: bool, **kwargs: Any) -> Iterable:
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, **kwargs)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: Callable[[Any, Tensor], Tensor] | None = None,
             device: str | torch.device | None = None) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` (in eval mode) over ``loader``.

    Both are averages over the same count: the targets seen (images, or pixels for segmentation). Each
    batch's mean loss is weighted by its number of targets, so a short last batch, ``drop_last`` or a
    sampler that visits part of the data set do not bias either figure.
    """
    device = get_device(device)
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        output = model(x)
        c, n = _correct(_main(output), y)
        total_loss += float((loss_fn or _default_loss)(output, y)) * n
        correct, count = correct + c, count + n
    if count == 0:
        raise ValueError("evaluate() got an empty loader: nothing to average. Check the data set and batch size.")
    return total_loss / count, correct / count


def _param_groups(model: nn.Module, lr: float, lr_groups: dict[str, float] | None) -> list[dict[str, Any]]:
    """The trainable parameters, one optimiser group per module named in ``lr_groups`` and one for the rest."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]  # frozen layers stay out
    groups: dict[str, list[nn.Parameter]] = {prefix: [] for prefix in lr_groups or {}}
    rest: list[nn.Parameter] = []
    for name, p in trainable:
        prefix = next((q for q in groups if name == q or name.startswith(q + ".")), None)
        (groups[prefix] if prefix is not None else rest).append(p)
    empty = [q for q, params in groups.items() if not params]
    if empty:
        raise ValueError(f"lr_groups names modules with no trainable parameter: {empty}. Give dotted module "
                         f"names of the model (e.g. 'fc', 'layer4') whose parameters are trained.")
    return ([{"params": rest, "lr": lr}] if rest else []) + [
        {"params": params, "lr": lr_groups[q]} for q, params in groups.items()]  # type: ignore[index]


def _make_optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float,
                    lr_groups: dict[str, float] | None = None) -> torch.optim.Optimizer:
    params = _param_groups(model, lr, lr_groups)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {name!r}.")


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    test_loader: DataLoader | None,
    epochs: int,
    lr: float,
    optimizer: str = "sgd",
    seed: int = 0,
    device: str | torch.device | None = None,
    loss_fn: Callable[[Any, Tensor], Tensor] | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    progress: bool | None = None,
    lr_groups: dict[str, float] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Args:
        model: any ``nn.Module``; it is moved to ``device`` and left there, trained.
        train_loader, test_loader: mini-batches of ``(images, targets)``; ``test_loader`` may be None.
        epochs, lr: number of passes over the training set, learning rate.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
        seed: seeds everything first (:func:`set_seed`); the loaders carry their own shuffling seed.
        device: defaults to the mode's device (:func:`get_device`).
        loss_fn: ``loss_fn(model_output, targets)``; default cross-entropy. Use :func:`aux_loss` for models
            that return auxiliary outputs in training mode.
        schedule: ``"constant"`` or ``"cosine"`` (learning rate decayed to 0 over the run, per step).
        progress: show a tqdm bar per epoch; default from ``CNNBOOK_PROGRESS`` (only in a live session).
        lr_groups: learning rates of named modules, e.g. ``{"fc": 1e-3}``: their parameters train at that
            rate, every other trainable parameter at ``lr`` (fine-tuning: small ``lr`` for the pre-trained
            body, a larger one for the new head). The cosine schedule scales every group alike.

    With ``CNNBOOK_MAX_STEPS=n`` (a smoke test, see ``cnnbook.config``) the run stops after n optimisation
    steps in all: the epoch in which the cap is reached is measured and evaluated as usual, and is the
    last one, so the history may hold fewer than ``epochs`` epochs.
    """
    if epochs < 1 or lr <= 0:
        raise ValueError(f"epochs must be >= 1 and lr > 0; got epochs={epochs}, lr={lr}.")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine'; got {schedule!r}.")
    set_seed(seed)
    device = get_device(device)
    model.to(device)
    loss_fn = loss_fn or _default_loss
    opt = _make_optimizer(model, optimizer, lr, momentum, weight_decay, lr_groups)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(train_loader))
             if schedule == "cosine" else None)
    show = progress if progress is not None else progress_setting()
    show = _interactive() if show is None else show
    history, elapsed, cpu_elapsed = History(), 0.0, 0.0
    cap, steps = max_steps(), 0
    for epoch in range(epochs):
        model.train()
        start, cpu_start = time.perf_counter(), time.process_time()
        total_loss, correct, count, seen = 0.0, 0, 0, 0
        for x, y in _progress(train_loader, show, desc=f"epoch {epoch + 1}/{epochs}"):
            if cap is not None and steps == cap:
                break  # CNNBOOK_MAX_STEPS reached (a smoke test): the epoch ends here
            x, y = x.to(device), y.to(device)
            output = model(x)
            loss = loss_fn(output, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            steps += 1
            total_loss += loss.item() * len(y)
            c, n = _correct(_main(output).detach(), y)
            correct, count, seen = correct + c, count + n, seen + len(y)
        elapsed += time.perf_counter() - start
        cpu_elapsed += time.process_time() - cpu_start
        history.train_loss.append(total_loss / seen)
        history.train_acc.append(correct / count)
        history.time.append(elapsed)
        history.cpu_time.append(cpu_elapsed)
        if test_loader is not None:
            test_loss, test_acc = evaluate(model, test_loader, loss_fn, device)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
        if cap is not None and steps == cap:
            break  # ... and so does the run, measured like any other (CNNBOOK_MAX_STEPS)
    return history


def plot_history(histories: History | dict[str, History], title: str | None = None) -> Any:
    """Loss and accuracy per epoch, training (dashed) and test (solid); one colour per history.

    Returns the matplotlib Figure (nothing is computed here: pass the histories ``fit`` returned).
    """
    import matplotlib.pyplot as plt

    if isinstance(histories, History):
        histories = {"model": histories}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for i, (label, h) in enumerate(histories.items()):
        colour = f"C{i}"
        epochs = range(1, h.epochs + 1)
        ax_loss.plot(epochs, h.train_loss, "--", color=colour, label=f"{label} (train)")
        ax_acc.plot(epochs, h.train_acc, "--", color=colour, label=f"{label} (train)")
        if h.test_loss:
            ax_loss.plot(epochs, h.test_loss, "-", color=colour, marker="o", ms=3, label=f"{label} (test)")
            ax_acc.plot(epochs, h.test_acc, "-", color=colour, marker="o", ms=3, label=f"{label} (test)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig
