"""Data-parallel training with ``torch.distributed``: how several GPUs are used today (chapter 3).

AlexNet (Krizhevsky et al. 2012) split the *model* over two GPUs because it did not fit in one. Today
every device usually holds a full copy (a *replica*) of the model and processes its own shard of each
mini-batch; after the backward pass the gradients of all replicas are averaged by an all-reduce, so
every replica takes the same optimiser step and the replicas stay identical. PyTorch implements this in
:class:`torch.nn.parallel.DistributedDataParallel` (DDP), one process per device.

:func:`run_data_parallel` runs it for real: rank 0 in the calling process, and ranks 1 ... W-1 started
by ``torch.multiprocessing.spawn`` (which needs an importable function, hence this module); each rank
trains a registered model for a few SGD steps on its shard of every global batch, and rank 0 reports
what it saw. Backend ``"gloo"`` runs on CPU processes, ``"nccl"`` on one GPU per process; the
code is otherwise the same. :func:`train_single_process` is the reference: one process, the whole global
batch per step, from the same initial weights.

With equal shards and no randomness inside the model (``dropout=0``), the mean of the replicas'
gradients is the gradient of the whole batch, so both runs agree up to float rounding.
"""

from __future__ import annotations

import ctypes
import gc
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from .registry import get_model

__all__ = ["DataParallelResult", "run_data_parallel", "train_single_process", "max_difference", "free_port"]


@dataclass
class DataParallelResult:
    """What rank 0 saw (or the single process, for :func:`train_single_process`)."""

    world_size: int                      # processes (replicas); 1 for the single-process reference
    backend: str                         # "gloo", "nccl", or "none" for the single process
    losses: list[float]                  # loss of the whole global batch at each step (mean over replicas)
    state_dict: dict[str, Tensor]        # rank 0's weights after the last step (on the CPU)
    initial_difference: float = 0.0      # max |w_0 - w_r| over replicas, before DDP broadcast rank 0's weights
    own_grad_norms: tuple[float, ...] = ()  # first step: norm of each replica's own gradient (its shard only)
    synced_grad_norm: float = 0.0        # first step: norm of the all-reduced gradient (the same on every rank)
    final_difference: float = 0.0        # max |w_0 - w_r| over replicas and parameters, after the last step


def free_port() -> int:
    """A TCP port on localhost that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def max_difference(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    if a.keys() != b.keys():
        raise ValueError("The two state dicts have different keys.")
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel())


def _flat(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _spread(x: Tensor, world_size: int) -> float:
    """max |x_0 - x_r| over the ranks (every rank must call it: it is a collective)."""
    copies = [torch.zeros_like(x) for _ in range(world_size)]
    dist.all_gather(copies, x)
    return max(float((copies[0] - c).abs().max()) for c in copies)


def _worker(
    rank: int, world_size: int, backend: str, port: int, model_name: str, model_kwargs: dict[str, Any],
    images: Tensor, targets: Tensor, steps: int, batch_size: int, lr: float, seed: int, timeout_s: float,
) -> DataParallelResult | None:
    """One rank of :func:`run_data_parallel`; returns rank 0's :class:`DataParallelResult`, None elsewhere."""
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))
    device = torch.device(f"cuda:{rank}") if backend == "nccl" else torch.device("cpu")
    try:
        torch.manual_seed(seed + rank)  # a different initialisation on each rank ...
        model = get_model(model_name, **model_kwargs).to(device)
        initial_difference = _spread(_flat(model), world_size)
        ddp = DistributedDataParallel(model)  # ... replaced by rank 0's weights (broadcast) here

        # Each rank reads its own shard: indices rank, rank + W, rank + 2W, ... (no shuffling), so that
        # step i of all ranks together covers images i*W*B ... (i+1)*W*B - 1, the single process's batch i.
        data = TensorDataset(images, targets)
        sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=False, drop_last=True)
        loader = DataLoader(data, batch_size=batch_size, sampler=sampler, drop_last=True)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9)

        losses: list[float] = []
        own_norms: tuple[float, ...] = ()
        synced_norm = 0.0
        for step, (x, y) in enumerate(loader):
            if step == steps:
                break
            x, y = x.to(device), y.to(device)
            if step == 0:  # this replica's own gradient, computed without communication (no_sync)
                with ddp.no_sync():
                    F.cross_entropy(ddp(x), y).backward()
                own = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().reshape(1)
                norms = [torch.zeros_like(own) for _ in range(world_size)]
                dist.all_gather(norms, own)
                own_norms = tuple(float(n) for n in norms)
                optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(ddp(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # DDP all-reduces (averages) the gradients during the backward pass
            if step == 0:
                synced_norm = float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm())
            optimizer.step()
            global_loss = loss.detach().clone()
            dist.all_reduce(global_loss)  # sum over ranks, for the record only
            losses.append(float(global_loss) / world_size)

        final_difference = _spread(_flat(model), world_size)
        if rank != 0:
            return None
        return DataParallelResult(
            world_size=world_size, backend=backend, losses=losses,
            state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            initial_difference=initial_difference, own_grad_norms=own_norms, synced_grad_norm=synced_norm,
            final_difference=final_difference,
        )
    finally:
        dist.destroy_process_group()


def _return_freed_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Started processes are charged beside their parent by a memory limit (a Binder or Docker cgroup counts
    the whole process tree), and a notebook that has trained networks keeps tens of MB of freed heap.
    Elsewhere than Linux with glibc this only collects garbage.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library (musl): nothing to trim
            pass


def _spawned(index: int, first_rank: int, threads: int, out_dir: str, *args: Any) -> None:
    """Entry point of a spawned process (importable, as ``spawn`` requires): rank ``first_rank + index``."""
    torch.set_num_threads(threads)
    result = _worker(first_rank + index, *args)
    if result is not None:  # rank 0, when it was spawned too
        torch.save(result, os.path.join(out_dir, "rank0.pt"))


def _check(images: Tensor, targets: Tensor, steps: int, global_batch: int) -> None:
    if steps < 1 or global_batch < 1:
        raise ValueError(f"steps and the batch size must be >= 1; got steps={steps}, batch={global_batch}.")
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets.")
    if len(images) < steps * global_batch:
        raise ValueError(f"{steps} steps of {global_batch} images need {steps * global_batch} images; "
                         f"got {len(images)}.")


def run_data_parallel(
    model_name: str,
    images: Tensor,
    targets: Tensor,
    *,
    world_size: int = 2,
    steps: int = 3,
    batch_size: int = 8,
    lr: float = 0.01,
    model_kwargs: dict[str, Any] | None = None,
    backend: str = "gloo",
    seed: int = 0,
    threads_per_process: int = 1,
    timeout_s: float = 120.0,
    rank0_here: bool = True,
) -> DataParallelResult:
    """Train ``model_name`` with DistributedDataParallel in ``world_size`` processes; return rank 0's view.

    Args:
        model_name: a registered network (``cnnbook.list_models()``), built with ``model_kwargs``; pass
            ``dropout=0.0`` there to compare with :func:`train_single_process` exactly.
        images, targets: the training data; step i uses images ``i*W*B ... (i+1)*W*B - 1``, split
            between the ``W = world_size`` ranks (``B = batch_size`` images each).
        steps: SGD steps (momentum 0.9, learning rate ``lr``).
        backend: ``"gloo"`` (CPU processes) or ``"nccl"`` (one GPU per process, ``cuda:<rank>``).
        seed: rank r builds its model from seed ``seed + r``; DDP then copies rank 0's weights to all.
        threads_per_process: ``torch.set_num_threads`` in each spawned process (1 on a small CPU machine).
        timeout_s: how long a collective may wait for the other processes before failing.
        rank0_here: run rank 0 in the calling process and spawn only ranks 1 ... W-1 (one process, and
            one copy of PyTorch in memory, fewer); False spawns all W ranks, as ``torchrun`` would.
    """
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise ValueError(f"nccl needs one GPU per process: {world_size} processes, "
                         f"{torch.cuda.device_count()} GPUs.")
    _check(images, targets, steps, world_size * batch_size)
    args = (world_size, backend, free_port(), model_name, dict(model_kwargs or {}), images, targets, steps,
            batch_size, lr, seed, timeout_s)
    _return_freed_memory()  # each spawned rank adds a whole PyTorch (about 0.4 GB) beside this process
    with tempfile.TemporaryDirectory(prefix="cnnbook-ddp-") as out_dir:
        first = 1 if rank0_here else 0
        others = mp.spawn(_spawned, args=(first, threads_per_process, out_dir, *args), nprocs=world_size - first,
                          join=False)
        if not rank0_here:
            while not others.join():  # raises if a rank failed
                pass
            return torch.load(os.path.join(out_dir, "rank0.pt"), weights_only=False)
        try:
            with torch.random.fork_rng(devices=[]):  # leave the caller's random state as it was
                result = _worker(0, *args)
        finally:
            while not others.join():  # raises if a spawned rank failed
                pass
        assert result is not None
        return result


def train_single_process(
    model_name: str,
    images: Tensor,
    targets: Tensor,
    *,
    steps: int = 3,
    batch_size: int = 16,
    lr: float = 0.01,
    model_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> DataParallelResult:
    """The reference for :func:`run_data_parallel`: one process, ``batch_size`` images per step.

    With ``batch_size = world_size x`` the data-parallel per-rank batch and the same ``seed``, it starts
    from the weights of rank 0 and sees the same images at every step.
    """
    _check(images, targets, steps, batch_size)
    torch.manual_seed(seed)
    model = get_model(model_name, **dict(model_kwargs or {}))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for step in range(steps):
        x, y = images[step * batch_size:(step + 1) * batch_size], targets[step * batch_size:(step + 1) * batch_size]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return DataParallelResult(world_size=1, backend="none", losses=losses,
                              state_dict={k: v.detach().clone() for k, v in model.state_dict().items()})
