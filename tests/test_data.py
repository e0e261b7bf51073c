"""The data loaders: offline fallbacks say what they used and why, generated data is deterministic and hard enough.

No test touches the network: CNNBOOK_OFFLINE=1, or torchvision's data set classes are replaced by fakes.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
import torchvision

from cnnbook import config
from cnnbook.data import (
    SEGMENTATION_CLASSES, SHAPE_CLASSES, load_cifar10, load_dataset, load_digits, load_fashion_mnist, load_mnist,
    load_segmentation, load_shapes, make_segmentation, make_shapes,
)
from cnnbook.data import loaders
from cnnbook.data.distort import distorted_copies


@pytest.fixture()
def empty_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    monkeypatch.setenv("CNNBOOK_MODE", "budget")
    return tmp_path


def _one_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---- configuration -----------------------------------------------------------------------------------
def test_modes(monkeypatch) -> None:
    monkeypatch.delenv("CNNBOOK_MODE", raising=False)
    assert config.get_config().mode == "budget"
    assert config.get_config().device == "cpu"
    monkeypatch.setenv("CNNBOOK_MODE", "full")
    full = config.get_config()
    assert full.mode == "full" and full.train_size is None
    assert full.device == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("CNNBOOK_MODE", "fast")
    with pytest.raises(ValueError, match="budget"):
        config.get_config()


def test_set_threads_follows_the_mode() -> None:
    """Budget mode trains on one thread; full mode leaves PyTorch's default; a bad count is refused by name."""
    from dataclasses import replace

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert config.set_threads(config.get_config("budget")) == 1 == torch.get_num_threads()
        torch.set_num_threads(2)
        assert config.set_threads(config.get_config("full")) == 2 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads must be at least 1"):
            config.set_threads(replace(config.get_config("budget"), threads=0))
    finally:
        torch.set_num_threads(before)


def test_data_dir_and_offline(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    assert config.offline()
    monkeypatch.setenv("CNNBOOK_OFFLINE", "0")
    assert not config.offline()


# ---- fallbacks ---------------------------------------------------------------------------------------
def test_mnist_falls_back_to_digits_and_says_why(empty_data_dir, capsys) -> None:
    data = load_mnist(image_size=32)
    line = _one_line(capsys)
    assert line.startswith("data: scikit-learn digits")
    assert "offline fallback" in line and "MNIST not found" in line and "downloads are off" in line
    assert data.name == "scikit-learn digits" and data.requested == "MNIST" and data.fallback
    assert (len(data.train), len(data.test)) == (1437, 360)  # 80/20 split of the 1,797 scans
    assert data.input_size == (1, 32, 32)
    x, y = data.train[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(data.train.targets.tolist()) == set(range(10)) == set(data.test.targets.tolist())


def test_digits_are_deterministic_and_mnist_like(empty_data_dir, capsys) -> None:
    a, b = load_digits(image_size=28), load_digits(image_size=28)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.targets, b.test.targets)
    assert a.input_size == (1, 28, 28)
    ink = a.train.images.float().sum(dim=(0, 1))
    assert ink[:4].sum() == 0 and ink[-4:].sum() == 0  # centred in a 20x20 box, as MNIST


@pytest.mark.parametrize("failure, reason", [
    ("<urlopen error [Errno -2] Name or service not known>", "(no network)"),
    ("Error downloading train-images-idx3-ubyte.gz:\nTried https://a, got:\nHTTP Error 403: Forbidden",
     "(HTTP Error 403: Forbidden)"),
])
def test_download_failure_is_reported(tmp_path, monkeypatch, capsys, failure: str, reason: str) -> None:
    class NoNetwork:
        def __init__(self, root, train=True, download=False):
            if download:
                raise OSError(failure)
            raise RuntimeError("Dataset not found. You can use download=True to download it")

    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_OFFLINE", "0")
    monkeypatch.setattr(torchvision.datasets, "MNIST", NoNetwork)
    data = load_mnist()
    line = _one_line(capsys)
    assert data.fallback and "download failed" in line
    assert reason in line and "urlopen" not in line


def test_real_mnist_is_used_when_present(tmp_path, monkeypatch, capsys) -> None:
    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            n = 100 if train else 40
            self.data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(n) % 10

    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    data = load_mnist(image_size=32, train_size=50)
    line = _one_line(capsys)
    assert data.name == "MNIST" and not data.fallback and "found in" in line
    assert (len(data.train), len(data.test)) == (50, 40)
    assert data.input_size == (1, 32, 32)
    assert data.train.images[:, :, :2].sum() == 0  # padded by 2 on each side


def test_cifar_and_fashion_fall_back_to_shapes(empty_data_dir, monkeypatch, capsys) -> None:
    cifar = load_cifar10(train_size=40, test_size=20)
    assert "CIFAR-10 not found" in _one_line(capsys)
    assert cifar.name == "generated colour shapes" and cifar.classes == SHAPE_CLASSES
    assert cifar.input_size == (3, 32, 32) and (len(cifar.train), len(cifar.test)) == (40, 20)
    monkeypatch.setattr(loaders, "SYSTEM_COPIES", {})  # as on a machine without Debian's package
    fashion = load_fashion_mnist(train_size=30, test_size=10)
    line = _one_line(capsys)
    assert "Fashion-MNIST not found" in line and "apt install dataset-fashion-mnist" in line
    assert fashion.name == "generated grey shapes" and fashion.input_size == (1, 28, 28)
    assert fashion.fallback


def _idx_gz(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as a gzipped IDX file, the format of (Fashion-)MNIST."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as out:
        out.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_is_unpacked_from_the_system_copy(empty_data_dir, tmp_path_factory, monkeypatch, capsys):
    system = tmp_path_factory.mktemp("usr-share-datasets")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 5)):
        _idx_gz(system / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx_gz(system / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setattr(loaders, "SYSTEM_COPIES", {"FashionMNIST": (system, "Debian package dataset-fashion-mnist")})
    data = load_fashion_mnist()
    line = _one_line(capsys)
    assert "Debian package dataset-fashion-mnist" in line and str(system) in line
    assert data.name == "Fashion-MNIST" and not data.fallback and (len(data.train), len(data.test)) == (12, 5)
    assert data.train.targets.tolist() == [i % 10 for i in range(12)]
    raw = empty_data_dir / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(  # unpacked, with no partial file left behind
        f"{split}-{kind}-idx{d}-ubyte" for split in ("train", "t10k") for kind, d in (("images", 3), ("labels", 1)))
    load_fashion_mnist()  # the second time the unpacked files are found where torchvision looks
    assert "found in" in _one_line(capsys)


def test_an_incomplete_system_copy_is_not_used(empty_data_dir, tmp_path_factory, monkeypatch, capsys):
    system = tmp_path_factory.mktemp("usr-share-datasets")
    _idx_gz(system / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))  # three files of four missing
    monkeypatch.setattr(loaders, "SYSTEM_COPIES", {"FashionMNIST": (system, "Debian package dataset-fashion-mnist")})
    data = load_fashion_mnist(train_size=30, test_size=10)
    assert data.fallback and "Fashion-MNIST not found" in _one_line(capsys)


@pytest.mark.skipif(not (loaders.SYSTEM_COPIES["FashionMNIST"][0] / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed (make installs it)")
def test_real_fashion_mnist_from_debian(empty_data_dir, capsys) -> None:
    data = load_fashion_mnist(train_size=60_000, test_size=10_000)
    assert "dataset-fashion-mnist" in _one_line(capsys)
    assert (len(data.train), len(data.test)) == (60_000, 10_000) and data.input_size == (1, 28, 28)
    assert data.classes[0] == "T-shirt/top" and torch.bincount(data.test.targets).tolist() == [1000] * 10


def test_sizes_come_from_the_mode(empty_data_dir, capsys) -> None:
    data = load_cifar10()
    budget = config.get_config()
    assert (len(data.train), len(data.test)) == (budget.train_size, budget.test_size)


def test_load_dataset_by_name(empty_data_dir, capsys) -> None:
    assert load_dataset("digits").name == "scikit-learn digits"
    with pytest.raises(ValueError, match="mnist"):
        load_dataset("imagenet")


def test_loaders_shuffle_reproducibly(empty_data_dir, capsys) -> None:
    data = load_shapes(train_size=64, test_size=16)
    first = [y for _, y in data.loaders(batch_size=16, seed=3)[0]]
    again = [y for _, y in data.loaders(batch_size=16, seed=3)[0]]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


# ---- generated data ----------------------------------------------------------------------------------
def test_shapes_are_deterministic() -> None:
    x1, y1 = make_shapes(60, 32, seed=7)
    x2, y2 = make_shapes(60, 32, seed=7)
    x3, _ = make_shapes(60, 32, seed=8)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (60, 3, 32, 32) and x1.dtype == np.uint8
    assert y1.min() == 0 and y1.max() == len(SHAPE_CLASSES) - 1
    assert np.bincount(y1).tolist() == [6] * 10  # balanced


def test_shapes_are_not_separable_by_colour_or_a_template() -> None:
    """Colour carries no class information, and a nearest-mean-image classifier stays near chance."""
    x, y = make_shapes(1000, 32, seed=0)
    xt, yt = make_shapes(500, 32, seed=1)
    colour, colour_t = x.reshape(1000, 3, -1).mean(-1), xt.reshape(500, 3, -1).mean(-1)
    centroids = np.stack([colour[y == c].mean(0) for c in range(10)])
    by_colour = ((colour_t[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (by_colour == yt).mean() < 0.2
    flat, flat_t = x.reshape(1000, -1) / 255.0, xt.reshape(500, -1) / 255.0
    templates = np.stack([flat[y == c].mean(0) for c in range(10)])
    by_template = ((flat_t[:, None] - templates[None]) ** 2).sum(-1).argmin(1)
    assert (by_template == yt).mean() < 0.25


def test_segmentation_set(empty_data_dir, capsys) -> None:
    images, masks = make_segmentation(20, 48, seed=1)
    again, masks_again = make_segmentation(20, 48, seed=1)
    assert np.array_equal(images, again) and np.array_equal(masks, masks_again)
    assert images.shape == (20, 3, 48, 48) and masks.shape == (20, 48, 48)
    assert masks.min() == 0 and masks.max() <= len(SEGMENTATION_CLASSES) - 1
    assert (masks > 0).any(axis=(1, 2)).all()  # every image has a shape
    data = load_segmentation(image_size=32, train_size=8, test_size=4)
    assert data.task == "segmentation" and data.num_classes == 4
    x, mask = data.train[0]
    assert x.shape == (3, 32, 32) and mask.shape == (32, 32)
    assert "generated" in _one_line(capsys)


def test_distorted_copies(empty_data_dir, capsys) -> None:
    data = load_digits(image_size=32)
    images, targets = distorted_copies(data.train.images[:10], data.train.targets[:10], copies=2, seed=0)
    assert images.shape == (30, 1, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images[:10], data.train.images[:10]) and torch.equal(targets[10:20], targets[:10])
    assert not torch.equal(images[10:20], images[:10])
    again, _ = distorted_copies(data.train.images[:10], data.train.targets[:10], copies=2, seed=0)
    assert torch.equal(images, again)
    bigger = data.with_distorted_copies(1)
    assert len(bigger.train) == 2 * len(data.train) and bigger.test is data.test


def test_digit_loaders_apply_transform_to_training_set_only(tmp_path, monkeypatch, capsys) -> None:
    """``transform=`` on load_mnist (real or fallback) and load_digits, as load_shapes and load_cifar10 have."""
    calls: list[tuple[int, ...]] = []

    def invert(x: torch.Tensor) -> torch.Tensor:  # sees the float image in [0, 1], before normalisation
        calls.append(tuple(x.shape))
        assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        return 1 - x

    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            self.data = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(20) % 10

    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    fallback = load_mnist(image_size=32, transform=invert)
    digits = load_digits(image_size=32, transform=invert)
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    real = load_mnist(image_size=32, transform=invert)
    capsys.readouterr()
    assert (fallback.fallback, real.name) == (True, "MNIST")
    for data in (fallback, digits, real):
        assert data.train.transform is invert and data.test.transform is None
        plain = (data.train.raw(0) - data.train.mean) / data.train.std
        expected = (1 - data.train.raw(0) - data.train.mean) / data.train.std
        calls.clear()
        x, _ = data.train[0]
        assert calls == [(1, 32, 32)] and torch.allclose(x, expected) and not torch.allclose(x, plain)
        data.test[0]
        assert calls == [(1, 32, 32)]  # the test set is never transformed
    assert load_mnist(image_size=32).train.transform is None  # default unchanged
