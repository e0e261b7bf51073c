"""Budget mode and full mode: the one setting that decides how big every experiment of the book is.

Every chapter reads its sizes (images, subsets, epochs, batch size, device) from :func:`get_config`, so
the same chapter runs in two modes without editing:

- ``budget`` (the default, what CI builds): a 2-core CPU with no network; each chapter must run in at
  most 3 minutes and 1.5 GB of memory, so experiments use subsets and few epochs, and data that cannot
  be downloaded is replaced by offline data (see ``cnnbook.data``).
- ``full``: the real data sets, whole, on a GPU when there is one.

Environment variables (read each time :func:`get_config` is called):

``CNNBOOK_MODE``
    ``budget`` (default) or ``full``. An instructor with a GPU rebuilds the whole book in full mode with
    ``CNNBOOK_MODE=full make book``.
``CNNBOOK_DATA``
    Folder of the data sets. Default: ``./data`` when that folder exists in the working directory,
    otherwise ``~/.cache/cnnbook``.
``CNNBOOK_OFFLINE``
    ``1`` never attempts a download: data that is not already in ``CNNBOOK_DATA`` is replaced by the
    offline data. The tests set it.
``CNNBOOK_MAX_STEPS``
    A positive integer n caps every training run at n optimisation steps (unset: no cap). A smoke test
    of the chapters, not a way to train: ``cnnbook.train.fit`` ends a run after n steps, once it has measured
    and evaluated the epoch they fell in (so a history may be shorter than its epochs), the
    searches of ``cnnbook.nas`` stop after n proposals or super-network steps, and a chapter with a loop of
    its own reads the cap through :func:`max_steps` or :func:`capped`. CI runs every chapter in full mode
    with ``CNNBOOK_MAX_STEPS=2`` on tiny files in the real formats (``tests/test_full_mode.py``).
``CNNBOOK_PROGRESS``
    ``auto`` (default: progress bars only in a live notebook or a terminal, never in the book build),
    ``1`` (always) or ``0`` (never).

Threads: the chapters' networks are small, and on a CPU that other programs share, splitting each small
operation over several threads costs more in coordination than it saves. A chapter that trains calls
:func:`set_threads` once: one thread in budget mode, PyTorch's own default in full mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

__all__ = ["ModeConfig", "MODES", "get_config", "set_threads", "data_dir", "offline", "progress_setting",
           "max_steps", "capped"]


@dataclass(frozen=True)
class ModeConfig:
    """The knobs a chapter reads; the values depend on the mode only."""

    mode: str                 # "budget" or "full"
    image_size: int           # side of the colour images fed to the small networks (CIFAR-10: 32)
    train_size: int | None    # training images used per data set; None = the whole training set
    test_size: int | None     # test images used per data set; None = the whole test set
    epochs: int               # default number of training epochs of a chapter experiment
    batch_size: int           # default mini-batch size
    device: str               # "cpu" or "cuda"
    num_workers: int          # DataLoader worker processes (0 = load in the main process)
    seg_image_size: int       # side of the images of the generated segmentation set (U-Net)
    seg_train_size: int       # images of the generated segmentation training set
    seg_test_size: int        # images of the generated segmentation test set
    threads: int | None       # torch intra-op threads for the experiments (set_threads); None = PyTorch's default


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


MODES: dict[str, ModeConfig] = {
    # 2-core CPU, <= 3 minutes and <= 1.5 GB per chapter.
    "budget": ModeConfig(
        mode="budget", image_size=32, train_size=5000, test_size=1000, epochs=5, batch_size=64,
        device="cpu", num_workers=0, seg_image_size=64, seg_train_size=600, seg_test_size=100, threads=1,
    ),
    # A GPU: whole data sets, more epochs. The device is resolved when get_config() is called.
    "full": ModeConfig(
        mode="full", image_size=32, train_size=None, test_size=None, epochs=30, batch_size=128,
        device="cpu", num_workers=2, seg_image_size=128, seg_train_size=5000, seg_test_size=500,
        threads=None,
    ),
}


def get_config(mode: str | None = None) -> ModeConfig:
    """The configuration of ``mode``, by default the one named by ``CNNBOOK_MODE`` (``budget``).

    Budget mode always runs on the CPU (its timings are the CI's); full mode uses CUDA when available.
    """
    name = (mode or os.environ.get("CNNBOOK_MODE") or "budget").strip().lower()
    if name not in MODES:
        raise ValueError(f"CNNBOOK_MODE must be one of {sorted(MODES)}; got {name!r}.")
    config = MODES[name]
    if name == "full":
        config = replace(config, device=_device())
    return config


def set_threads(config: ModeConfig | None = None) -> int:
    """Apply the mode's thread policy to torch (``torch.set_num_threads``) and return the threads in use.

    Budget mode uses one thread: its networks are small and its 2-core CPU is shared. Full mode leaves
    PyTorch's default (one thread per physical core), which the CPU side of GPU training wants.
    """
    config = config or get_config()
    if config.threads is not None:
        if config.threads < 1:
            raise ValueError(f"ModeConfig.threads must be at least 1 (or None for PyTorch's default); "
                             f"got {config.threads}.")
        torch.set_num_threads(config.threads)
    return torch.get_num_threads()


def data_dir() -> Path:
    """Folder of the data sets: ``$CNNBOOK_DATA``, else ``./data`` if it exists, else ``~/.cache/cnnbook``."""
    if os.environ.get("CNNBOOK_DATA"):
        return Path(os.environ["CNNBOOK_DATA"]).expanduser()
    local = Path.cwd() / "data"
    if local.is_dir():
        return local
    return Path.home() / ".cache" / "cnnbook"


def offline() -> bool:
    """True when ``CNNBOOK_OFFLINE`` forbids downloads."""
    return os.environ.get("CNNBOOK_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}


def progress_setting() -> bool | None:
    """``CNNBOOK_PROGRESS``: True (always show progress bars), False (never) or None (decide automatically)."""
    value = os.environ.get("CNNBOOK_PROGRESS", "auto").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    return None


def max_steps() -> int | None:
    """``CNNBOOK_MAX_STEPS``: the most optimisation steps one training run may take, or None (no cap)."""
    value = os.environ.get("CNNBOOK_MAX_STEPS", "").strip()
    if not value:
        return None
    try:
        steps = int(value)
    except ValueError:
        raise ValueError(f"CNNBOOK_MAX_STEPS must be a positive integer; got {value!r}.") from None
    if steps < 1:
        raise ValueError(f"CNNBOOK_MAX_STEPS must be a positive integer; got {value!r}.")
    return steps


def capped(steps: int) -> int:
    """``steps``, or the cap of ``CNNBOOK_MAX_STEPS`` when that is smaller: a loop of a chapter runs
    ``for step in range(capped(STEPS))``."""
    cap = max_steps()
    return steps if cap is None else min(steps, cap)
