"""The grading helpers (cnnbook.grading), the reference outputs and the autograder's nbgrader plugins.

Fast: no kernel is started here (tests/test_autograder_e2e.py runs nbgrader for real). The CUDA branch
of the tolerances is tested without a GPU by simulating the numeric noise of a float32 CUDA run on
results computed on the CPU.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import nbformat
import pytest
import torch
from torch import nn

import cnnbook
from cnnbook import grading

REPO = Path(__file__).resolve().parents[1]
REFERENCES = REPO / "autograder" / "references"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_LEAVES = ("cuda.matmul", "cudnn.conv", "cudnn.rnn", "mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn")


def _leaf(path: str) -> object:
    obj: object = torch.backends
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.fixture(autouse=True)
def _grading_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The grader's environment for each test; torch's global numeric settings are restored afterwards.

    It does not call ``enforce_numerics()``: the checkers must set the flags they need themselves, and
    the judge must not depend on its own process's flags (issue 13: a fixture that set them hid a
    judge that read them). ``test_cuda_records_are_judged_in_a_fresh_process`` checks the judge in a
    process that no fixture touched.
    """
    monkeypatch.setenv("CNNBOOK_REFERENCES", str(REFERENCES))
    monkeypatch.setenv("CNNBOOK_GRADING_DEVICE", "cpu")
    matmul = torch.get_float32_matmul_precision()
    saved = {path: _leaf(path).fp32_precision for path in _LEAVES}  # type: ignore[attr-defined]
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    deterministic = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.set_float32_matmul_precision(matmul)
    for path, value in saved.items():
        setattr(_leaf(path), "fp32_precision", value)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
    torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


# ---- the tolerance table ------------------------------------------------------------------------------------
def test_tolerance_table_covers_every_device_and_dtype() -> None:
    for device in ("cpu", "cuda"):
        rows = {dtype: grading.tolerance_for(device, dtype) for dtype in
                (torch.float64, torch.float32, torch.float16, torch.bfloat16)}
        assert rows[torch.float64].rtol < rows[torch.float32].rtol < rows[torch.float16].rtol < rows[torch.bfloat16].rtol
    assert grading.tolerance_for("cuda", torch.float32).rtol >= grading.tolerance_for("cpu", torch.float32).rtol
    assert grading.tolerance_for("cuda:1", torch.float32) == grading.tolerance_for("cuda", torch.float32)
    with pytest.raises(grading.GradingError, match="floating-point"):
        grading.tolerance_for("cpu", torch.int64)


def test_tolerances_are_documented_in_the_module_docstring() -> None:
    doc = grading.__doc__ or ""
    for (device, dtype), tol in grading.TOLERANCES.items():
        name = str(dtype).removeprefix("torch.")
        row = [line for line in doc.splitlines() if line.split()[:2] == [device, name]]
        assert row, f"{device} {name} missing from the table in the docstring"
        assert [float(v) for v in row[0].split()[2:4]] == [tol.rtol, tol.atol], row[0]


# ---- messages that say what differs ----------------------------------------------------------------------------
def _message(actual: object, expected: object, **kw: object) -> str:
    with pytest.raises(grading.GradingError) as info:
        grading.assert_close(actual, expected, "out", **kw)  # type: ignore[arg-type]
    return str(info.value)


def test_messages_name_the_difference() -> None:
    ref = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    assert "shape differs: expected (3, 4), got (4, 3)" in _message(ref.T.float(), ref)
    assert "dtype differs: expected torch.float32, got torch.float64" in _message(ref.clone(), ref, dtype=torch.float32)
    assert "expected a torch.Tensor of shape (3, 4), got list" in _message(ref.tolist(), ref)
    nan = ref.float().clone()
    nan[1, 2] = math.nan
    assert "1 NaN" in _message(nan, ref) and "(1, 2)" in _message(nan, ref)
    wrong = ref.float().clone()
    wrong[2, 1] += 0.5
    text = _message(wrong, ref)
    assert "1 of 12 values differ" in text and "at index (2, 1)" in text
    assert "got 9.5, expected 9" in text and "Largest error 0.5" in text
    assert "expected the int 28, got float 28.0 (use // for integer division)" in _message(28.0, 28)
    assert "expected 55, got 54" in _message(54, 55)
    assert "expected 2 items, got 3" in _message((1, 2, 3), (1, 2))
    assert "keys differ" in _message({"a": 1}, {"b": 1})
    with pytest.raises(grading.GradingError, match=r"check failed: the layers are named \(yours: x\)"):
        grading.check(False, "the layers are named", "yours: x")
    with pytest.raises(grading.GradingError, match=r"shape differs: expected \(2, 10\), got \(2, 7\)"):
        grading.assert_shape(torch.zeros(2, 7), (2, 10), "LeNet")


def test_integer_and_bool_tensors_compare_exactly() -> None:
    assert grading.compare(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3])) == []
    assert "first at index (2,)" in grading.compare(torch.tensor([1, 2, 4]), torch.tensor([1, 2, 3]))[0]
    assert grading.compare(torch.tensor([True]), torch.tensor([True])) == []


# ---- CPU and (simulated) CUDA ----------------------------------------------------------------------------------
_LENET_32 = 1  # the case of ch02_lenet/lenet with 32 x 32 images: the package's LeNet-5 with ReLU and max pooling


def _lenet_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The package's LeNet in float32 on the grader's stored weights and images, and the float64 reference."""
    ref = grading.load_reference("ch02_lenet/lenet")
    case = ref["cases"][_LENET_32]
    names = {"conv1": "features.0", "conv2": "features.3", "fc1": "classifier.0", "fc2": "classifier.2",
             "fc3": "classifier.4"}
    model = cnnbook.get_model("lenet5", act_layer=nn.ReLU, pool_layer=nn.MaxPool2d).eval()  # the 32 x 32 case
    state = {names[k.split(".")[0]] + "." + k.split(".", 1)[1]: v for k, v in case["state_dict"].items()}
    model.load_state_dict(state)
    x = case["steps"][0]["args"][0].float()
    with torch.no_grad():
        return model, model(x), case["steps"][0]["expected"]


def _noise(ref: torch.Tensor, relative: float) -> torch.Tensor:
    """Noise of ``relative`` times the reference's scale, as a run with other rounding would add."""
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(ref.shape, generator=gen, dtype=torch.float64) * relative * ref.abs().max()).float()


def test_correct_float32_cpu_result_passes_tightly() -> None:
    _, out, expected = _lenet_case()
    assert grading.compare(out, expected, dtype=torch.float32) == []
    error = (out.double() - expected).abs().max() / expected.abs().max()
    assert error < grading.tolerance_for("cpu", torch.float32).atol / 10  # a wide margin


def test_cuda_branch_accepts_gpu_float32_noise_and_rejects_wrong_answers() -> None:
    _, out, expected = _lenet_case()
    # a correct answer computed on a GPU with TF32 off: other algorithms, errors a few times the CPU's
    gpu_like = out + _noise(expected, 3e-5)
    assert grading.compare(gpu_like, expected, dtype=torch.float32, device_type="cuda") == []
    # ... which the CPU row would not accept: the rows differ for a reason
    assert grading.compare(gpu_like, expected, dtype=torch.float32, device_type="cpu") != []
    # a wrong answer (LeNet without its last ReLU) fails on both devices
    model, _, _ = _lenet_case()
    ref = grading.load_reference("ch02_lenet/lenet")["cases"][_LENET_32]
    x = ref["steps"][0]["args"][0].float()
    with torch.no_grad():
        h = model.forward_features(x).flatten(1)
        wrong = model.classifier[4](model.classifier[2](model.classifier[1](model.classifier[0](h))))
    for device in ("cpu", "cuda"):
        assert grading.compare(wrong, expected, dtype=torch.float32, device_type=device) != []
    assert grading.compare(wrong + _noise(expected, 3e-5), expected, dtype=torch.float32, device_type="cuda") != []


def test_tf32_sized_noise_is_too_large_for_float32_which_is_why_tf32_is_turned_off() -> None:
    _, out, expected = _lenet_case()
    tf32_like = out + _noise(expected, 1e-3)  # 10-bit mantissa: ~5e-4 per product, more after sums
    problems = grading.compare(tf32_like, expected, dtype=torch.float32, device_type="cuda")
    assert problems and "Largest error" in problems[0]


def test_half_precision_rows_are_looser() -> None:
    _, out, expected = _lenet_case()
    for dtype in (torch.float16, torch.bfloat16):
        low = out.to(dtype)
        assert grading.compare(low, expected, device_type="cuda") == []
        assert grading.compare(low, expected, device_type="cpu") == []
        # the same values in a float32 tensor are too coarse for the float32 row
        assert grading.compare(low.to(torch.float32), expected, device_type="cpu") != []


@pytest.mark.parametrize(
    ("device", "flip"),
    [
        ("cuda", lambda: setattr(torch.backends.cuda.matmul, "fp32_precision", "tf32")),
        ("cuda", lambda: setattr(torch.backends.cudnn, "allow_tf32", True)),
        ("cuda", lambda: torch.use_deterministic_algorithms(False)),
        ("cpu", lambda: torch.set_float32_matmul_precision("medium")),
    ],
)
def test_flags_flipped_by_student_code_are_named_and_reset(device: str, flip: object) -> None:
    grading.enforce_numerics()
    assert grading.numerics_problems(device) == []
    flip()  # type: ignore[operator]
    assert grading.numerics_problems(device)  # named, so a record made now fails with the flag's name
    grading.enforce_numerics()
    assert grading.numerics_problems(device) == []
    assert torch.get_float32_matmul_precision() == "highest"


def test_compare_never_reads_this_process_flags() -> None:
    """The judge may run in a process whose flags nobody set: comparing must not depend on them."""
    _, out, expected = _lenet_case()
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.allow_tf32 = True
    assert grading.compare(out, expected, dtype=torch.float32, device_type="cuda") == []


def test_recorded_flags_fail_the_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = "ch02_lenet/lenet"
    ref = grading.load_reference(item)
    cases, _ = _recorded(tmp_path, monkeypatch, item, lambda: grading.check_module(_LeNet, item))
    assert grading.judge(item, "module", cases, ref) is None
    tampered = [{**case, "flags": ["torch.backends.cudnn.benchmark is True"]} for case in cases]
    message = grading.judge(item, "module", tampered, ref)
    assert message and "numeric settings were changed: torch.backends.cudnn.benchmark is True" in message


_FRESH_JUDGE = """
import json, sys
from pathlib import Path
import torch
from cnnbook import grading
item, records, refs = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
assert not torch.are_deterministic_algorithms_enabled()  # nothing set the flags in this process
cases, why = grading.load_record(item, records)
print(json.dumps(grading.judge(item, "module", cases, grading.load_reference(item, refs), "cuda", why or "missing")))
"""


def test_cuda_records_are_judged_in_a_fresh_process(tmp_path: Path) -> None:
    """Issue 13: records a CUDA kernel wrote (float32, GPU-sized noise, tagged "cuda", flags as the
    kernel saw them) are judged by a fresh interpreter that never called enforce_numerics."""
    item = "ch02_lenet/lenet"
    ref = grading.load_reference(item)
    assert len(ref["cases"]) >= 1
    records = tmp_path / "records"
    records.mkdir()

    def verdict(outputs: list[torch.Tensor]) -> str | None:
        cases = [{"steps": [o], "flags": [], "device": "cuda", "state": {}} for o in outputs]
        grading.save_record(item, cases, records)
        proc = subprocess.run([sys.executable, "-c", _FRESH_JUDGE, item, str(records), str(REFERENCES)],
                              capture_output=True, text=True, timeout=300, env=_clean_env())
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    outputs = []
    for case in ref["cases"]:  # honest float32 results with noise of 3e-5 of the scale, as a GPU gives
        state = {k: v.float() for k, v in case["state_dict"].items()}
        lenet = _LeNet(**case.get("init_kwargs", {}))
        lenet.load_state_dict(state)
        with torch.no_grad():
            got = lenet.eval()(case["steps"][0]["args"][0].float())
        outputs.append(got + _noise(case["steps"][0]["expected"], 3e-5))
    assert verdict(outputs) is None
    outputs[0] = outputs[0] + _noise(ref["cases"][0]["steps"][0]["expected"], 3e-3)  # a wrong answer (errors 30 times the CUDA row)
    message = verdict(outputs)
    assert message and "values differ beyond the cuda torch.float32 tolerance" in message
    assert "numeric settings" not in message


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("CNNBOOK_", "CUBLAS_"))}


def test_flag_flipped_inside_a_graded_forward_is_caught() -> None:
    class Sneaky(nn.Module):
        def __init__(self, num_classes: int = 10, image_size: int = 28) -> None:
            super().__init__()
            side = ((image_size - 4) // 2 - 4) // 2
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2 = nn.Linear(16 * side * side, 120), nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.set_float32_matmul_precision("medium")  # bf16 matmuls on the CPU
            x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = torch.relu(self.fc1(torch.flatten(x, 1)))
            return self.fc3(torch.relu(self.fc2(x)))

    with pytest.raises(grading.GradingError, match="mkldnn.matmul.fp32_precision"):
        grading.check_module(Sneaky, "ch02_lenet/lenet")


# ---- checkers ---------------------------------------------------------------------------------------------------
def test_check_module_explains_wrong_names_and_shapes() -> None:
    with pytest.raises(grading.GradingError) as info:
        grading.check_module(lambda num_classes, image_size: nn.Sequential(nn.Conv2d(1, 6, 5)), "ch02_lenet/lenet")
    text = str(info.value)
    assert "missing (the exercise asks for these names): ['conv1.weight'" in text
    assert "unexpected: ['0.weight', '0.bias']" in text


def test_check_function_names_the_failing_case() -> None:
    def wrong(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
        return (size + padding - kernel_size) // stride + 1  # one side padded only

    with pytest.raises(grading.GradingError, match=r"case 'size=224, kernel_size=11, stride=4, padding=2'.*\n"
                                                   r"result: expected 55, got 54"):
        grading.check_function(wrong, "ch02_lenet/conv_output_size")


def test_tuple_results_are_named() -> None:
    def biased_running_var(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):  # noqa: ANN001
        y = nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, True, momentum, eps)
        dims = [0] + list(range(2, x.dim()))
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        return y, (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var

    with pytest.raises(grading.GradingError, match="new_running_var: 3 of 3 values differ"):
        grading.check_function(biased_running_var, "ch07_batchnorm/batchnorm_train")


def test_module_specs_are_limited_to_torch_and_cnnbook() -> None:
    assert isinstance(grading.build_module_spec({"__module__": "torch.nn:Linear",
                                                 "kwargs": {"in_features": 2, "out_features": 3}}), nn.Linear)
    frozen = grading.build_module_spec({"__module__": "cnnbook:lenet5", "frozen": ["features"]})
    assert not frozen.features[0].weight.requires_grad and frozen.classifier[0].weight.requires_grad
    with pytest.raises(ValueError, match="outside torch.nn and cnnbook"):
        grading.build_module_spec({"__module__": "os:system", "kwargs": {}})


def test_visible_helpers_do_not_need_references(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CNNBOOK_REFERENCES", str(tmp_path / "nowhere"))
    grading.assert_close(torch.ones(2), torch.ones(2), "ones")
    with pytest.raises(RuntimeError, match="make_references.py"):
        grading.load_reference("ch02_lenet/lenet")


# ---- the reference files ----------------------------------------------------------------------------------------
def test_manifest_matches_the_reference_files() -> None:
    assert grading.verify_manifest(REFERENCES) == []


def test_manifest_detects_tampering(tmp_path: Path) -> None:
    root = tmp_path / "references"
    shutil.copytree(REFERENCES, root)
    victim = next(iter(sorted(root.rglob("*.pt"))))
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    (root / "extra.pt").write_bytes(b"")
    problems = grading.verify_manifest(root)
    assert any("SHA-256 differs" in p and victim.name in p for p in problems)
    assert any("extra.pt: not listed" in p for p in problems)


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def test_references_are_float64_cpu_tensors_loaded_without_pickle() -> None:
    items = sorted(p.relative_to(REFERENCES).as_posix()[:-3] for p in REFERENCES.rglob("*.pt"))
    assert len(items) >= 40
    for item in items:
        ref = grading.load_reference(item)
        assert ref["cases"], item
        for tensor in _tensors(ref):
            assert tensor.device.type == "cpu"
            assert not tensor.is_floating_point() or tensor.dtype == torch.float64, item


def test_reference_loading_refuses_pickled_objects(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    torch.save({"format": grading.REFERENCE_FORMAT, "cases": [io.StringIO("not a tensor")]}, tmp_path / "x" / "bad.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        grading.load_reference("x/bad", tmp_path)


@pytest.mark.slow
def test_references_are_up_to_date_with_the_package() -> None:
    """Recompute every item from the package: a change to a layer must come with new references."""
    make = _load(REPO / "autograder" / "make_references.py", "make_references")
    assert make.main(["--check"]) == 0


def test_every_hidden_test_item_exists() -> None:
    """Every item a solution notebook's hidden tests name has a reference file, and vice versa."""
    named = set()
    for path in (REPO / "solutions").glob("*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for part in cell.source.split('"')[1::2]:
                if part.startswith(path.parent.name + "/"):
                    named.add(part)
    stored = {p.relative_to(REFERENCES).as_posix()[:-3] for p in REFERENCES.rglob("*.pt")}
    assert named == stored


# ---- the stderr rule and the plugins ----------------------------------------------------------------------------
def _grade_cell(outputs: list[dict]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("check()")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2,
                                 "grade_id": "test_x", "schema_version": 3}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


WARNING = {"output_type": "stream", "name": "stderr", "text": "UserWarning: To copy construct from a tensor...\n"}
ERROR = {"output_type": "error", "ename": "GradingError", "evalue": "shape differs", "traceback": []}


def test_stock_nbgrader_gives_zero_to_a_passing_test_that_wrote_to_stderr() -> None:
    from nbgrader.utils import determine_grade

    assert determine_grade(_grade_cell([]))[0] == 2
    assert determine_grade(_grade_cell([WARNING]))[0] == 0  # the rule the plugin exists for


def test_stderr_plugin_keeps_points_of_passing_tests_only() -> None:
    from nbgrader.utils import determine_grade

    plugins = _load(REPO / "autograder" / "grader_plugins.py", "grader_plugins")
    relabel = plugins.StderrIsNotFailure()
    passing, _ = relabel.preprocess_cell(_grade_cell([WARNING]), {}, 0)
    assert determine_grade(passing)[0] == 2
    assert passing.outputs[0]["text"] == WARNING["text"]  # still shown in the feedback
    failing, _ = relabel.preprocess_cell(_grade_cell([WARNING, ERROR]), {}, 0)
    assert determine_grade(failing)[0] == 0


def test_output_size_plugin_caps_long_lines() -> None:
    plugins = _load(REPO / "autograder" / "grader_plugins.py", "grader_plugins")
    cap = plugins.LimitOutputSize(max_chars=1000)
    cell = _grade_cell([{"output_type": "stream", "name": "stdout", "text": "x" * 5_000_000},
                        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                         "data": {"text/plain": "y" * 50_000, "text/html": "<b>" * 50_000}}])
    cell, _ = cap.preprocess_cell(cell, {}, 0)
    assert len(cell.outputs[0]["text"]) < 1200 and "truncated by the grader" in cell.outputs[0]["text"]
    assert set(cell.outputs[1]["data"]) == {"text/plain"} and len(cell.outputs[1]["data"]["text/plain"]) < 1200


def test_nbgrader_configuration() -> None:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "autograder")).load_config()
    course = config.CourseDirectory
    assert Path(course.root) == REPO / "autograder"
    assert Path(course.source_directory) == REPO / "solutions"
    assert Path(course.release_directory) == REPO / "exercises"
    assert config.OverwriteCells.add_missing_cells is True
    assert config.Autograde.create_student is False
    assert config.Execute.kernel_name == "python3"
    assert 30 <= config.Execute.timeout <= 600
    names = [cls.__name__ for cls in config.Autograde.autograde_preprocessors]
    assert names.index("StderrIsNotFailure") < names.index("SaveAutoGrades") < names.index("ReportScores")
    assert names[0] == "TrustedExecute"  # a GuardedExecute that isolates the kernel and judges outside it
    assert names.index("SaveAutoGrades") < names.index("FlagForReview")
    assert config.TrustedExecute.isolation in ("bwrap", "none")
    assert Path(config.TrustedExecute.references_dir) == REFERENCES


# ---- trusted grading: records written in the student's kernel, judged outside it ------------------------------
class _LeNet(nn.Module):
    """ch02's LeNet: 5x5 kernels without padding, ReLU, 2x2 max-pools, for image_size x image_size images."""

    def __init__(self, num_classes: int = 10, image_size: int = 28, relu2: bool = True) -> None:
        super().__init__()
        self.relu2 = relu2
        side = ((image_size - 4) // 2 - 4) // 2
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2 = nn.Linear(16 * side * side, 120), nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = self.conv2(x)
        x = nn.functional.max_pool2d(torch.relu(x) if self.relu2 else x, 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc3(torch.relu(self.fc2(x)))


def _recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, item: str, run) -> tuple[list | None, str]:  # noqa: ANN001
    """Run a checker as the student's kernel does under the grader (no expected values), load the record."""
    inputs = tmp_path / "inputs"
    ref = grading.load_reference(item)
    grading.save_reference({k: v for k, v in grading.inputs_only(ref).items() if k != "format"},
                           inputs / f"{item}.pt")
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    monkeypatch.setenv(grading.RECORD_ENV, str(records))
    monkeypatch.setenv("CNNBOOK_REFERENCES", str(inputs))
    run()  # never raises for a wrong answer: nothing to compare with in the kernel
    monkeypatch.delenv(grading.RECORD_ENV)
    monkeypatch.delenv("CNNBOOK_REFERENCES")
    return grading.load_record(item, records)


def test_inputs_only_has_no_expected_values() -> None:
    for item in ("ch02_lenet/lenet", "ch02_lenet/conv_output_size", "ch07_batchnorm/batchnorm_train"):
        text = repr(grading.inputs_only(grading.load_reference(item)))
        assert "'expected" not in text


def test_trusted_judge_gives_the_same_verdict_and_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = "ch02_lenet/lenet"
    ref = grading.load_reference(item)
    cases, why = _recorded(tmp_path, monkeypatch, item, lambda: grading.check_module(_LeNet, item))
    assert why == "" and grading.judge(item, "module", cases, ref) is None
    wrong = lambda num_classes=10, image_size=28: _LeNet(num_classes, image_size, relu2=False)  # noqa: E731
    cases, why = _recorded(tmp_path, monkeypatch, item, lambda: grading.check_module(wrong, item))
    message = grading.judge(item, "module", cases, ref)
    with pytest.raises(grading.GradingError) as local:
        grading.check_module(wrong, item)
    assert message == str(local.value) and "values differ beyond" in message


class Always(int):
    """An int that claims to equal anything."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


def test_lying_results_and_bad_records_score_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = "ch02_lenet/conv_output_size"
    ref = grading.load_reference(item)

    class Lies(torch.Tensor):
        pass

    cases, _ = _recorded(tmp_path, monkeypatch, item, lambda: grading.check_function(lambda *a, **k: Always(0), item))
    assert "got Always" in grading.judge(item, "function", cases, ref)
    assert grading.to_plain(torch.zeros(2).as_subclass(Lies)) == {"__unsupported__": "Lies"}
    records = tmp_path / "records"
    path = grading.record_path(records, item)
    torch.save({"format": 1, "item": item, "cases": [{"measured": Always(3)}]}, path)  # a pickled class
    cases, why = grading.load_record(item, records)
    assert cases is None and why.startswith("malformed")
    assert "is malformed" in grading.judge(item, "function", cases, ref, why_missing=why)
    path.unlink()
    path.symlink_to(REFERENCES / f"{item}.pt")  # a link to the reference itself
    assert grading.load_record(item, records) == (None, "unreadable (Too many levels of symbolic links)")
    path.unlink()
    assert grading.load_record(item, records) == (None, "missing")
    assert "no result was recorded" in grading.judge(item, "function", None, ref)


def test_sandbox_command_hides_the_course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = _load(REPO / "autograder" / "grader_sandbox.py", "grader_sandbox")
    monkeypatch.setenv("OMP_NUM_THREADS", "8")  # the grader's environment does not decide the kernel's threads
    if shutil.which("bwrap") is None:
        with pytest.raises(RuntimeError, match="bubblewrap"):
            sandbox.sandbox_command([sys.executable], tmp_path, tmp_path)
        return
    cmd = sandbox.sandbox_command([sys.executable, "-m", "ipykernel_launcher"], tmp_path / "s", tmp_path / "w",
                                  uid=65534)
    text = " ".join(cmd)
    assert "--unshare-net" in cmd and "--clearenv" in cmd and "--as=" in text and "--nproc=" in text
    bound = {cmd[i + 1] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")}
    assert not any(p == str(REPO) or p.startswith(str(REPO / "autograder")) or "solutions" in p for p in bound)
    # issue 17, hole 5: only what Python, torch and the kernel read of /etc, and a passwd of two users
    assert "/etc" not in bound and "/etc/shadow" not in bound and "/etc/ld.so.cache" in bound
    passwd = cmd[cmd.index("/etc/passwd") - 1]
    assert Path(passwd).read_text().count("\n") == 2 and ":65534:" in Path(passwd).read_text()
    env = {cmd[i + 1]: cmd[i + 2] for i, a in enumerate(cmd) if a == "--setenv"}
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"  # one CPU per student, one compute thread


def test_suspicious_constructs_are_found_in_student_cells_only() -> None:
    review = _load(REPO / "autograder" / "grader_review.py", "grader_review")
    nb = nbformat.read(REPO / "solutions" / "ch02_lenet" / "lenet.ipynb", as_version=4)
    assert review.suspicious_constructs(nb) == []  # the reference solution is clean
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "conv_output_size")
    answer.source += "\nget_ipython().input_transformers_post.append(lambda lines: [])"
    assert review.suspicious_constructs(nb)[0].startswith("an IPython hook")


@pytest.mark.parametrize(("code", "kind"), [
    ("exec(bytes.fromhex('7072696e74283129').decode())", "code built at run time"),
    ("getattr(ip, 'input_' + 'transformers_post')", "a computed attribute of a module or the shell"),
    ("from cnnbook import grading as g\ng.__dict__.update(check=print)", "a module's namespace written directly"),
    ("import cnnbook.grading as g\nvars(g)['check'] = print", "a module's namespace written directly"),
    ("import os\nos.symlink('/etc/passwd', 'lenet.ipynb')", "links or special files"),
    ("import os\nos.mkfifo('lenet.ipynb')", "links or special files"),
    ("import multiprocessing as mp\nmp.Process(target=print).start()", "processes, files or the network"),
    ("from cnnbook import grading\ngrading.check = lambda *a, **k: None", "a replaced checking function"),
    ("from cnnbook.grading import check\ncheck.__code__ = (lambda *a, **k: None).__code__",
     "a replaced checking function"),
])
def test_review_flags_see_through_computed_names(code: str, kind: str) -> None:
    review = _load(REPO / "autograder" / "grader_review.py", "grader_review")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    assert any(found.startswith(kind) for found in review.suspicious_constructs(nb)), review.suspicious_constructs(nb)


def test_honest_dynamic_layer_names_are_not_flagged() -> None:
    review = _load(REPO / "autograder" / "grader_review.py", "grader_review")
    code = ("from torch import nn\nclass Dense(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
            "        for i in range(n):\n            setattr(self, f'denselayer{i + 1}', nn.Conv2d(4, 4, 3))\n"
            "    def forward(self, x):\n        for i in range(2):\n            x = getattr(self, f'denselayer{i + 1}')(x)\n"
            "        return x")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    assert review.suspicious_constructs(nb) == []


def test_cuda_grading_without_working_cuda_stops_before_any_student(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: with CNNBOOK_GRADING_DEVICE=cuda, a CUDA that does not work inside the sandbox (here: no
    GPU at all) stops the run with the cause and the fix, instead of grading the class 0."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a working GPU: the preflight passes (run on the device machine)")
    trusted = _load(REPO / "autograder" / "grader_trusted.py", "grader_trusted")
    monkeypatch.setenv("CNNBOOK_GRADING_DEVICE", "cuda")
    isolation = "bwrap" if shutil.which("bwrap") else "none"
    execute = trusted.TrustedExecute(references_dir=str(REFERENCES), release_manifest="", isolation=isolation)
    execute._assignment = "ch02_lenet"
    with pytest.raises(RuntimeError) as info:
        execute._check_manifests()
    text = str(info.value)
    assert text.startswith("grading stopped before running any student code: CUDA preflight failed")
    assert "CNNBOOK_GRADING_DEVICE=cpu" in text
    if isolation == "bwrap":
        assert "inside the sandbox" in text and "no /dev/nvidia* device" in text
    with pytest.raises(RuntimeError, match="CUDA preflight failed"):  # the next student: same stop, no rerun
        execute._check_manifests()


def test_enforce_numerics_turns_on_deterministic_warn_only_without_loading_inductor() -> None:
    """A grading kernel pays no TorchInductor import (3 s of CPU per student) for the deterministic switch,
    and the switch is the one the public call sets; once Inductor is loaded, its own flag is set too."""
    code = """if True:
        import sys, torch
        from cnnbook import grading
        assert not torch.are_deterministic_algorithms_enabled()
        grading.enforce_numerics()
        print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              "torch._inductor" in sys.modules)
        import torch._inductor.config as inductor_config
        grading.enforce_numerics()
        print(inductor_config.deterministic)"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "False", "True"]
