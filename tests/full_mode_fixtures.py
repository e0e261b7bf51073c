"""Tiny stand-ins for the data sets and weights of full mode, in their real on-disk formats.

Full mode (``CNNBOOK_MODE=full``) reads CIFAR-10, MNIST and Fashion-MNIST through ``torchvision.datasets``
from ``cnnbook.config.data_dir()`` (``$CNNBOOK_DATA``), and torchvision's ImageNet checkpoints from the
torch hub cache (``$TORCH_HOME/hub/checkpoints/<file name of the weights' URL>``). :func:`make_full_mode_files`
writes a few images of each, with random pixels, and random weights with the real keys and shapes, so that
every chapter can run its full-mode code paths on a CPU in seconds (``tests/test_full_mode.py``).

Formats, as torchvision reads them:

- CIFAR-10: ``cifar-10-batches-py/data_batch_1`` ... ``data_batch_5``, ``test_batch`` (pickled dicts with
  ``"data"``, an N x 3072 uint8 array, channels first, and ``"labels"``) and ``batches.meta``
  (``"label_names"``). The real files were pickled by Python 2, whose byte strings torchvision reads back
  as text (``encoding="latin1"``); here the keys are written as text, which reads back the same;
- MNIST and Fashion-MNIST: ``<Class>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, the IDX files
  (big-endian magic 0x00000803 / 0x00000801, then the sizes, then uint8 data), uncompressed;
- weights: ``torch.save(state_dict)`` of the torchvision architecture, under the URL's file name.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch

__all__ = ["PRETRAINED", "make_full_mode_files", "write_cifar10", "write_idx_set", "write_torchvision_weights"]

# The pretrained networks the chapters load with weights="DEFAULT": (torchvision builder, weights enum).
PRETRAINED = {"resnet18": "ResNet18_Weights"}

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _labels(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` labels with every one of the 10 classes equally often (as in the real sets), shuffled."""
    return rng.permutation(np.arange(count) % 10).astype(np.uint8)


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """CIFAR-10's python version in ``root/cifar-10-batches-py``: 5 training batches and a test batch of
    ``per_batch`` random 32x32 colour images each, and the metadata file."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "batch_label": name,
            "labels": [int(v) for v in _labels(per_batch, rng)],
            "data": rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072}, f,
                    protocol=2)
    return folder


def _write_idx(path: Path, array: np.ndarray) -> None:
    """One IDX file: magic (0, 0, type 0x08 = uint8, number of dimensions), the sizes, the bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_idx_set(root: Path, class_name: str, train: int = 200, test: int = 100, seed: int = 0) -> Path:
    """MNIST's four IDX files (also Fashion-MNIST's: same names, same format) in ``root/<class_name>/raw``."""
    rng = np.random.default_rng(seed)
    raw = root / class_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", _labels(count, rng))
    return raw


def write_torchvision_weights(torch_home: Path, arch: str, enum_name: str) -> Path:
    """Random weights of torchvision's ``arch`` where torch hub looks for its DEFAULT checkpoint."""
    import torchvision

    url = getattr(torchvision.models, enum_name).DEFAULT.url
    path = torch_home / "hub" / "checkpoints" / os.path.basename(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(getattr(torchvision.models, arch)(weights=None).state_dict(), path)
    return path


def make_full_mode_files(folder: Path) -> dict[str, Path]:
    """Everything full mode reads, under ``folder``: returns ``{"data": ..., "torch_home": ...}``, the values
    of ``CNNBOOK_DATA`` and ``TORCH_HOME`` that make the chapters find them."""
    data, torch_home = folder / "data", folder / "torch_home"
    write_cifar10(data)
    write_idx_set(data, "MNIST", seed=1)
    write_idx_set(data, "FashionMNIST", seed=2)
    for arch, enum_name in PRETRAINED.items():
        write_torchvision_weights(torch_home, arch, enum_name)
    return {"data": data, "torch_home": torch_home}


# A first cell for every chapter of the smoke test. The chapters back their sentences with build-time claims
# (cnnbook.claims), which hold for budget mode's numbers and are meant to hold for a real full-mode run; two
# optimisation steps on random pixels support none of them. Every claim is still computed and checked, but
# one that fails is collected in ``SMOKE_CLAIMS_FAILED`` instead of stopping the chapter, so the rest of the
# chapter runs too.
RELAX_CLAIMS = '''
import cnnbook.claims as _claims

SMOKE_CLAIMS_FAILED = []


def _smoke_relaxed(check):
    def relaxed(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except _claims.ClaimError as error:
            SMOKE_CLAIMS_FAILED.append(str(error).splitlines()[0][:200])
            if check.__name__ == "expect":
                return None
            return _claims.seeds(args[0]), _claims.seeds(args[1])  # what expect_greater/expect_within return
    return relaxed


for _name in ("expect", "expect_greater", "expect_within"):
    setattr(_claims, _name, _smoke_relaxed(getattr(_claims, _name)))
'''
