"""The training helper: a tiny model learns a tiny task, histories are complete, runs repeat exactly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnbook.train import History, aux_loss, evaluate, fit, get_device, plot_history, set_seed


def _blobs(n: int = 256, seed: int = 0) -> TensorDataset:
    """Two well separated Gaussian blobs as 1x4x4 'images'."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 4, 4, generator=g) + (y.float() * 4 - 2).view(-1, 1, 1, 1)
    return TensorDataset(x, y)


def _model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def _loaders() -> tuple[DataLoader, DataLoader]:
    return (DataLoader(_blobs(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
            DataLoader(_blobs(128, seed=1), batch_size=64))


def test_tiny_model_learns() -> None:
    train, test = _loaders()
    set_seed(0)
    history = fit(_model(), train, test, epochs=3, lr=0.05, progress=False)
    assert history.final_test_acc > 0.95
    assert history.train_loss[-1] < history.train_loss[0]


def test_history_fields() -> None:
    train, test = _loaders()
    history = fit(_model(), train, test, epochs=2, lr=1e-2, optimizer="adam", schedule="cosine", progress=False)
    assert isinstance(history, History) and history.epochs == 2
    for values in history.as_dict().values():
        assert len(values) == 2
    assert history.time[0] <= history.time[1] == history.train_time
    assert 0 <= history.cpu_time[0] <= history.cpu_time[1] == history.train_cpu_time
    assert all(0 <= a <= 1 for a in history.train_acc + history.test_acc)
    no_test = fit(_model(), train, None, epochs=1, lr=1e-2, progress=False)
    assert no_test.test_acc == [] and len(no_test.train_acc) == 1


def test_lr_groups_give_named_modules_their_own_learning_rate() -> None:
    train, _ = _loaders()
    set_seed(0)
    model = _model()                                       # Sequential: "1" and "3" are the two Linear layers
    body_before = model[1].weight.detach().clone()
    head_before = model[3].weight.detach().clone()
    fit(model, train, None, epochs=1, lr=1e-6, optimizer="adam", lr_groups={"3": 1e-2}, progress=False)
    body_step = (model[1].weight - body_before).abs().max().item()
    head_step = (model[3].weight - head_before).abs().max().item()
    assert body_step < 1e-4 < head_step                    # Adam moves each weight by about its lr per step
    model[1].requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        fit(model, train, None, epochs=1, lr=1e-3, lr_groups={"1": 1e-2}, progress=False)


def test_same_seed_same_run() -> None:
    runs = []
    for _ in range(2):
        train, test = _loaders()
        set_seed(1)
        model = _model()
        runs.append((fit(model, train, test, epochs=2, lr=0.05, seed=1, progress=False), model))
    (h1, m1), (h2, m2) = runs
    assert h1.train_loss == h2.train_loss and h1.test_acc == h2.test_acc
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_evaluate_matches_history() -> None:
    train, test = _loaders()
    model = _model()
    history = fit(model, train, test, epochs=1, lr=0.05, progress=False)
    loss, acc = evaluate(model, test)
    assert acc == pytest.approx(history.test_acc[-1]) and loss == pytest.approx(history.test_loss[-1])


class _WithAux(nn.Module):
    """Returns (main, aux) in training mode, like GoogLeNet."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _model()
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor):
        return (self.body(x), self.aux(x)) if self.training else self.body(x)


def test_tuple_outputs_need_a_loss_function() -> None:
    train, test = _loaders()
    with pytest.raises(TypeError, match="aux_loss"):
        fit(_WithAux(), train, test, epochs=1, lr=0.05, progress=False)
    history = fit(_WithAux(), train, test, epochs=2, lr=0.05, loss_fn=aux_loss(0.3), progress=False)
    assert history.final_test_acc > 0.9


def test_bad_arguments() -> None:
    train, test = _loaders()
    with pytest.raises(ValueError, match="optimizer"):
        fit(_model(), train, test, epochs=1, lr=0.1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(_model(), train, test, epochs=0, lr=0.1, progress=False)


def test_device_and_plot(monkeypatch) -> None:
    monkeypatch.setenv("CNNBOOK_MODE", "budget")
    assert get_device().type == "cpu"
    train, test = _loaders()
    histories = {"a": fit(_model(), train, test, epochs=2, lr=0.05, progress=False),
                 "b": fit(_model(), train, None, epochs=2, lr=0.01, progress=False)}
    fig = plot_history(histories, title="two runs")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.slow
def test_lenet_reaches_98_percent_on_the_offline_digits(tmp_path, monkeypatch, capsys) -> None:
    """Chapter 2's recipe: LeNet-5 (modern) on the scikit-learn digits with 5 distorted copies, 3 epochs.

    The target is at least 98% test accuracy. Its training time (about 6 CPU-seconds on the book's 2-core
    build machine) is a benchmark figure, not a test: a timed assertion fails on a loaded machine
    (it did, at 10.08 s against 10 s, while other work shared the CPU) without any change to the code.
    """
    import cnnbook
    from cnnbook.data import load_mnist

    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    data = load_mnist(image_size=32).with_distorted_copies(5, seed=0)
    train, test = data.loaders(batch_size=32, seed=0)
    set_seed(0)
    model = cnnbook.get_model("lenet5_modern")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the chapter does: LeNet's layers are too small to gain from threads
    try:
        history = fit(model, train, test, epochs=3, lr=0.05, optimizer="sgd", weight_decay=1e-3,
                      schedule="cosine", seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert history.final_test_acc >= 0.98


def test_evaluate_divides_loss_and_accuracy_by_the_targets_it_saw() -> None:
    """A sampler that visits half of the data set: both averages are over the 6 images seen, not the 12."""
    from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

    torch.manual_seed(0)
    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    model = torch.nn.Linear(4, 3)
    seen = list(range(6))
    loader = DataLoader(TensorDataset(x, y), batch_size=4, sampler=SubsetRandomSampler(seen))
    loss, acc = evaluate(model, loader)
    with torch.no_grad():
        logits = model(x[seen])
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y[seen])), rel=1e-6)
    assert acc == pytest.approx(float((logits.argmax(1) == y[seen]).float().mean()))
    with pytest.raises(ValueError, match="empty loader"):
        evaluate(model, DataLoader(TensorDataset(x[:0], y[:0]), batch_size=4))


def test_max_steps_ends_a_run_after_that_many_optimisation_steps(monkeypatch) -> None:
    train, test = _loaders()  # 8 batches per epoch
    for cap, epochs in (("3", 1), ("10", 2)):  # the epoch in which the cap falls is the last one
        model = _model()
        steps = []
        model[1].weight.register_hook(lambda grad: steps.append(1))  # one backward pass per optimisation step
        monkeypatch.setenv("CNNBOOK_MAX_STEPS", cap)
        history = fit(model, train, test, epochs=4, lr=0.05, progress=False)
        assert len(steps) == int(cap)
        assert history.epochs == epochs and len(history.test_acc) == epochs  # measured and evaluated
        assert all(torch.isfinite(torch.tensor(history.train_loss + history.test_loss)))
    monkeypatch.setenv("CNNBOOK_MAX_STEPS", "0")
    with pytest.raises(ValueError, match="CNNBOOK_MAX_STEPS"):
        fit(_model(), train, test, epochs=1, lr=0.05, progress=False)


def test_without_max_steps_a_run_is_unchanged(monkeypatch) -> None:
    monkeypatch.delenv("CNNBOOK_MAX_STEPS", raising=False)
    set_seed(0)
    plain = fit(_model(), *_loaders(), epochs=2, lr=0.05, progress=False)
    monkeypatch.setenv("CNNBOOK_MAX_STEPS", "1000")  # a cap the run never reaches changes nothing
    set_seed(0)
    capped = fit(_model(), *_loaders(), epochs=2, lr=0.05, progress=False)
    assert capped.train_loss == plain.train_loss and capped.test_acc == plain.test_acc
