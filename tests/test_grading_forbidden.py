"""Forbidden names found with ast (cnnbook.grading.forbidden_uses), value bands and visible cases.

Pure functions, no kernel: the end-to-end path through nbgrader is in tests/test_autograder_integrity.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from cnnbook import grading

BN = ["torch.nn.functional.batch_norm", "torch.nn.BatchNorm2d", "torch.nn.modules.batchnorm"]


def _uses(code: str, forbidden: list[str] = BN, setup: str = "") -> list[str]:
    cells = ([("setup", setup)] if setup else []) + [("answer", code)]
    return grading.forbidden_uses(cells, forbidden, trusted=["setup"])


@pytest.mark.parametrize("code", [
    "import torch\ny = torch.nn.functional.batch_norm(x, m, v)",
    "import torch.nn.functional as F\ny = F.batch_norm(x, m, v)",
    "from torch.nn import functional as F\ny = F.batch_norm(x, m, v)",
    "from torch.nn.functional import batch_norm\n",
    "from torch.nn.functional import batch_norm as bn\ny = bn(x)",
    "from torch import nn\nlayer = nn.BatchNorm2d(4)",
    "import torch.nn as tnn\nclass B(tnn.Module):\n    def __init__(self):\n        self.bn = tnn.BatchNorm2d(3)",
    "from torch.nn.modules.batchnorm import _BatchNorm\n",
    "from torch.nn.modules import batchnorm\nbatchnorm.BatchNorm2d(3)",
    "m = __import__('torch.nn.functional', fromlist=['x'])\nm.batch_norm(x)",
    "t = __import__('torch')\nt.nn.functional.batch_norm(x)",
    "import importlib\nF = importlib.import_module('torch.nn.functional')\nF.batch_norm(x)",
    "from importlib import import_module as im\nim('torch.nn').BatchNorm2d(3)",
    "import torch\nbn = getattr(torch.nn.functional, 'batch_norm')",
    "import torch\nf = getattr(getattr(torch, 'nn'), 'BatchNorm2d')",
    "import sys\nsys.modules['torch.nn.functional'].batch_norm(x)",
    "import torch\nnn_ = torch.nn\nfn = nn_.functional\nfn.batch_norm(x)",
    "exec('import torch.nn.functional as G\\nG.batch_norm(x)')",
    "from torch.nn import *\nBatchNorm2d(3)",
    "%time y = F.batch_norm(x, m, v)",
    "def f(x):\n    return (F := __import__('torch').nn.functional).batch_norm(x)",
])
def test_forbidden_uses_are_found_through_aliases_and_dynamic_imports(code: str) -> None:
    found = _uses(code, setup="import torch.nn.functional as F")
    assert found, code
    assert found[0].startswith("cell 'answer', line ") and "which this exercise forbids (" in found[0]


def test_the_message_names_the_call_the_cell_and_the_line() -> None:
    found = _uses("import torch\n\nimport torch.nn.functional as F\nout = F.batch_norm(x, m, v)")
    assert found == ["cell 'answer', line 4: uses torch.nn.functional.batch_norm (written `F.batch_norm`), "
                     "which this exercise forbids (torch.nn.functional.batch_norm)"]


def test_a_class_is_found_under_any_of_its_names() -> None:
    """torch.nn.BatchNorm2d is defined in torch.nn.modules.batchnorm: both spellings hit either rule."""
    assert _uses("import torch\ntorch.nn.modules.batchnorm.BatchNorm2d(3)", ["torch.nn.BatchNorm2d"])
    assert _uses("import torch\ntorch.nn.BatchNorm2d(3)", ["torch.nn.modules.batchnorm"])


def test_a_prefix_rule_forbids_everything_under_it() -> None:
    assert _uses("import torchvision.transforms.functional as TF\nTF.hflip(x)", ["torchvision"])
    assert _uses("from torchvision.transforms import v2\n", ["torchvision"])
    assert _uses("import torchvision\n", ["torchvision"])
    assert _uses("import cnnbook\nblock = cnnbook.layers.DenseBlock(4, 2, 4)", ["cnnbook.layers.DenseBlock"])
    assert _uses("from cnnbook.layers import DenseBlock as D\nD(4, 2, 4)", ["cnnbook.layers.DenseBlock"])
    assert _uses("import cnnbook.nas.darts as d\nd.MixedOp", ["cnnbook.nas.darts.MixedOp"])


@pytest.mark.parametrize("code", [
    "import torch\nimport torch.nn.functional as F\ny = F.relu(F.conv2d(x, w))\nz = torch.nn.LayerNorm",
    "from torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n"
    "        for i in range(3):\n            setattr(self, f'denselayer{i + 1}', nn.Conv2d(3, 3, 1))",
    "batch_norm = lambda x: (x - x.mean()) / x.std()\ny = batch_norm(x)",
    "import torchvision_like\n",
    "x = 'torch.nn.functional.batch_norm'\n",
    "%matplotlib inline\nimport torch\n",
    "import torch\ntorch.nn.functional.batch_norm_x = 1\n",
])
def test_honest_code_is_not_reported(code: str) -> None:
    assert _uses(code, BN + ["torchvision"]) == []


def test_the_instructors_cells_are_read_but_never_reported() -> None:
    setup = "import torch.nn.functional as F\nF.batch_norm  # shown in the prompt"
    assert _uses("y = F.relu(x)", setup=setup) == []
    assert _uses("y = F.batch_norm(x)", setup=setup)


@pytest.mark.parametrize(("code", "what"), [
    ("import torch\nf = getattr(torch.nn.functional, 'batch' + '_norm')", "looks up a computed name"),
    ("import importlib\nm = importlib.import_module(name)", "imports a computed name"),
    ("exec(bytes.fromhex(payload).decode())", "runs computed code"),
    ("%run helper.py", "runs code the grader cannot check"),
    ("def broken(:\n    pass", "not valid Python"),
])
def test_what_cannot_be_resolved_fails_closed(code: str, what: str) -> None:
    found = _uses(code)
    assert found and what in found[0], found


def test_no_rules_no_findings() -> None:
    assert grading.forbidden_uses({"a": "import torchvision"}, []) == []


# ---- bands ---------------------------------------------------------------------------------------------
def test_band_accepts_real_numbers_inside_only() -> None:
    assert grading.band_problems(0.8, [0.7, 0.9]) == []
    assert grading.band_problems(torch.tensor(0.75), [0.7, 0.9]) == []
    assert grading.band_problems(9, (0, 10)) == []
    assert grading.band_problems(0.95, [0.7, 0.9], "accuracy") == [
        "accuracy: your value 0.95 is outside the expected band [0.7, 0.9]"]
    for bad in (math.nan, math.inf, -math.inf):
        assert "not a finite number" in grading.band_problems(bad, [0, 1])[0]
    for bad in ("0.8", None, True, [0.8], torch.ones(2)):
        assert "expected a number between 0 and 1" in grading.band_problems(bad, [0, 1])[0]
    with pytest.raises(grading.GradingError, match=r"outside the expected band \[0, 1\]"):
        grading.check_band(2.0, [0, 1])


def test_judge_uses_the_band_of_a_value_item() -> None:
    ref = {"title": "Test accuracy", "band": [0.7, 0.9], "cases": [{"name": "accuracy"}]}
    assert grading.judge("x/acc", "value", [{"value": 0.75}], ref) is None
    assert grading.judge("x/acc", "value", [{"value": 0.5}], ref) == (
        "Test accuracy failed:\nanswer: your value 0.5 is outside the expected band [0.7, 0.9]")
    on_case = {"title": "Ratio", "cases": [{"name": "r", "band": [1.0, 2.0]}]}
    assert grading.judge("x/r", "value", [{"value": 1.5}], on_case) is None
    assert "band" not in repr(grading.inputs_only({**ref, "format": 1}))


# ---- visible cases -------------------------------------------------------------------------------------
def test_visible_case_fails_with_the_judges_message() -> None:
    def wrong_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
        return (size + padding - kernel_size) // stride + 1

    grading.check_case(lambda s, k: s - k + 1, (32, 5), 28, "conv_output_size")
    with pytest.raises(grading.GradingError) as info:
        grading.check_case(wrong_size, (224, 11), 55, "conv_output_size", kwargs={"stride": 4, "padding": 2},
                           name="AlexNet conv1")
    assert str(info.value) == "conv_output_size (case 'AlexNet conv1') failed:\nresult: expected 55, got 54"
    ref = {"title": "conv_output_size", "cases": [{"name": "AlexNet conv1", "args": [224, 11],
                                                   "kwargs": {"stride": 4, "padding": 2}, "expected": 55}]}
    rec = [{"measured": 54, "flags": []}]
    assert grading.judge("x/y", "function", rec, ref) == str(info.value)


def test_visible_case_runs_in_the_grading_dtype_and_compares_tensors() -> None:
    x = torch.arange(6, dtype=torch.float64).reshape(1, 1, 2, 3)
    grading.check_case(lambda t: t.mean(dim=(2, 3)), (x,), torch.tensor([[2.5]]), "global_avg_pool")
    with pytest.raises(grading.GradingError, match=r"global_avg_pool \(case 'visible'\) failed:\nresult: 1 of 1"):
        grading.check_case(lambda t: t.amax(dim=(2, 3)), (x,), torch.tensor([[2.5]]), "global_avg_pool")
    with pytest.raises(grading.GradingError, match="dtype differs: expected torch.float32, got torch.float64"):
        grading.check_case(lambda t: t.double(), (x,), x, "identity")


def test_only_the_graded_block_and_what_it_uses_is_searched() -> None:
    cells = [("setup", "import torch\nimport torch.nn.functional as F"),
             ("train_cell", "def batchnorm_train(x):\n    return F.batch_norm(x, None, None, training=True)"),
             ("helper_cell", "def _grad(y, xs):\n    return torch.autograd.grad(y, xs)"),
             ("backward_cell", "def batchnorm_backward(dout, x):\n    return _grad(x.sum(), (x,))")]
    rules = ["torch.autograd", "torch.nn.functional.batch_norm"]
    found = grading.forbidden_uses(cells, rules, trusted=["setup"], roots=["batchnorm_backward"])
    assert found == ["cell 'helper_cell', line 2: uses torch.autograd.grad, which this exercise forbids (torch.autograd)"]
    assert grading.forbidden_uses(cells, rules, trusted=["setup"], roots=["nothing_defined"])  # whole notebook
    assert grading.forbidden_uses(cells[:2], ["torch.autograd"], trusted=["setup"], roots=["batchnorm_train"]) == []


# ---- the hidden tests, read with ast (issue 17, holes 3 and 8) --------------------------------------------
def test_checks_are_found_however_the_call_is_written() -> None:
    source = '''### BEGIN HIDDEN TESTS
grading.check_function(
    lambda x: global_avg_pool(x),
    "ch04_nin_gap/global_avg_pool",
)
ITEM = "ch02_lenet/lenet"
grading.check_module(LeNet, ITEM)
from cnnbook.grading import check_value as cv
cv(count(model), item="ch02_lenet/count")
### END HIDDEN TESTS'''
    checks, problems = grading.find_checks(source)
    assert problems == []
    assert checks == [("function", "ch04_nin_gap/global_avg_pool", ["global_avg_pool", "x"]),
                      ("module", "ch02_lenet/lenet", ["LeNet"]), ("value", "ch02_lenet/count", ["count", "model"])]


def test_a_check_whose_item_cannot_be_told_fails_closed() -> None:
    checks, problems = grading.find_checks('grading.check_module(LeNet, "ch02/" + name)\nrun(grading.check_value)')
    assert checks == [] and len(problems) == 2 and "cannot tell which reference item" in problems[0]
    assert "not valid Python" in grading.find_checks("grading.check_module(")[1][0]


def test_hidden_lines_are_scrubbed_from_tracebacks() -> None:
    source = "grading.assert_shape(y, (2, 3))\n### BEGIN HIDDEN TESTS\ngrading.check_function(f, 'a/b')\n### END HIDDEN TESTS"
    hidden = grading.hidden_lines(source)
    assert hidden == ["### BEGIN HIDDEN TESTS", "grading.check_function(f, 'a/b')", "### END HIDDEN TESTS"]
    tb = ("\x1b[0;32m----> 1\x1b[0m grading.assert_shape(y, (2, 3))\n      2 ### BEGIN HIDDEN TESTS\n"
          "      3 grading.check_function(f, \x1b[0;34m'a/b'\x1b[0m)\n")
    assert grading.scrub(tb, hidden) == "\x1b[0;32m----> 1\x1b[0m grading.assert_shape(y, (2, 3))\n"


def test_records_never_block_on_a_fifo_or_follow_a_link(tmp_path) -> None:  # noqa: ANN001
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        grading.read_regular_file(fifo, 100)
    os.symlink(fifo, tmp_path / "link")
    with pytest.raises(OSError):
        grading.read_regular_file(tmp_path / "link", 100)
    os.mkfifo(grading.record_path(tmp_path, "a/b"))
    assert grading.load_record("a/b", tmp_path) == (None, "not a regular file")


def test_a_harness_root_is_followed_into_the_student_cells_it_calls() -> None:
    """ch06: the check names the instructor's harness (run_train_steps), which calls the student's train_step;
    a forbidden import in another block (the Inception module) must not cost the training step its points."""
    cells = [("setup", "import torch"),
             ("inception_module", "from cnnbook.layers import InceptionModule\nclass Inception(InceptionModule):\n    pass"),
             ("loss_cell", "def googlenet_loss(outputs, labels):\n    return outputs[0].sum()"),
             ("train_step", "def train_step(model, images):\n    return googlenet_loss(model(images), None)"),
             ("harness", "class Tiny(torch.nn.Module):\n    pass\n\ndef run_train_steps(images):\n"
                         "    return train_step(Tiny(), images)")]
    rules = ["cnnbook.layers"]
    trusted = ["setup", "harness"]
    assert grading.forbidden_uses(cells, rules, trusted=trusted, roots=["run_train_steps"]) == []
    found = grading.forbidden_uses(cells, rules, trusted=trusted, roots=["Inception"])
    assert found and all("cell 'inception_module'" in line for line in found)
    # a harness that does reach the forbidden block is caught through it
    cells[4] = ("harness", "def run_train_steps(images):\n    return train_step(Inception(), images)")
    assert grading.forbidden_uses(cells, rules, trusted=trusted, roots=["run_train_steps"])


def test_a_block_graded_by_its_own_check_is_charged_once() -> None:
    """ch12: the experiment calls the student's crop_flip, which its own check judges. A forbidden import in
    crop_flip costs crop_flip its points, not the experiment's too; the experiment's own uses still count."""
    cells = [("setup", "import torch"),
             ("crop_flip", "from torchvision.transforms.v2 import functional as TF\n"
                           "def crop_flip(images):\n    return TF.hflip(images)"),
             ("experiment", "def augment(images):\n    return crop_flip(images)\n\ngap_reduction = augment(1)")]
    rules = ["torchvision"]
    assert grading.forbidden_uses(cells, rules, trusted=["setup"], roots=["crop_flip"])
    assert grading.forbidden_uses(cells, rules, trusted=["setup"], roots=["gap_reduction"])  # without the stop
    assert grading.forbidden_uses(cells, rules, trusted=["setup"], roots=["gap_reduction"],
                                  graded_elsewhere=["crop_flip"]) == []
    cells[2] = ("experiment", "import torchvision\ndef augment(images):\n    return torchvision.transforms.v2."
                              "functional.vflip(crop_flip(images))\n\ngap_reduction = augment(1)")
    found = grading.forbidden_uses(cells, rules, trusted=["setup"], roots=["gap_reduction"],
                                   graded_elsewhere=["crop_flip"])
    assert found and all("cell 'experiment'" in line for line in found)


def test_a_harness_statement_depends_on_the_statements_above_it_in_its_cell() -> None:
    """ch02: the test cell trains the model in place with the student's train, then measures it; the measured
    value names only the model, yet the student's train is part of the graded block (and the settings cell)."""
    cells = [("setup", "import torch"),
             ("conv_output_size", "from cnnbook.calc import shapes\ndef conv_output_size(n):\n    return shapes.f(n)"),
             ("lenet", "class LeNet:\n    size = conv_output_size(28)"),
             ("train", "import torchvision\ndef train(model):\n    return torchvision.ops.x(model)"),
             ("test_experiment", "model = LeNet()\nlosses = train(model)\naccuracy = measure(model)")]
    rules = ["torchvision", "cnnbook.calc"]
    trusted = ["setup", "test_experiment"]
    found = grading.forbidden_uses(cells, rules, trusted=trusted, roots=["accuracy"], graded_elsewhere=["LeNet"])
    assert found and all("cell 'train'" in line for line in found)
    # a check whose only student code is graded elsewhere searches nothing (rather than the whole notebook)
    cells[3] = ("train", "def train(model):\n    return model")
    assert grading.forbidden_uses(cells, rules, trusted=trusted, roots=["accuracy"], graded_elsewhere=["LeNet"]) == []
    assert grading.forbidden_uses(cells, rules, trusted=trusted, roots=["accuracy"])  # LeNet followed without the stop
