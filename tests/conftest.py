"""Shared fixtures. Tests never touch the network and run on the CPU."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("CNNBOOK_OFFLINE", "1")

# `make test` runs the suite on every core with pytest-xdist (-n auto --dist loadscope). Each worker then
# gets its share of the cores for torch and for the kernels it starts (nbgrader, the chapters' helpers),
# instead of every process assuming the whole machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = max(1, (os.cpu_count() or 1) // _WORKERS)
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
    torch.set_num_threads(_threads)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


# `make test` runs pytest-xdist with --dist loadscope: each test module (each class, where a module has test
# classes) runs whole on one worker, so a module or class fixture (a graded course, a started browser, a
# PostgreSQL server) is built once. tests/test_exercises_graded.py has one class per assignment, so the
# assignments spread over the workers. The scopes known to take minutes are queued first, so that no worker
# is left with a long one at the end. (xdist's --dist loadgroup cannot be used: with pytest 9 it ignores the
# xdist_group marks, because it renames the nodes through an attribute pytest no longer reads.)
_FIRST = ("test_exercises_graded.py::TestGraded_ch08", "test_exercises_graded.py::TestGraded_ch12",
          "test_grade_class.py", "test_autograder_integrity.py", "test_full_mode.py", "test_accessibility.py",
          "test_exercises_graded.py::TestGraded_ch14", "test_exercises_graded.py::TestGraded_ch13",
          "test_exercises_graded.py::TestGraded_ch02", "test_pdf.py", "test_autograder_e2e.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        scope = item.nodeid.split("/")[-1]
        return next((i for i, first in enumerate(_FIRST) if scope.startswith(first)), len(_FIRST))

    items.sort(key=rank)  # stable: the order inside a scope is kept
