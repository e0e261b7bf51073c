"""Autograder integrity (issue 7): crafted submissions that try to raise their own score, read what they
must not, or touch other students' grades, graded for real by `nbgrader autograde` in one isolated run
beside honest submissions. Each asserts the exact score the honest work in it deserves.

Assignment ch05_vgg/vgg, 9 autograded points: test_receptive_field 2, test_vgg_parameters 2,
test_vgg_features 2, test_sgd_update 3; each test cell runs visible checks and a hidden one.
Most attacks wrap a wrong VGG body (AlexNet's overlapping 3x3 max-pool, stride 2, padding 1, instead of
VGG's 2x2: the same layers, parameters and output shapes, so the checks made in the kernel pass, but other
values: the value checks, a visible case on published weights and the hidden probe, both judged outside the
kernel, fail, so test_vgg_features must score 0) in a trick that would pass them under stock nbgrader.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Callable

import nbformat
import pytest
from nbgrader_course import printed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "autograder"))
ASSIGNMENT, NOTEBOOK, COURSE_ID = "ch05_vgg", "vgg", "cnnbook"
AUTO = {"test_receptive_field": 2.0, "test_vgg_parameters": 2.0, "test_vgg_features": 2.0, "test_sgd_update": 3.0}
# AlexNet's overlapping max-pool instead of VGG's 2x2: layers, parameters and shapes right, values wrong
OVERLAPPING_POOL = ("nn.MaxPool2d(kernel_size=2, stride=2)", "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)")


def scores(**changes: float) -> dict[str, float]:
    return {**AUTO, **changes}


WRONG = scores(test_vgg_features=0)  # what the wrong VGG body deserves


def _answers() -> dict[str, str]:
    nb = nbformat.read(REPO / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: "\n".join(
        ln for ln in c.source.splitlines() if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
        for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def notebook(root: Path, edits: dict[str, Callable[[str], str]] | None = None, wrong: bool = True) -> nbformat.NotebookNode:
    nb = nbformat.read(root / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    answers = _answers()
    if wrong:
        assert OVERLAPPING_POOL[0] in answers["vgg_features"]
        answers["vgg_features"] = answers["vgg_features"].replace(*OVERLAPPING_POOL)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
        if gid in (edits or {}):
            cell.source = edits[gid](cell.source)
    return nb


def cell(nb: nbformat.NotebookNode, gid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def prepend(code: str) -> Callable[[str], str]:
    return lambda source: code + "\n" + source


def append(code: str) -> Callable[[str], str]:
    return lambda source: source + "\n" + code


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(source: str) -> str:
        assert old in source, old  # an edit that changes nothing would test nothing
        return source.replace(old, new)

    return edit


# ---- 1. tampering with the notebook ------------------------------------------------------------------------
def tampered(root: Path) -> nbformat.NotebookNode:
    nb = notebook(root)
    features = cell(nb, "test_vgg_features")
    features.source = "pass  # passes"
    features.metadata["nbgrader"]["points"] = 50
    features.outputs = [nbformat.v4.new_output("stream", name="stdout", text="all tests passed")]
    features.execution_count = 1
    field = cell(nb, "test_receptive_field")
    field.cell_type = "markdown"  # a test cell turned into text
    field.pop("outputs", None)
    field.pop("execution_count", None)
    update = cell(nb, "test_sgd_update")
    del update.metadata["nbgrader"]  # metadata stripped: nbgrader no longer knows the cell
    update.source = "# " + update.source.replace("\n", "\n# ")
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_vgg_parameters"]
    return nb


# ---- 2. monkeypatching what the checks rely on ---------------------------------------------------------------
MONKEYPATCH = """
import numpy, torch
from cnnbook import grading
grading.check_module = grading.check_function = lambda *args, **kwargs: None
grading.compare = lambda *args, **kwargs: []
grading.assert_close = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
numpy.testing.assert_allclose = lambda *args, **kwargs: None
"""

LYING = """
class Always(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
class Lies(torch.Tensor):
    def __eq__(self, other): return torch.ones((), dtype=torch.bool)
import builtins
builtins.all = lambda iterable: True
"""
FLAGS = """
    torch.set_float32_matmul_precision("medium")   # bf16 matmuls on the CPU, inside the graded call
    torch.use_deterministic_algorithms(False)"""

# ---- 3. hooking the interpreter -----------------------------------------------------------------------------
BLANK_LATER_CELLS = """
get_ipython().input_transformers_post.append(lambda lines: [])   # every later cell runs as empty
"""
HIDE_ERRORS = """
import atexit, sys
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
sys.excepthook = lambda *args: None
atexit.register(lambda: print("bye"))
"""
BODY_DOC = '    """The convolutional body described by one row of VGG\'s table."""\n'

# ---- 5. reaching outside the submission -----------------------------------------------------------------
OUTSIDE = """
import os, socket, sqlite3
attempts = {{}}
def attempt(name, action):
    try:
        action()
        attempts[name] = "ok"
    except Exception as exc:
        attempts[name] = type(exc).__name__
attempt("read_reference", lambda: open("{refs}/{assignment}/vgg_features.pt", "rb").read())
attempt("read_solution", lambda: open("{root}/solutions/{assignment}/{notebook}.ipynb").read())
attempt("list_submitted", lambda: os.listdir("{course}/submitted"))
attempt("write_gradebook", lambda: sqlite3.connect("{course}/gradebook.db").execute("UPDATE grade SET auto_score = 99").connection.commit())
attempt("write_other_student", lambda: open("{course}/autograded/honest/{assignment}/pwned.txt", "w").write("x"))
# a listener the test holds on the host's loopback: a kernel sharing the host's network would reach it
attempt("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
attempt("read_etc_hostname", lambda: open("/etc/hostname").read())
attempt("read_etc_shadow", lambda: open("/etc/shadow").read())
print("ATTEMPTS", repr(attempts))
print("ETC", repr(sorted(os.listdir("/etc"))))
"""

# ---- 6. resource abuse -------------------------------------------------------------------------------------
BOMB = (  # a fork bomb whose children sleep, run by a small Python process (quick to fork)
    "import os, signal, time\n"
    "kids = []\n"
    "try:\n"
    "    while len(kids) < 100_000:\n"
    "        pid = os.fork()\n"
    "        if pid == 0:\n"
    "            time.sleep(30)\n"
    "            os._exit(0)\n"
    "        kids.append(pid)\n"
    "except OSError as exc:\n"
    "    print(len(kids), type(exc).__name__)\n"
    "for pid in kids:\n"
    "    os.kill(pid, signal.SIGKILL)\n"
    "    os.waitpid(pid, 0)\n"
)
RESOURCES = f"""
import subprocess, sys
bomb = subprocess.run([sys.executable, "-c", {BOMB!r}], capture_output=True, text=True, timeout=50)
print("fork stopped after", bomb.stdout.strip(), "children")
try:
    hog = bytearray(64 * 2**30)              # 64 GiB
except MemoryError:
    print("memory limit hit")
print("x" * 50_000_000)                      # one 50 MB line
"""

# ---- issue 17: the writer, the record reader, the check finder, the feedback --------------------------------
# run in the sgd_update cell, after test_vgg_features has saved the record of its hidden check
CLOBBER = """
import os
records = os.environ.get("CNNBOOK_GRADING_RECORD", ".")
for path in ("vgg.ipynb", os.path.join(records, "ch05_vgg__vgg_features.pt")):
    try:
        os.remove(path)
    except OSError:
        pass
os.symlink("{victim}", "vgg.ipynb")            # the writer would write the graded notebook through it
os.mkfifo(os.path.join(records, "ch05_vgg__vgg_features.pt"))   # the judge would block opening it
"""
FIFO_NOTEBOOK = """
import os
try:
    os.remove("vgg.ipynb")
except OSError:
    pass
os.mkfifo("vgg.ipynb")                         # the writer's open() would block the whole batch
"""
# A blank block: its visible check fails two lines above the hidden check of the same test cell.
STUB = ("def vgg_parameters(cfg, in_channels: int = 3, image_size: int = 224, num_classes: int = 1000,\n"
        "                   hidden: int = 4096) -> int:\n    raise NotImplementedError()\n")
# The hidden check of test_vgg_features as the old regular expression missed it: several lines, a
# trailing comma, the item in a variable. Only hidden lines change, so the release is the same.
HIDDEN_CHECK = 'grading.check_function(vgg_features, "ch05_vgg/vgg_features")'
HIDDEN_VGG = 'ITEM = "ch05_vgg/vgg_features"\ngrading.check_function(\n    vgg_features,\n    ITEM,\n)'
MANY_FILES = {f"data/f{i:03d}.txt": "x\n" for i in range(60)}  # over the cap of 50 set for this run

SHADOW_FILES = {
    "numpy.py": "raise SystemExit('the submitted numpy.py was imported')\n",
    "torch.py": "raise SystemExit('the submitted torch.py was imported')\n",
    "cnnbook/__init__.py": "",
    "cnnbook/grading.py": "def check_module(*a, **k): pass\ndef check_function(*a, **k): pass\n"
                          "def assert_close(*a, **k): pass\ndef assert_shape(*a, **k): pass\ndef check(*a, **k): pass\n",
    "references/ch05_vgg/vgg_features.pt": "not a reference\n",
}

# student id -> (notebook builder, extra files, exact autograded scores, flagged for review)
SUBMISSIONS: dict[str, tuple[Callable[[Path, Path], nbformat.NotebookNode], dict[str, str], dict[str, float], bool]] = {
    "honest": (lambda r, c: notebook(r, wrong=False), {}, AUTO, False),
    "honest_wrong": (lambda r, c: notebook(r), {}, WRONG, False),
    "a1_tamper": (lambda r, c: tampered(r), {}, WRONG, False),
    # the checks it disabled record nothing: 0 for them, even the one whose code is right
    "a2_monkeypatch": (lambda r, c: notebook(r, {"vgg_features": prepend(MONKEYPATCH)}), {},
                       scores(test_vgg_features=0, test_sgd_update=0), True),
    # a correct VGG body built under flipped precision flags; a count that claims to equal anything
    "a2_lying": (lambda r, c: notebook(r, {"vgg_features": replace(BODY_DOC, BODY_DOC + FLAGS + "\n"),
                                           "vgg_parameters": lambda s: LYING + "\n"
                                           + replace("    return total", "    return Always(0)")(s)}, wrong=False), {},
                 scores(test_vgg_parameters=0, test_vgg_features=0), True),
    "a3_blank_cells": (lambda r, c: notebook(r, {"vgg_features": prepend(BLANK_LATER_CELLS)}), {},
                       scores(test_vgg_features=0, test_sgd_update=0), True),
    "a3_hide_errors": (lambda r, c: notebook(r, {"vgg_features": prepend(HIDE_ERRORS + "\nraise RuntimeError('half done')")}),
                       {}, scores(test_vgg_features=0), True),
    # the graded call ends the kernel: that test and the cells after it score 0
    "a3_exit_in_call": (lambda r, c: notebook(r, {"sgd_update": replace(
        "    objective_grad = ", "    import os\n    os._exit(0)\n    objective_grad = ")}, wrong=False), {},
        scores(test_sgd_update=0), False),
    "a4_shadow": (lambda r, c: notebook(r), SHADOW_FILES, WRONG, False),
    "a5_outside": (lambda r, c: notebook(r, {"vgg_features": append(OUTSIDE.format(
        refs=c / "references", root=r, course=c, assignment=ASSIGNMENT, notebook=NOTEBOOK,
        port=HOST_LISTENER.getsockname()[1]))}), {}, WRONG, True),
    "a6_resources": (lambda r, c: notebook(r, {"sgd_update": prepend(RESOURCES)}, wrong=False), {}, AUTO, True),
    # hole 1 (notebook replaced by a link to a course file) and hole 2 (FIFO at the record of
    # test_vgg_features): the record is not a regular file, so test_vgg_features scores 0; the link never
    # reaches the writer
    "h1_symlink": (lambda r, c: notebook(r, {"sgd_update": prepend(CLOBBER.format(victim=c / "victim.txt"))},
                                         wrong=False), {}, scores(test_vgg_features=0), True),
    "h2_fifo": (lambda r, c: notebook(r, {"sgd_update": prepend(FIFO_NOTEBOOK)}, wrong=False), {}, AUTO, True),
    # hole 8: a blank block whose test cell also holds a hidden test; hole 6: more files than the cap
    "h8_blank": (lambda r, c: notebook(r, {"vgg_parameters": lambda s: STUB}, wrong=False), MANY_FILES,
                 scores(test_vgg_parameters=0), False),
}


# Network isolation is tested against this machine only: a socket listening on the host's loopback, which a
# kernel in its own network namespace cannot reach (its 127.0.0.1 is another interface) and a kernel sharing the
# host's network would. No test sends traffic anywhere else.
HOST_LISTENER = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
HOST_LISTENER.bind(("127.0.0.1", 0))
HOST_LISTENER.listen(8)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: `make sandbox` (apt-get install bubblewrap)")
    root = tmp_path_factory.mktemp("course")
    os.chmod(root, 0o755)
    ignore = shutil.ignore_patterns("submitted", "autograded", "feedback", "gradebook*", "__pycache__", "*.csv",
                                    "gradebook.db.changes.log")
    shutil.copytree(REPO / "autograder", root / "autograder", ignore=ignore)
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT)
    source = nbformat.read(root / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    features = cell(source, "test_vgg_features")
    assert HIDDEN_CHECK in features.source
    features.source = features.source.replace(HIDDEN_CHECK, HIDDEN_VGG)
    nbformat.write(source, root / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    course = root / "autograder"
    (course / "victim.txt").write_text("a course file\n")
    os.chmod(course / "victim.txt", 0o640)
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write("\nc.Execute.timeout = 60\nc.TrustedExecute.max_processes = 256\nc.TrustedExecute.max_files = 50\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CNNBOOK_ISOLATION": "bwrap",
           "PYTHONWARNINGS": "ignore"}
    env.pop("CNNBOOK_REFERENCES", None)

    def nbgrader(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True,
                              timeout=1500)

    (course / "students.csv").write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s},S,\n" for s in [*SUBMISSIONS, "other"]))
    for args in (("db", "student", "import", "students.csv"), ("generate_assignment", ASSIGNMENT)):
        proc = nbgrader(*args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    # another assignment of another student, already graded: must not change
    con = sqlite3.connect(course / "gradebook.db")
    con.execute("INSERT INTO assignment (id, name, course_id) VALUES ('old', 'ch00_old', 'cnnbook')")
    con.execute("INSERT INTO submitted_assignment (id, assignment_id, student_id) VALUES ('sa-old', 'old', 'other')")
    con.commit()
    con.close()
    for sid, (build, files, _, _) in SUBMISSIONS.items():
        folder = course / "submitted" / sid / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-03-02 09:30:00.000000 UTC")
        nbformat.write(build(root, course), folder / f"{NOTEBOOK}.ipynb")
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
    before = _snapshot(root)
    import grader_limits

    grader_limits.limits_mechanism()  # chosen (and left-over groups swept) now, not after the run: see _cgroups_of
    autograde = subprocess.Popen([str(BIN / "nbgrader"), "autograde", ASSIGNMENT], cwd=course, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = autograde.communicate(timeout=1500)
    CGROUPS_LEFT.extend(_cgroups_of(autograde.pid))  # at once: the next grader on the machine sweeps them
    proc = subprocess.CompletedProcess(autograde.args, autograde.returncode, out, err)
    (root / "autograde.log").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for student in ("honest_wrong", "h8_blank"):
        feedback = nbgrader("generate_feedback", ASSIGNMENT, f"--student={student}")
        assert feedback.returncode == 0, feedback.stderr[-3000:]
    SNAPSHOTS.update(before=before, after=_snapshot(root))
    return course, proc.stderr


SNAPSHOTS: dict[str, dict[str, tuple[str, int]]] = {}
CGROUPS_LEFT: list[str] = []


def _cgroups_of(pid: int) -> list[str]:
    """The per-student cgroups that the grading process ``pid`` made and did not remove (grader_limits.py).
    The mechanism was chosen before grading: choosing it sweeps the groups of graders no longer running."""
    import grader_limits

    return [str(g) for parent in grader_limits._LIMITS["parents"].values() for g in parent.glob(f"{pid}-*")]
_GRADING_OUTPUTS = ("submitted", "autograded", "feedback", "gradebook", "__pycache__", "autograde.log")


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and mode of every file and folder outside what grading writes (students' folders, the gradebook)."""
    import hashlib

    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (any(part.startswith(_GRADING_OUTPUTS) for part in rel.parts[1:2]) or rel.name.startswith("gradebook")
                or rel.name in ("autograde.log", ".nbgrader.log")):
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        out[str(rel)] = (digest, info.st_mode)
    return out


def _grades(course: Path, student: str) -> dict[str, tuple[float | None, bool]]:
    con = sqlite3.connect(course / "gradebook.db")
    rows = con.execute(
        "SELECT base_cell.name, grade.auto_score, grade.needs_manual_grade FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN base_cell ON grade.cell_id = base_cell.id WHERE submitted_assignment.student_id = ?", (student,))
    out = {name: (score, bool(manual)) for name, score, manual in rows}
    con.close()
    return out


@pytest.mark.parametrize("student", list(SUBMISSIONS))
def test_submission_gets_exactly_what_its_work_deserves(graded: tuple[Path, str], student: str) -> None:
    course, log = graded
    _, _, expected, flagged = SUBMISSIONS[student]
    grades = _grades(course, student)
    assert {k: grades[k][0] for k in AUTO} == expected, "\n".join(ln for ln in log.splitlines() if student in ln)
    is_flagged = any(grades[k][1] for k in AUTO)
    assert is_flagged == flagged
    if flagged:
        assert re.search(rf"student '{student}'.*FLAGGED FOR MANUAL REVIEW", log)


def _printed(course: Path, student: str, tag: str) -> object:
    return printed(course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb", tag)


def test_isolated_kernel_could_not_reach_outside(graded: tuple[Path, str]) -> None:
    course, _ = graded
    attempts = _printed(course, "a5_outside", "ATTEMPTS")
    assert attempts and all(v != "ok" for v in attempts.values()), attempts
    assert not (course / "autograded" / "honest" / ASSIGNMENT / "pwned.txt").exists()


def test_only_the_files_python_needs_of_etc_are_visible(graded: tuple[Path, str]) -> None:
    """Issue 17, hole 5: a hub's configuration, /etc/hostname or /etc/shadow do not exist in the sandbox."""
    course, _ = graded
    plugins = sys.modules.get("grader_sandbox") or _load_sandbox()
    seen = set(_printed(course, "a5_outside", "ETC"))
    assert seen <= set(plugins.ETC_NEEDED) | {"passwd", "group"}, seen
    assert {"passwd", "ld.so.cache"} <= seen


def _load_sandbox():  # noqa: ANN202
    import grader_sandbox

    return grader_sandbox


def test_no_file_outside_the_students_folders_changed(graded: tuple[Path, str]) -> None:
    """Issues 17, holes 1 and 2: content and mode of every course file, the victim of the link included."""
    course, log = graded
    before, after = SNAPSHOTS["before"], SNAPSHOTS["after"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == [], changed
    assert (course / "victim.txt").read_text() == "a course file\n"
    assert (course / "victim.txt").stat().st_mode & 0o777 == 0o640
    graded_nb = course / "autograded" / "h1_symlink" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert graded_nb.is_file() and not graded_nb.is_symlink()
    assert nbformat.read(graded_nb, as_version=4).cells  # the graded notebook itself, written in place
    fifo_nb = course / "autograded" / "h2_fifo" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert fifo_nb.is_file() and nbformat.read(fifo_nb, as_version=4).cells
    assert "the result recorded for the grader's check is not a regular file" in graded_nb.read_text()


def test_per_student_cgroups_are_removed(graded: tuple[Path, str]) -> None:
    """Issue 17, hole 6: each kernel's cgroup (where this machine has cgroup limits) is gone after grading,
    with whatever the kernel left running in it (the fork bomb's sleepers of a6_resources among them)."""
    import grader_limits

    _, log = graded
    how = grader_limits.limits_mechanism()[0]
    if how in ("prlimit", "systemd"):
        pytest.skip(f"per-student limits here: {how} (no cgroup folders of the grader's own)")
    assert f"per-student limits: {how} (" in log
    assert CGROUPS_LEFT == []
    assert "per-student cgroup not removed" not in log


def test_student_files_are_capped_and_limits_are_named(graded: tuple[Path, str]) -> None:
    """Issue 17, hole 6: files beyond the cap are not copied into the run; the log names the limits in use."""
    _, log = graded
    assert re.search(r"student 'h8_blank'.*not copied into the run folder: .*over the cap of 50 files", log)
    assert re.search(r"per-student limits: (systemd|cgroup|prlimit only)", log)


def test_resource_limits_held(graded: tuple[Path, str]) -> None:
    course, log = graded
    path = course / "autograded" / "a6_resources" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert path.stat().st_size < 500_000
    text = path.read_text()
    assert "memory limit hit" in text
    children = int(re.search(r"fork stopped after (\d+) BlockingIOError children", text).group(1))
    assert children < 256


def test_failure_messages_stay_clear(graded: tuple[Path, str]) -> None:
    course, _ = graded
    nb = nbformat.read(course / "autograded" / "honest_wrong" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    errors = [o for o in cell(nb, "test_vgg_features").outputs if o.output_type == "error"]
    assert errors and "vgg_features" in errors[-1].evalue and "values differ beyond" in errors[-1].evalue
    assert "cell_done" not in cell(nb, "test_vgg_features").source  # the grader's line is not shown


def test_other_grades_untouched_and_backed_up(graded: tuple[Path, str]) -> None:
    course, log = graded
    assert "no score changed outside the batch" in log
    assert list((course / "gradebook.db.backups").glob("gradebook-*.db"))
    # a change outside the batch is reported
    from importlib import util

    spec = util.spec_from_file_location("integrity", course / "integrity.py")
    integrity = util.module_from_spec(spec)
    sys.modules["integrity"] = integrity  # its dataclasses look their module up there
    spec.loader.exec_module(integrity)  # type: ignore[union-attr]
    before = integrity.scores(course / "gradebook.db")
    key = next(k for k in before if k[0] == "honest")
    after = {**before, key: (99.0, None, None)}
    assert integrity.changes_outside(before, after, "ch09_other", None)
    assert not integrity.changes_outside(before, after, ASSIGNMENT, None)


@pytest.mark.parametrize("student", ["honest_wrong", "h8_blank"])
def test_hidden_tests_stay_hidden(graded: tuple[Path, str], student: str) -> None:
    """The feedback keeps the failure message, not the hidden test's source nor the grader's last line.

    h8_blank fails a visible check in a cell that also holds a hidden test: IPython's traceback shows
    the lines around the failing one (issue 17, hole 8; nbgrader #917 and #1363)."""
    course, _ = graded
    html = (course / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    graded_nb = (course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text()
    outputs = "".join(str(c.get("outputs", "")) for c in nbformat.reads(graded_nb, as_version=4).cells)
    expected = "values differ beyond" if student == "honest_wrong" else "NotImplementedError"
    assert expected in html and expected in outputs
    hidden_items = [f"{ASSIGNMENT}/{name}" for name in ("receptive_field", "vgg_parameters", "sgd_update")]
    for secret in ("check_module(", "check_function(", "BEGIN HIDDEN TESTS", "cell_done", "ITEM = ", *hidden_items):
        assert secret not in html, secret
        assert secret not in outputs, secret
