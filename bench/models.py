"""Training-step speed of our networks against torchvision's, on the CPU.

For every registered network whose registry entry names a torchvision architecture, this script builds
ours and torchvision's, copies torchvision's (randomly initialised) weights into ours so that both do
identical arithmetic, and times one training step (forward, cross-entropy loss, backward; in train mode,
so batch normalisation uses batch statistics and dropout is active) on the same random batch.

Method: both models live in one process; after ``--warmup`` untimed steps each, ``--repeats`` timed
steps alternate between the two (ours first on even repetitions, torchvision first on odd ones), so
that drifts in machine load hit both alike; the table reports the median of each. The target is
ours / torchvision <= 1.05.

    python bench/models.py                          # every pair (about 5-10 minutes on 2 cores)
    python bench/models.py --models resnet18 vgg11 --repeats 3

Defaults: batch 4 of 3 x 112 x 112 images (Inception-v3, whose auxiliary head needs 299 x 299 in
training, gets 299 x 299), 2 threads (``torch.set_num_threads``), 2 warm-up steps and 5 timed steps
per model.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import warnings
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnbook

TARGET = 1.05


def pairs(selected: list[str] | None) -> list[tuple[str, str]]:
    """(our name, torchvision name) of every registered network with a torchvision counterpart."""
    available = [
        (name, cnnbook.get_model_info(name).torchvision)
        for name in cnnbook.list_models()
        if cnnbook.get_model_info(name).torchvision
    ]
    if not selected:
        return available  # type: ignore[return-value]
    known = dict(available)
    unknown = [name for name in selected if name not in known]
    if unknown:
        sys.exit(f"No torchvision counterpart for {', '.join(unknown)}; choose from: {', '.join(known)}")
    return [(name, known[name]) for name in selected]  # type: ignore[misc]


def loss_of(out: Any, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits; auxiliary outputs (GoogLeNet, Inception-v3 in training) weigh 0.3."""
    if isinstance(out, torch.Tensor):
        return F.cross_entropy(out, target)
    main, *aux = out
    return F.cross_entropy(main, target) + sum(0.3 * F.cross_entropy(a, target) for a in aux if a is not None)


def step(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> float:
    """Seconds for one forward + loss + backward."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss_of(model(x), target).backward()
    return time.perf_counter() - start


def build(name: str, tv_name: str) -> tuple[nn.Module, nn.Module]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's GoogLeNet/Inception warn about their default init
        theirs = torchvision.models.get_model(tv_name, weights=None)
    ours = cnnbook.get_model(name)
    ours.load_state_dict(theirs.state_dict(), strict=True)  # identical weights, identical work
    return ours.train(), theirs.train()


def bench_pair(name: str, tv_name: str, args: argparse.Namespace) -> tuple[float, float]:
    ours, theirs = build(name, tv_name)
    # Inception-v3 with its auxiliary head trains only on inputs of 299 x 299 or more (torchvision's too).
    size = max(args.size, getattr(ours, "min_input_size", 0))
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, size, size)
    target = torch.randint(0, 1000, (args.batch,))
    for _ in range(args.warmup):
        step(ours, x, target)
        step(theirs, x, target)
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for rep in range(args.repeats):
        order = [("ours", ours), ("theirs", theirs)]
        for key, model in order if rep % 2 == 0 else order[::-1]:
            times[key].append(step(model, x, target))
    del ours, theirs
    gc.collect()
    return statistics.median(times["ours"]) * 1e3, statistics.median(times["theirs"]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: every torchvision pair)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=112, help="input height and width")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0 or args.batch < 1 or args.size < 75 or args.threads < 1:
        parser.error("need --repeats >= 1, --warmup >= 0, --batch >= 1, --size >= 75, --threads >= 1")

    torch.set_num_threads(args.threads)
    selected = pairs(args.models)
    print(
        f"Training step (forward + cross-entropy + backward, train mode) of ours vs torchvision on the CPU\n"
        f"batch {args.batch} x 3 x {args.size} x {args.size}, {args.threads} threads, {args.warmup} warm-up + "
        f"{args.repeats} interleaved timed steps each, median; torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, {platform.processor() or platform.machine()}\n"
    )
    header = f"{'model':<18} {'ours ms':>9} {'torchvision ms':>15} {'ratio':>7}  target <= {TARGET}"
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    over = []
    for name, tv_name in selected:
        ours_ms, theirs_ms = bench_pair(name, tv_name, args)
        ratio = ours_ms / theirs_ms
        verdict = "PASS" if ratio <= TARGET else "over"
        if ratio > TARGET:
            over.append(name)
        print(f"{name:<18} {ours_ms:>9.1f} {theirs_ms:>15.1f} {ratio:>7.3f}  {verdict}", flush=True)
    print(f"\n{len(selected) - len(over)}/{len(selected)} within {TARGET}x"
          + (f"; over: {', '.join(over)}" if over else "") + f" ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
