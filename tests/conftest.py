"""Shared fixtures. Tests never touch the network and run on the CPU."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("CNNBOOK_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
