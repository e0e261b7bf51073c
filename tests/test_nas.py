"""Neural architecture search (cnnbook.nas): the space, the environment and the three search methods.

The searches are tested on cheap synthetic rewards with a known optimum; only the evaluator and DARTS
train real (tiny) networks, on a few random images.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cnnbook.data import DataBundle, ImageTensorDataset
from cnnbook.nas import (
    OPS, SPACE, Controller, DartsNetwork, Evaluator, MixedOp, NASData, SearchHistory, SearchSpace, arch_to_str,
    crossover, darts_search, discretize, make_op, mutate, mutate_op, mutate_skip, nas_budget,
    random_search, regularized_evolution, reinforce_search, tournament_select,
)

@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> object:
    """The networks here are tiny: one thread is faster, and immune to a busy machine. Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TARGET = ("conv3x3", "skip", "conv5x5", "none", "sep_conv3x3", "max_pool3x3")
TINY = SearchSpace(ops=("none", "skip", "conv3x3"), nodes=3)  # 3 edges, 27 architectures


def matches(arch: tuple[str, ...], target: tuple[str, ...] = TARGET) -> float:
    """A synthetic reward with a known optimum: the fraction of edges that agree with ``target``."""
    return sum(a == t for a, t in zip(arch, target)) / len(target)


def tiny_data(n_train: int = 64, n_val: int = 32, size: int = 8, classes: int = 3) -> NASData:
    """Random images whose class is their mean brightness (learnable), for real but fast training."""
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> TensorDataset:
        y = torch.arange(n) % classes
        x = torch.randn(n, 1, size, size, generator=g) * 0.5 + y.view(-1, 1, 1, 1).float()
        return TensorDataset(x, y)

    return NASData("tiny random", split(n_train), split(n_val), split(n_val), classes, (1, size, size))


# ---- the space -----------------------------------------------------------------------------------------
def test_space_size_and_edges() -> None:
    assert SPACE.num_edges == 6
    assert SPACE.edges == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert SPACE.size == 6**6 == 46_656
    assert TINY.size == 27 and len(list(TINY.all_archs())) == 27


def test_encode_decode_round_trip() -> None:
    codes = SPACE.encode(TARGET)
    assert all(isinstance(c, int) for c in codes)
    assert SPACE.decode(codes) == TARGET
    rng = random.Random(0)
    for _ in range(20):
        arch = SPACE.sample(rng)
        assert SPACE.decode(SPACE.encode(arch)) == arch
    hash(TARGET)  # plain data: usable as a cache key


@pytest.mark.parametrize("name", list(OPS))
def test_every_op_keeps_shape(name: str) -> None:
    x = torch.randn(2, 8, 6, 6)
    out = make_op(name, 8)(x)
    assert out.shape == x.shape
    if name == "none":
        assert torch.count_nonzero(out) == 0
    if name == "skip":
        assert torch.equal(out, x)


def test_ops_come_from_the_package_layers() -> None:
    from cnnbook.layers import ConvBNAct, DepthwiseSeparableConv

    assert isinstance(make_op("conv3x3", 4), ConvBNAct)
    assert isinstance(make_op("conv5x5", 4), ConvBNAct)
    assert isinstance(make_op("sep_conv3x3", 4), DepthwiseSeparableConv)


@pytest.mark.parametrize("name", list(OPS))
def test_build_every_op_forward_backward(name: str) -> None:
    net = SPACE.build((name,) * 6, num_classes=5, in_channels=3, channels=4)
    x = torch.randn(2, 3, 16, 16)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert net.arch == (name,) * 6
    assert net.stem[0].weight.grad is not None


def test_build_shapes_and_cells() -> None:
    net = SPACE.build(TARGET, num_classes=10, in_channels=1, channels=8, cells_per_stage=2)
    assert len(net.stage1) == len(net.stage2) == 2
    feats = net.forward_features(torch.randn(3, 1, 16, 16))
    assert feats.shape == (3, 16, 4, 4)  # 2C channels at H/4
    assert "1: conv3x3(0)" in arch_to_str(TARGET)


def test_a_cell_without_connections_outputs_zeros() -> None:
    net = SPACE.build(("none",) * 6, channels=4).eval()
    feats = net.stage1[0](torch.randn(1, 4, 8, 8))
    assert torch.count_nonzero(feats) == 0


@pytest.mark.parametrize(
    "arch, words",
    [
        (("conv3x3",) * 5, ["one operation per edge", "6", "got 5"]),
        (("conv3x3",) * 7, ["6", "got 7"]),
        (("conv3x3", "conv7x7", "skip", "skip", "skip", "skip"), ["unknown operation", "conv7x7", "(0, 2)"]),
        ("conv3x3", ["sequence"]),
    ],
)
def test_bad_architecture_raises(arch: object, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        SPACE.build(arch)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)


def test_bad_op_and_space_raise() -> None:
    with pytest.raises(ValueError, match="unknown operation 'conv9x9'"):
        make_op("conv9x9", 8)
    with pytest.raises(ValueError, match="unknown operation"):
        SearchSpace(ops=("skip", "dilated"))
    with pytest.raises(ValueError, match="nodes"):
        SearchSpace(nodes=1)
    with pytest.raises(ValueError, match="out of range"):
        SPACE.decode([0, 1, 2, 3, 4, 6])
    with pytest.raises(ValueError, match="channels"):
        SPACE.build(TARGET, channels=0)


# ---- evolution -----------------------------------------------------------------------------------------
def test_mutations_give_valid_different_architectures() -> None:
    rng = random.Random(0)
    for _ in range(50):
        arch = SPACE.sample(rng)
        for child in (mutate_op(arch, rng), mutate(arch, rng)):
            assert SPACE.validate(child) == child
            assert sum(a != b for a, b in zip(arch, child)) == 1


def test_mutate_skip_adds_or_removes_a_skip_connection() -> None:
    rng = random.Random(0)
    arch = ("conv3x3", "none", "conv3x3", "conv5x5", "conv3x3", "conv3x3")
    assert mutate_skip(arch, rng)[1] == "skip"  # the only none edge becomes a skip connection
    arch = ("conv3x3", "skip", "conv3x3", "conv5x5", "conv3x3", "conv3x3")
    assert mutate_skip(arch, rng)[1] == "none"  # the only skip connection is removed
    arch = ("conv3x3",) * 6  # nothing to toggle: falls back to changing one operation
    assert sum(a != b for a, b in zip(arch, mutate_skip(arch, rng))) == 1


def test_crossover_one_and_multi_point() -> None:
    rng = random.Random(1)
    a, b = ("conv3x3",) * 6, ("skip",) * 6
    for _ in range(20):
        child = crossover(a, b, rng, points=1)
        cut = child.index("skip")
        assert child == a[:cut] + b[cut:] and 1 <= cut <= 5
    child = crossover(a, b, rng, points=2)
    switches = sum(x != y for x, y in zip(child, child[1:]))
    assert switches == 2 and child[0] == "conv3x3" and child[-1] == "conv3x3"
    with pytest.raises(ValueError, match="points"):
        crossover(a, b, rng, points=6)


def test_tournament_picks_the_best_contestant() -> None:
    population = [(("skip",) * 6, 0.1), (TARGET, 0.9), (("none",) * 6, 0.0)]
    assert tournament_select(population, random.Random(0), size=3) == TARGET


def test_evolution_improves_and_beats_its_start() -> None:
    history = regularized_evolution(matches, evaluations=120, population=10, tournament=3, seed=0)
    curve = history.best_so_far()
    assert len(history.records) == 120
    assert all(b >= a for a, b in zip(curve, curve[1:]))  # best so far never drops
    assert curve[-1] > curve[9]  # better than the random initial population
    assert curve[-1] >= 5 / 6


@pytest.mark.parametrize("replace", ["oldest", "worst"])
def test_evolution_finds_the_optimum_of_a_tiny_space(replace: str) -> None:
    target = ("conv3x3", "none", "skip")
    history = regularized_evolution(lambda a: matches(a, target), 40, population=4, tournament=2,
                                    space=TINY, replace=replace, seed=0)
    assert history.best().arch == target and history.best().reward == 1.0


def test_evolution_is_deterministic_and_checks_arguments() -> None:
    runs = [regularized_evolution(matches, 20, population=5, tournament=2, seed=3) for _ in range(2)]
    assert [(r.arch, r.reward) for r in runs[0].records] == [(r.arch, r.reward) for r in runs[1].records]
    with pytest.raises(ValueError, match="replace"):
        regularized_evolution(matches, 20, replace="random")
    with pytest.raises(ValueError, match="initial population"):
        regularized_evolution(matches, 5, population=8)


def test_random_search_records_every_candidate() -> None:
    history = random_search(matches, 30, seed=0)
    assert [r.step for r in history.records] == list(range(1, 31))
    assert history.best().reward == max(history.rewards())


# ---- REINFORCE -----------------------------------------------------------------------------------------
def test_controller_starts_uniform_and_samples_valid_architectures() -> None:
    controller = Controller()
    assert torch.allclose(controller.probs(), torch.full((6, 6), 1 / 6))
    assert controller.entropy().item() == pytest.approx(6 * torch.log(torch.tensor(6.0)).item())
    arch, log_prob = controller.sample(torch.Generator().manual_seed(0))
    assert SPACE.validate(arch) == arch
    assert log_prob.item() == pytest.approx(6 * torch.log(torch.tensor(1 / 6)).item())
    log_prob.backward()
    assert controller.logits.grad is not None


def test_reinforce_shifts_the_policy_toward_high_reward() -> None:
    history = reinforce_search(matches, evaluations=150, lr=2.0, seed=0)
    probs = history.extra["probs"]
    target = torch.tensor(SPACE.encode(TARGET))
    p_start = probs[0][torch.arange(6), target].mean()
    p_end = probs[-1][torch.arange(6), target].mean()
    assert p_start == pytest.approx(1 / 6)
    assert p_end > 0.5  # the good operation of every edge became the likely one
    assert history.extra["controller"].most_likely() == TARGET
    late = sum(history.rewards()[-30:]) / 30
    early = sum(history.rewards()[:30]) / 30
    assert late > early + 0.2


def test_scaled_advantage_learns_from_rewards_a_point_apart() -> None:
    # Rewards like the proxy's: 0.90 plus at most one point for matching TARGET. The raw advantage is
    # ~0.005, so in 40 steps the policy stays uniform; scaled by the rewards' spread, it learns.
    def close(arch: tuple[str, ...]) -> float:
        return 0.90 + 0.01 * matches(arch)

    uniform = SPACE.num_edges * math.log(len(SPACE.ops))
    raw = reinforce_search(close, evaluations=40, lr=2.0, seed=0).extra["controller"]
    scaled = reinforce_search(close, evaluations=40, lr=0.5, seed=0, scale_advantage=True).extra["controller"]
    assert raw.entropy().item() > uniform - 0.1
    assert scaled.entropy().item() < 0.8 * uniform
    target = torch.tensor(SPACE.encode(TARGET))
    assert scaled.probs()[torch.arange(6), target].mean() > 1 / 6 + 0.1


def test_reinforce_checks_arguments() -> None:
    with pytest.raises(ValueError, match="baseline_decay"):
        reinforce_search(matches, 5, baseline_decay=1.0)


# ---- DARTS ---------------------------------------------------------------------------------------------
def test_mixed_op_with_equal_alphas_is_the_mean() -> None:
    mixed = MixedOp(4).eval()
    x = torch.randn(2, 4, 6, 6)
    weights = torch.softmax(torch.zeros(len(SPACE.ops)), dim=0)
    expected = torch.stack([op(x) for op in mixed.ops]).mean(dim=0)
    assert torch.allclose(mixed(x, weights), expected, atol=1e-6)
    one_hot = torch.zeros(len(SPACE.ops))
    one_hot[SPACE.ops.index("skip")] = 1.0
    assert torch.allclose(mixed(x, one_hot), x)
    with pytest.raises(ValueError, match="mixing weights"):
        mixed(x, torch.ones(3))


def test_darts_alphas_start_equal_and_receive_gradients() -> None:
    net = DartsNetwork(num_classes=3, in_channels=1, channels=4)
    assert torch.allclose(net.cell_weights(), torch.full((6, 6), 1 / 6))
    nn.functional.cross_entropy(net(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    assert net.alphas.grad is not None and net.alphas.grad.abs().sum() > 0
    assert all(p is not net.alphas for p in net.weight_parameters())
    assert net.arch_parameters() == [net.alphas]


def test_discretize_keeps_the_strongest_operation_but_never_none() -> None:
    weights = torch.full((6, 6), 0.1)
    for edge, name in enumerate(TARGET):
        weights[edge, SPACE.ops.index(name)] = 0.5
    expected = tuple("skip" if n == "none" else n for n in TARGET)  # edge 3: 'none' is dropped ...
    weights[3, SPACE.ops.index("skip")] = 0.3  # ... and the next strongest, skip, is kept
    assert discretize(weights) == expected
    with pytest.raises(ValueError, match="edges x operations"):
        discretize(torch.zeros(5, 6))


def test_darts_search_tiny_real_run_returns_a_valid_architecture() -> None:
    data = tiny_data()
    history = darts_search(data, epochs=1, batch_size=16, channels=4, device="cpu")
    (record,) = history.records
    assert SPACE.validate(record.arch) == record.arch
    assert "none" not in record.arch
    weights = history.extra["weights"]
    assert weights.shape == (1 + 4, 6, 6)  # 64 images / 16 per batch = 4 steps
    assert torch.allclose(weights[0], torch.full((6, 6), 1 / 6))
    assert not torch.allclose(weights[-1], weights[0])  # the alphas moved
    assert 0.0 <= record.reward <= 1.0


# ---- the environment ------------------------------------------------------------------------------------
def test_evaluator_trains_caches_and_is_deterministic() -> None:
    data = tiny_data()
    evaluator = Evaluator(data, epochs=1, batch_size=16, channels=4)
    first = evaluator(TARGET)
    assert 0.0 <= first.val_acc <= 1.0 and first.params > 0 and first.mult_adds > 0
    assert first.test_acc is None
    assert evaluator(list(TARGET)) is first  # cached: no second training
    assert evaluator.calls == 2 and evaluator.trainings == 1
    again = Evaluator(data, epochs=1, batch_size=16, channels=4)(TARGET)
    assert again.val_acc == first.val_acc  # same seed, same batches, same reward
    with pytest.raises(ValueError, match="unknown operation"):
        evaluator(("conv3x3",) * 5 + ("conv7x7",))


def test_evaluator_drives_a_search_and_measures_test_when_asked() -> None:
    data = tiny_data(n_train=32, n_val=16)
    evaluator = Evaluator(data, epochs=1, batch_size=16, channels=4, space=TINY, with_test=True)
    history = random_search(evaluator, 3, space=TINY, seed=0)
    assert isinstance(history, SearchHistory) and len(history.records) == 3
    assert all(r.test_acc is not None for r in evaluator.cache.values())


def test_nas_data_split_and_budgets() -> None:
    images = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    targets = torch.arange(50) % 5
    train = ImageTensorDataset(images, targets, [0.5], [0.25])
    test = ImageTensorDataset(images[:10], targets[:10], [0.5], [0.25])
    bundle = DataBundle("toy", "toy", "made in a test", train, test, [str(i) for i in range(5)])
    data = NASData.from_bundle(bundle, val_size=12)
    assert (len(data.train), len(data.val), len(data.test)) == (38, 12, 10)
    assert data.input_size == (1, 8, 8) and data.num_classes == 5
    with pytest.raises(ValueError, match="val_size"):
        NASData.from_bundle(bundle, val_size=50)
    assert nas_budget("budget").evaluations < nas_budget("full").evaluations
    with pytest.raises(ValueError, match="CNNBOOK_MODE"):
        nas_budget("huge")


def test_load_nas_data_in_budget_mode() -> None:
    from cnnbook.nas import load_nas_data

    budget = nas_budget("budget")
    data = load_nas_data(budget)
    assert data.input_size == (1, budget.image_size, budget.image_size)
    assert len(data.val) == budget.val_size and len(data.train) + len(data.val) == budget.train_size
    assert len(data.test) == budget.test_size
    assert data.num_classes == 10 and data.name in ("Fashion-MNIST", "generated grey shapes")


def test_plots_draw_from_histories() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnbook.nas import plot_cells, plot_mixing_weights, plot_policy, plot_search_progress

    rl = reinforce_search(matches, 10, seed=0)
    one = SearchHistory("one-shot")
    one.add(TARGET, 0.5, 1.0)
    figures = [
        plot_cells({"target": TARGET, "empty": ("none",) * 6, "all skip": ("skip",) * 6, "x": TARGET}),
        plot_search_progress([random_search(matches, 10, seed=0), rl, one]),
        plot_policy(rl.extra["probs"]),
        plot_mixing_weights(torch.softmax(torch.randn(5, 6, 6), dim=-1)),
    ]
    assert all(len(fig.axes) >= 1 for fig in figures)
    plt.close("all")
