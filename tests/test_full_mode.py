"""Full mode runs: every chapter executes with ``CNNBOOK_MODE=full`` on the CPU, on tiny files in the real formats.

Full mode is meant for a GPU and the real data sets, which CI has neither. So the test writes a few images
of CIFAR-10, MNIST and Fashion-MNIST and random ImageNet weights in the formats torchvision reads
(``tests/full_mode_fixtures.py``), points ``CNNBOOK_DATA`` and ``TORCH_HOME`` at them, caps every training
run at two optimisation steps (``CNNBOOK_MAX_STEPS=2``), and executes each chapter of the book as the
build does (jupytext, then nbclient). Every full-mode branch of every chapter then runs: the loaders, the
device handling, the sizes, the plots. The numbers mean nothing (two steps on random pixels), so the
chapters' build-time claims are not what this test checks; that the code runs is: a failed claim is
collected and printed (``full_mode_fixtures.RELAX_CLAIMS``), every other error fails the test.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from full_mode_fixtures import RELAX_CLAIMS, make_full_mode_files

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CELL_TIMEOUT = 300  # seconds per cell; the budget-mode build allows 600


def _chapters() -> list[str]:
    """The executed notebooks of the book, in the order of _toc.yml (bench/chapters.py's list)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from chapters import toc_chapters

    return [page.name for page in toc_chapters()]


CHAPTERS = _chapters()


@pytest.fixture(scope="module")
def full_mode_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_full_mode_files(tmp_path_factory.mktemp("full_mode"))


def _full_mode_env(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> None:
    monkeypatch.setenv("CNNBOOK_MODE", "full")
    monkeypatch.setenv("CNNBOOK_MAX_STEPS", "2")
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    monkeypatch.setenv("CNNBOOK_PROGRESS", "0")
    monkeypatch.setenv("CNNBOOK_DATA", str(files["data"]))
    monkeypatch.setenv("TORCH_HOME", str(files["torch_home"]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the CPU, even on a machine with a GPU
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_chapter_list_is_the_books() -> None:
    assert CHAPTERS[0] == "00_how_to_use.md" and "15_zoo.md" in CHAPTERS
    assert "appendix_data_parallel.md" in CHAPTERS and len(CHAPTERS) == 17


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)  # one module: under xdist's loadscope, one worker runs them all
def test_chapter_runs_in_full_mode(chapter: str, full_mode_files: dict[str, Path], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    _full_mode_env(monkeypatch, full_mode_files)
    for item in BOOK.iterdir():  # run where the build runs, without writing into book/
        (tmp_path / item.name).symlink_to(item)
    notebook = jupytext.read(BOOK / chapter)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(RELAX_CLAIMS))
    notebook.cells.append(nbformat.v4.new_code_cell(
        'print(f"smoke run: {len(SMOKE_CLAIMS_FAILED)} claims not supported by two steps on random pixels")'))
    start = time.perf_counter()
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{chapter}: {time.perf_counter() - start:.1f} s in full mode")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "offline fallback" not in text, "full mode fell back to offline data"
    if chapter == "14_transfer.md":  # the ImageNet branch: torchvision's weights file, found where torch hub keeps it
        assert "loaded torchvision's ImageNet weights" in text


def test_full_mode_without_data_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnbook.data import load_cifar10, load_mnist
    from cnnbook.data.loaders import DataUnavailableError

    monkeypatch.setenv("CNNBOOK_MODE", "full")
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError) as cifar:
        load_cifar10()
    message = str(cifar.value)
    assert "CIFAR-10" in message and "cifar-10-python.tar.gz" in message and str(tmp_path) in message
    with pytest.raises(DataUnavailableError) as mnist:
        load_mnist()
    assert "train-images-idx3-ubyte.gz" in str(mnist.value) and str(tmp_path / "MNIST" / "raw") in str(mnist.value)
    monkeypatch.setenv("CNNBOOK_MODE", "budget")  # budget mode still falls back, and says so
    assert load_mnist().fallback
    assert not os.listdir(tmp_path)


def test_max_steps_caps_the_searches_of_chapter_13(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from torch.utils.data import TensorDataset

    from cnnbook.nas import NASData, darts_search, random_search, regularized_evolution, reinforce_search

    def reward(arch: tuple[str, ...]) -> float:
        return sum(op == "conv3x3" for op in arch) / len(arch)

    monkeypatch.setenv("CNNBOOK_MAX_STEPS", "2")
    assert len(random_search(reward, evaluations=25).records) == 2
    assert len(reinforce_search(reward, evaluations=25).records) == 2
    assert len(regularized_evolution(reward, evaluations=25, population=4).records) == 4  # the population first
    split = TensorDataset(torch.randn(64, 1, 8, 8), torch.arange(64) % 3)
    data = NASData("random", split, split, split, 3, (1, 8, 8))
    history = darts_search(data, epochs=3, batch_size=16, channels=4)  # 12 steps without the cap
    assert history.extra["weights"].shape[0] == 2 + 1  # the mixing weights before and after each step
