"""Shared fixtures. Tests never touch the network and run on the CPU."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("CNNBOOK_OFFLINE", "1")

# `make test` runs the suite on every core with pytest-xdist (-n auto --dist loadgroup). Each worker then
# gets its share of the cores for torch and for the kernels it starts (nbgrader, the chapters' helpers),
# instead of every process assuming the whole machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = max(1, (os.cpu_count() or 1) // _WORKERS)
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
    torch.set_num_threads(_threads)

# Files whose tests share an expensive module fixture (a graded course, a started browser, a PostgreSQL
# server) run on one worker: every test is put in its file's xdist group unless it names its own group
# (tests/test_exercises_graded.py groups by assignment, so the assignments spread over the workers).
# The groups known to take minutes are queued first, so no worker is left with a long one at the end.
_FIRST = ("test_exercises_graded.py@ch08", "test_exercises_graded.py@ch12", "test_grade_class.py",
          "test_autograder_integrity.py", "test_accessibility.py", "test_exercises_graded.py@ch14",
          "test_exercises_graded.py@ch13", "test_pdf.py", "test_autograder_e2e.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def group(item: pytest.Item) -> str:
        mark = item.get_closest_marker("xdist_group")
        name = item.path.name
        if mark is None:
            item.add_marker(pytest.mark.xdist_group(name))
            return name
        return f"{name}@{mark.args[0] if mark.args else mark.kwargs.get('name', '')}"

    def rank(item: pytest.Item) -> int:
        key = group(item)
        return next((i for i, first in enumerate(_FIRST) if key.startswith(first)), len(_FIRST))

    items.sort(key=rank)  # stable: the order inside a group is kept


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
