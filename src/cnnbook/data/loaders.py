"""Loaders for the data sets of the book, each with an offline fallback.

``load_mnist``, ``load_fashion_mnist`` and ``load_cifar10`` read the real data sets through
``torchvision.datasets`` from ``cnnbook.config.data_dir``. Fashion-MNIST is also found offline: Debian's
package ``dataset-fashion-mnist`` (installed by ``make``) ships the real files, which are unpacked where
torchvision looks for them. Otherwise the loaders download the data when that is allowed
(``CNNBOOK_OFFLINE`` unset) and possible. When the data is absent and cannot be fetched they fall back
to data that needs no download, and say so:

- digits (MNIST): scikit-learn's handwritten digits, 1,797 real 8x8 scans upsampled to the 20x20 box
  MNIST uses and padded to 28x28 (or 32x32);
- grey objects (Fashion-MNIST): the generated shapes of ``cnnbook.data.shapes``, in grey at 28x28;
- colour objects (CIFAR-10): the generated shapes in colour at 32x32.

The fallbacks are budget mode's: in full mode (``CNNBOOK_MODE=full``) a data set that is absent and
cannot be downloaded raises :class:`DataUnavailableError`, which names the files to fetch and the folder
to put them in, because full mode's numbers are meant to be the real data set's.

Every loader prints exactly one line saying which data it used and why, and returns a
``cnnbook.data.bundle.DataBundle`` whose sizes come from the mode (``cnnbook.config.get_config``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ..config import data_dir, get_config, max_steps, offline
from .bundle import DataBundle, ImageTensorDataset, channel_stats
from .shapes import SEGMENTATION_CLASSES, SHAPE_CLASSES, make_segmentation, make_shapes

__all__ = [
    "load_mnist", "load_fashion_mnist", "load_cifar10", "load_digits", "load_shapes",
    "load_segmentation", "load_dataset", "DIGIT_CLASSES", "DataUnavailableError",
]

DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ---- small helpers -----------------------------------------------------------------------------------
def _show(path: Path) -> str:
    """``path`` with the home folder written as ``~``."""
    try:
        return "~/" + str(path.expanduser().resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def _subset(images: Tensor, targets: Tensor, size: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """A reproducible random subset of ``size`` items (all of them when ``size`` is None or too large)."""
    if size is None or size >= len(images):
        return images, targets
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:size]
    index = index.sort().values
    return images[index], targets[index]


def _pad_to(images: Tensor, size: int) -> Tensor:
    """Centre uint8 images (N x C x h x w, h = w <= size) in a size x size field of zeros."""
    pad = size - images.shape[-1]
    if pad < 0:
        return images
    return F.pad(images, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))


def _bundle(
    name: str, requested: str, reason: str, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
    classes: list[str], image_size: int | None, fallback: bool, task: str = "classification",
    transform: Callable[[Tensor], Tensor] | None = None,
) -> DataBundle:
    mean, std = channel_stats(train[0])
    bundle = DataBundle(
        name=name, requested=requested, reason=reason, classes=classes, task=task, fallback=fallback,
        train=ImageTensorDataset(*train, mean, std, image_size, transform),
        test=ImageTensorDataset(*test, mean, std, image_size),
    )
    print(bundle.summary())
    return bundle


class DataUnavailableError(FileNotFoundError):
    """Full mode needs a real data set that is neither in ``data_dir()`` nor downloadable."""


def _require_in_full_mode(cls: Any, name: str, found: str) -> None:
    """In full mode, raise :class:`DataUnavailableError` instead of falling back to offline data.

    ``found`` is why the data set could not be had (``_fetch_torchvision``'s string). The message names
    the files torchvision reads and where it reads them, so the data can be fetched on another machine.
    """
    if get_config().mode != "full":
        return
    root = data_dir()
    if cls.__name__ == "CIFAR10":
        files = f"{cls.url} (unpack it: the folder {cls.base_folder}/ with data_batch_1..5, test_batch, batches.meta)"
        where = root
    else:
        files = ", ".join(url + name for name, _ in cls.resources for url in cls.mirrors[:1]) if hasattr(
            cls, "mirrors") else ", ".join(url for url, _ in cls.resources)
        where = f"{root / cls.__name__ / 'raw'} (gunzip each file there)"
    apt = " (or `apt install dataset-fashion-mnist`)" if cls.__name__ in SYSTEM_COPIES else ""
    raise DataUnavailableError(
        f"Full mode (CNNBOOK_MODE=full) trains on the real {name}, and it is not available: {found}.\n"
        f"  Download: {files}\n"
        f"  Put it in: {where}{apt}\n"
        f"The folder is CNNBOOK_DATA ({_show(root)}); budget mode (CNNBOOK_MODE=budget) uses offline data instead."
    )


# Debian's ``dataset-fashion-mnist`` package (``apt install dataset-fashion-mnist``, which ``make`` runs) installs
# the real Fashion-MNIST as the four standard IDX ``.gz`` files that torchvision downloads.
SYSTEM_COPIES: dict[str, tuple[Path, str]] = {
    "FashionMNIST": (Path("/usr/share/datasets/fashion-mnist"), "Debian package dataset-fashion-mnist"),
}


def _unpack_system_copy(cls: Any, root: Path) -> str | None:
    """Unpack a system-wide copy of ``cls``'s raw files (see ``SYSTEM_COPIES``) where torchvision looks for them.

    torchvision reads ``root/<Class>/raw/<file>`` uncompressed, so each ``.gz`` is decompressed there (into a
    temporary name, then renamed, so an interrupted unpack never leaves a truncated file). Returns where the
    files came from, or None when there is no complete system copy.
    """
    folder, package = SYSTEM_COPIES.get(cls.__name__, (None, ""))
    if folder is None:
        return None
    names = [Path(url.rsplit("/", 1)[-1]) for url, _ in cls.resources]
    if not all((folder / name).is_file() for name in names):
        return None
    raw = root / cls.__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = raw / name.stem  # "train-images-idx3-ubyte.gz" -> "train-images-idx3-ubyte"
        if target.is_file():
            continue
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        with gzip.open(folder / name, "rb") as source, open(partial, "wb") as out:
            shutil.copyfileobj(source, out)
        os.replace(partial, target)
    return f"{package} ({folder}), unpacked into {_show(raw)}"


def _fetch_torchvision(cls: Any, name: str) -> tuple[Any, Any, str] | str:
    """The torchvision train and test sets and how they were found, or the reason they are not there.

    In order: the files already in ``data_dir()``; a system-wide copy (``SYSTEM_COPIES``) unpacked there;
    a download, when that is allowed. The string returned instead says why none of them worked.
    """
    root = data_dir()
    try:
        return cls(root, train=True, download=False), cls(root, train=False, download=False), f"found in {_show(root)}"
    except RuntimeError:
        pass
    try:
        system = _unpack_system_copy(cls, root)
    except OSError as error:  # a read-only or full data folder: say so and go on to the other sources
        system = None
        print(f"cnnbook: could not unpack the system copy of {name} into {_show(root)} ({error})")
    if system is not None:
        return cls(root, train=True, download=False), cls(root, train=False, download=False), system
    if offline():
        return f"{name} not found in {_show(root)} and downloads are off (CNNBOOK_OFFLINE=1)"
    try:  # torchvision prints download progress: keep the one-line promise
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            root.mkdir(parents=True, exist_ok=True)
            train, test = cls(root, train=True, download=True), cls(root, train=False, download=True)
        return train, test, f"downloaded to {_show(root)}"
    except Exception as error:  # no network, a firewall, a full disk: fall back, and say why
        return f"{name} not found in {_show(root)} and the download failed ({_download_failure(error)})"


# What urllib says when there is no network at all (DNS lookups fail), as torchvision reports it.
_NO_NETWORK = ("Name or service not known", "Temporary failure in name resolution", "Network is unreachable",
               "No address associated with hostname", "nodename nor servname")


def _download_failure(error: Exception) -> str:
    """One short phrase for a failed download: "no network" when no server could be reached at all,
    otherwise the root cause (torchvision puts it on the last line of its message)."""
    text = str(error)
    if any(marker in text for marker in _NO_NETWORK):
        return "no network"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:100] if lines else type(error).__name__


def _as_uint8(data: Any, channels_last: bool) -> Tensor:
    images = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    return images.permute(0, 3, 1, 2).contiguous() if channels_last else images[:, None]


# ---- the offline data --------------------------------------------------------------------------------
def _digits_arrays(image_size: int) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """scikit-learn's 1,797 digits as MNIST-like uint8 images, split 80/20 (stratified, fixed seed)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # N x 1 x 8 x 8, in [0, 1]
    box = min(20, image_size)  # MNIST centres each digit in a 20x20 box inside 28x28
    images = F.interpolate(images, size=(box, box), mode="bilinear", align_corners=False).clamp_(0, 1)
    images = _pad_to((images * 255).round().to(torch.uint8), image_size)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels.numpy())
    train_idx, test_idx = torch.as_tensor(np.sort(train_idx)), torch.as_tensor(np.sort(test_idx))
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])


def _shapes_arrays(
    train_size: int, test_size: int, image_size: int, channels: int, seed: int,
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    train = make_shapes(train_size, image_size, seed=seed, channels=channels)
    test = make_shapes(test_size, image_size, seed=seed + 1, channels=channels)  # a different seed: no overlap
    return (torch.from_numpy(train[0]), torch.from_numpy(train[1])), (torch.from_numpy(test[0]), torch.from_numpy(test[1]))


def _sizes(train_size: int | None, test_size: int | None, default_train: int, default_test: int) -> tuple[int | None, int | None]:
    config = get_config()
    train = train_size if train_size is not None else config.train_size
    test = test_size if test_size is not None else config.test_size
    return (train if train is not None else default_train), (test if test is not None else default_test)


# ---- public loaders ----------------------------------------------------------------------------------
def load_digits(image_size: int = 28, train_size: int | None = None, test_size: int | None = None,
                reason: str = "offline data, requested directly",
                transform: Callable[[Tensor], Tensor] | None = None) -> DataBundle:
    """scikit-learn's handwritten digits (1,437 training / 360 test scans) as MNIST-like images.

    ``transform`` (augmentation on [0, 1] float images) applies to the training set only.
    """
    train, test = _digits_arrays(image_size)
    train, test = _subset(*train, train_size, 0), _subset(*test, test_size, 1)
    return _bundle("scikit-learn digits", "scikit-learn digits", reason, train, test, DIGIT_CLASSES,
                   image_size, fallback=False, transform=transform)


def load_mnist(image_size: int = 28, train_size: int | None = None, test_size: int | None = None,
               transform: Callable[[Tensor], Tensor] | None = None) -> DataBundle:
    """MNIST (60,000 / 10,000 grey 28x28 digits), padded to ``image_size`` (32 for LeNet-5).

    Falls back to ``load_digits`` when MNIST is absent and cannot be downloaded. ``transform``
    (augmentation on [0, 1] float images) applies to the training set only.
    """
    import torchvision

    train_size, test_size = _sizes(train_size, test_size, 60_000, 10_000)
    found = _fetch_torchvision(torchvision.datasets.MNIST, "MNIST")
    if isinstance(found, str):
        _require_in_full_mode(torchvision.datasets.MNIST, "MNIST", found)
        train, test = _digits_arrays(image_size)
        train, test = _subset(*train, train_size, 0), _subset(*test, test_size, 1)
        return _bundle("scikit-learn digits", "MNIST", f"offline fallback: {found}", train, test, DIGIT_CLASSES,
                       image_size, fallback=True, transform=transform)
    return _grey_28_bundle("MNIST", found, DIGIT_CLASSES, image_size, train_size, test_size, transform)


def _grey_28_bundle(name: str, found: tuple, classes: list[str], image_size: int, train_size: int,
                    test_size: int, transform: Callable[[Tensor], Tensor] | None) -> DataBundle:
    """The bundle of a real 28x28 grey data set torchvision read (MNIST, Fashion-MNIST): subsets, padding."""
    train_set, test_set, how = found
    train = _subset(_as_uint8(train_set.data, False), train_set.targets.long(), train_size, 0)
    test = _subset(_as_uint8(test_set.data, False), test_set.targets.long(), test_size, 1)
    if image_size > 28:
        train, test = (_pad_to(train[0], image_size), train[1]), (_pad_to(test[0], image_size), test[1])
    return _bundle(name, name, how, train, test, classes, image_size, fallback=False, transform=transform)


def load_fashion_mnist(image_size: int = 28, train_size: int | None = None, test_size: int | None = None,
                       transform: Callable[[Tensor], Tensor] | None = None) -> DataBundle:
    """Fashion-MNIST (60,000 / 10,000 grey 28x28 clothes, 10 classes), padded to ``image_size`` when larger.

    Read from ``data_dir()``, else from Debian's ``dataset-fashion-mnist`` package, else downloaded; falls back
    to the generated shapes in grey (and says so) when none of these is possible. ``transform`` (augmentation
    on [0, 1] float images) applies to the training set only.
    """
    import torchvision

    train_size, test_size = _sizes(train_size, test_size, 60_000, 10_000)
    found = _fetch_torchvision(torchvision.datasets.FashionMNIST, "Fashion-MNIST")
    if isinstance(found, str):
        _require_in_full_mode(torchvision.datasets.FashionMNIST, "Fashion-MNIST", found)
        reason = f"offline fallback: {found}; install the real data with `apt install dataset-fashion-mnist`"
        train, test = _shapes_arrays(train_size, test_size, image_size, channels=1, seed=0)
        return _bundle("generated grey shapes", "Fashion-MNIST", reason, train, test,
                       SHAPE_CLASSES, image_size, fallback=True, transform=transform)
    return _grey_28_bundle("Fashion-MNIST", found, FASHION_CLASSES, image_size, train_size, test_size, transform)


def _cifar10_reader() -> Any:
    """torchvision's CIFAR10, reading the unpacked files after checking that they exist, not their MD5 sums.

    torchvision hashes the six batch files (178 MB) on every load; a download is still checked, against
    the archive's MD5 sum, and a damaged batch file fails to unpickle with an error of its own. Without the
    per-file sums a copy made elsewhere (or the full-mode smoke test's tiny files) loads too.
    """
    import torchvision

    base = torchvision.datasets.CIFAR10

    class CIFAR10(base):  # type: ignore[misc, valid-type]
        train_list = [[name, None] for name, _ in base.train_list]
        test_list = [[name, None] for name, _ in base.test_list]
        meta = {**base.meta, "md5": None}

    return CIFAR10


def load_cifar10(image_size: int | None = None, train_size: int | None = None, test_size: int | None = None,
                 transform: Callable[[Tensor], Tensor] | None = None) -> DataBundle:
    """CIFAR-10 (50,000 / 10,000 colour 32x32 images); falls back to the generated colour shapes.

    ``transform`` (augmentation on [0, 1] float images) applies to the training set only.
    """
    import torchvision

    image_size = image_size or get_config().image_size
    train_size, test_size = _sizes(train_size, test_size, 50_000, 10_000)
    found = _fetch_torchvision(_cifar10_reader(), "CIFAR-10")
    if isinstance(found, str):
        _require_in_full_mode(torchvision.datasets.CIFAR10, "CIFAR-10", found)
        train, test = _shapes_arrays(train_size, test_size, image_size, channels=3, seed=0)
        return _bundle("generated colour shapes", "CIFAR-10", f"offline fallback: {found}", train, test,
                       SHAPE_CLASSES, image_size, fallback=True, transform=transform)
    train_set, test_set, how = found
    train = _subset(_as_uint8(train_set.data, True), torch.tensor(train_set.targets), train_size, 0)
    test = _subset(_as_uint8(test_set.data, True), torch.tensor(test_set.targets), test_size, 1)
    return _bundle("CIFAR-10", "CIFAR-10", how, train, test, CIFAR10_CLASSES, image_size, fallback=False,
                   transform=transform)


def load_shapes(image_size: int | None = None, train_size: int | None = None, test_size: int | None = None,
                channels: int = 3, seed: int = 0, transform: Callable[[Tensor], Tensor] | None = None) -> DataBundle:
    """The generated shapes (10 classes, see ``cnnbook.data.shapes``), deterministic from ``seed``."""
    image_size = image_size or get_config().image_size
    train_size, test_size = _sizes(train_size, test_size, 50_000, 10_000)
    train, test = _shapes_arrays(train_size, test_size, image_size, channels, seed)
    kind = "colour" if channels == 3 else "grey"
    return _bundle(f"generated {kind} shapes", f"generated {kind} shapes", f"generated from seed {seed}", train, test,
                   SHAPE_CLASSES, image_size, fallback=False, transform=transform)


SMOKE_SEGMENTATION = (64, 20)  # training and test images of the generated segmentation set under a step cap


def load_segmentation(image_size: int | None = None, train_size: int | None = None, test_size: int | None = None,
                      channels: int = 3, seed: int = 0) -> DataBundle:
    """The generated segmentation set: images with shapes, masks with one class per pixel (4 classes).

    Under ``CNNBOOK_MAX_STEPS`` (the full-mode smoke test, which replaces the real data sets by a few
    images) at most ``SMOKE_SEGMENTATION`` images are generated per split: generating full mode's 5,000
    images of 128 x 128 alone takes minutes of CPU.
    """
    config = get_config()
    image_size = image_size or config.seg_image_size
    train_size = train_size or config.seg_train_size
    test_size = test_size or config.seg_test_size
    if max_steps() is not None:
        train_size, test_size = min(train_size, SMOKE_SEGMENTATION[0]), min(test_size, SMOKE_SEGMENTATION[1])
    train, test = (make_segmentation(n, image_size, seed=s, channels=channels)
                   for n, s in ((train_size, seed), (test_size, seed + 1)))
    as_tensors = lambda pair: (torch.from_numpy(pair[0]), torch.from_numpy(pair[1]))  # noqa: E731
    return _bundle("generated shapes segmentation", "generated shapes segmentation", f"generated from seed {seed}",
                   as_tensors(train), as_tensors(test), SEGMENTATION_CLASSES, image_size, fallback=False,
                   task="segmentation")


_LOADERS: dict[str, Callable[..., DataBundle]] = {
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "digits": load_digits,
    "shapes": load_shapes,
    "segmentation": load_segmentation,
}


def load_dataset(name: str, **kwargs: Any) -> DataBundle:
    """Load a data set by name: one of ``mnist``, ``fashion_mnist``, ``cifar10``, ``digits``, ``shapes``, ``segmentation``."""
    key = name.lower().replace("-", "_")
    if key not in _LOADERS:
        raise ValueError(f"Unknown data set {name!r}; choose one of {sorted(_LOADERS)}.")
    return _LOADERS[key](**kwargs)
