"""Data-parallel training (cnnbook.distributed): two gloo processes agree with one process on the whole batch."""

from __future__ import annotations

import socket

import pytest
import torch

from cnnbook.distributed import free_port, max_difference, run_data_parallel, train_single_process

pytestmark = pytest.mark.timeout(300)  # two processes that each import torch: slow on a loaded machine

MODEL, KWARGS = "lenet5", dict(num_classes=10)  # the smallest registered network: 1 x 32 x 32 input


@pytest.fixture(scope="module")
def batches() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)


@pytest.fixture(scope="module")
def two_ranks(batches: tuple[torch.Tensor, torch.Tensor]):
    images, targets = batches
    return run_data_parallel(MODEL, images, targets, world_size=2, steps=2, batch_size=4, lr=0.05,
                             model_kwargs=KWARGS, timeout_s=120)


def test_replicas_identical_and_equal_to_one_process(two_ranks, batches) -> None:
    images, targets = batches
    one = train_single_process(MODEL, images, targets, steps=2, batch_size=8, lr=0.05, model_kwargs=KWARGS)
    assert two_ranks.world_size == 2 and two_ranks.backend == "gloo"
    assert two_ranks.initial_difference > 0          # the ranks started from different weights ...
    assert two_ranks.final_difference == 0.0         # ... DDP made them, and kept them, identical
    assert len(two_ranks.losses) == 2
    assert two_ranks.losses == pytest.approx(one.losses, rel=1e-4, abs=1e-5)
    assert max_difference(two_ranks.state_dict, one.state_dict) < 1e-5


def test_first_step_gradients(two_ranks) -> None:
    own = two_ranks.own_grad_norms
    assert len(own) == 2 and own[0] != pytest.approx(own[1])  # each rank's own shard gives its own gradient
    assert 0 < two_ranks.synced_grad_norm <= max(own) + 1e-6   # the average is no longer than the longest


def test_input_checks(batches) -> None:
    images, targets = batches
    with pytest.raises(ValueError, match="need"):
        run_data_parallel(MODEL, images, targets, steps=3, batch_size=4)  # 3 x 8 > 16 images
    with pytest.raises(ValueError, match="targets"):
        train_single_process(MODEL, images, targets[:3])


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))


def test_max_difference() -> None:
    a = {"w": torch.zeros(3)}
    assert max_difference(a, {"w": torch.tensor([0.0, -2.0, 1.0])}) == 2.0
    with pytest.raises(ValueError):
        max_difference(a, {"v": torch.zeros(3)})


def test_all_ranks_spawned(batches) -> None:
    images, targets = batches
    spawned = run_data_parallel(MODEL, images, targets, world_size=2, steps=1, batch_size=4, lr=0.05,
                                model_kwargs=KWARGS, rank0_here=False, timeout_s=120)
    one = train_single_process(MODEL, images, targets, steps=1, batch_size=8, lr=0.05, model_kwargs=KWARGS)
    assert spawned.final_difference == 0.0
    assert max_difference(spawned.state_dict, one.state_dict) < 1e-5
