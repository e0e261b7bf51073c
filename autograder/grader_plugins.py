"""nbgrader plugins of the course: what stock nbgrader 0.9 grades wrongly or not at all.

``nbgrader_config.py`` (next to this file) puts them into the autograde pipeline:

- :class:`GuardedExecute`: when the kernel dies (``os._exit``, a segfault, ``exit()``, the OOM killer),
  stock nbgrader abandons the whole notebook and leaves the student's previous scores in the gradebook.
  Here the cell that killed it gets an error, every later code cell is marked as not run, and the
  notebook is graded normally: tests that passed before the crash keep their points, later ones get 0.
- :class:`StderrIsNotFailure`: stock ``nbgrader.utils.determine_grade`` gives 0 to a test cell with *any*
  output on stderr, so correct code that triggers a PyTorch warning would lose its points. In test
  cells that raised no error, stderr output is relabelled as stdout: it stays in the feedback, it no
  longer costs points. A failing test still has its error output and still scores 0.
- :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` caps lines, not characters; one 50 MB line or
  a huge rich output would pass. Each output is capped in characters.
- :class:`ReportScores`: one log line per student and notebook with the autograded score and the
  failing cells, so an instructor can read a class's run from the log.
- :class:`ReadableOrBlankExporter`: a submission that is not a readable notebook (invalid JSON) makes
  stock nbgrader abort that student with a traceback and keep any previous scores. Here it is graded
  as an unanswered copy of the release (0 points), with a note at the top of the feedback, and the
  log says so.

Integrity (issue 7; the instructor guide's "What the grader defends"):

- :class:`TrustedExecute` (a :class:`GuardedExecute`): checks the SHA-256 manifests of the references and
  the release, runs the kernel in a bubblewrap sandbox (:class:`IsolatedKernelManager`,
  :func:`sandbox_command`) with ``python -I`` (:class:`GraderKernelManager`), gives it references without
  expected values, and judges the records of the hidden checks outside the kernel
  (:func:`cnnbook.grading.judge`). A test cell that does not reach its last line scores 0.
- :class:`FlagForReview`: a notebook whose own cells use constructs that can fool in-kernel checks
  (:data:`SUSPICIOUS`), or that hid an error, keeps its scores and is marked "needs manual grade".
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.exporters import NotebookExporter
from nbformat.notebooknode import NotebookNode
from traitlets import Float, Integer, Unicode

from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grader_limits import limits_mechanism, release  # noqa: E402 - next to this file
from grader_sandbox import (  # noqa: E402 - the sandbox lives next to this file
    CUDA_PROBE,
    GraderKernelManager,
    IsolatedKernelManager,
    _bwrap_problems,
    _hand_over,
    _kill_user,
    _take_back,
    cuda_preflight,
    remove_special_files,
    sandbox_command,
    throwaway_copy,
)

__all__ = [
    "GuardedExecute",
    "StderrIsNotFailure",
    "LimitOutputSize",
    "ReportScores",
    "ReadableOrBlankExporter",
    "TrustedExecute",
    "FlagForReview",
    "IsolatedKernelManager",
    "sandbox_command",
]


def _who(resources: dict[str, Any]) -> str:
    info = resources.get("nbgrader", {})
    return f"student {info.get('student', '?')!r}, {info.get('assignment', '?')}/{info.get('notebook', '?')}"


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _gradebook(preprocessor: Any, resources: Any) -> Any:
    """The gradebook of the notebook being graded (a context manager), for any of our preprocessors."""
    from nbgrader.api import Gradebook

    try:
        course_id = preprocessor.parent.parent.coursedir.course_id
    except AttributeError:
        course_id = "default_course"
    return Gradebook(resources["nbgrader"]["db_url"], course_id=course_id)


def _source_cells(preprocessor: Any, resources: Any, locked_only: bool = False) -> dict[str, str]:
    """The instructor's source of the cells of this notebook, by cell name, from the gradebook."""
    info = resources["nbgrader"]
    with _gradebook(preprocessor, resources) as gb:
        notebook = gb.find_notebook(info["notebook"], info["assignment"])
        return {cell.name: cell.source for cell in notebook.source_cells if cell.locked or not locked_only}


class GuardedExecute(Execute):
    """nbgrader's ``Execute``, which survives a kernel that dies in the middle of the notebook."""

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._died_in: int | None = None
        self._who = _who(resources or {})
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if self._died_in is not None:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [
                    _error("KernelDied", f"not run: the kernel died in cell {self._died_in} and was not restarted")
                ]
            return cell, self.resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except Exception as exc:  # noqa: BLE001 - the student's kernel broke: grade what ran before
            # DeadKernelError, CellTimeoutError, or a kernel whose channels are garbled (a forked child
            # writing to them: "Invalid Signature", "can't start new thread").
            # A dead kernel, or one that stopped answering (its output channel silent, an interrupt
            # ignored): this cell fails, the later ones are not run, the notebook is still graded.
            self._died_in = index
            what = ("the kernel died while running this cell (os._exit, exit(), a crash or running out of "
                    "memory)" if isinstance(exc, DeadKernelError) else
                    "the kernel stopped responding while running this cell" if isinstance(exc, CellTimeoutError)
                    else f"the kernel broke while running this cell ({type(exc).__name__})")
            cell.outputs = list(cell.get("outputs", [])) + [
                _error("KernelDied", f"{what}; the cells after it were not run")
            ]
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            self.log.error(
                "%s: the kernel died in cell %d %s; later cells are graded as not run",
                self._who, index, f"({grade_id})" if grade_id else "",
            )
            return cell, self.resources
        if any(out.get("ename") == "CellTimeoutError" for out in cell.get("outputs", [])):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            self.log.warning(
                "%s: cell %d %s ran longer than %s s and was interrupted (CellTimeoutError)",
                self._who, index, f"({grade_id})" if grade_id else "", self.timeout,
            )
        return cell, resources


class StderrIsNotFailure(NbGraderPreprocessor):
    """In test cells without an error, relabel stderr output as stdout (see the module docstring)."""

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        if any(out.output_type == "error" for out in cell.outputs):
            return cell, resources
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                out.name = "stdout"
        return cell, resources


class LimitOutputSize(NbGraderPreprocessor):
    """Cap every output of every code cell at ``max_chars`` characters."""

    max_chars = Integer(20_000, help="Largest output kept, in characters, per output.").tag(config=True)

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        return text[: self.max_chars] + f"\n... output truncated by the grader ({len(text):,} characters) ...\n"

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type != "code":
            return cell, resources
        for out in cell.outputs:
            if out.output_type == "stream":
                out.text = self._cut(out.text)
            elif out.output_type == "error":
                out.evalue = self._cut(out.evalue)
                out.traceback = [self._cut(line) for line in out.traceback]
                total = sum(len(line) for line in out.traceback)
                if total > self.max_chars:
                    out.traceback = [self._cut("\n".join(out.traceback))]
            elif out.output_type in ("execute_result", "display_data"):
                size = sum(len(v) if isinstance(v, str) else len(str(v)) for v in out.data.values())
                if size > self.max_chars:
                    plain = out.data.get("text/plain", "")
                    plain = plain if isinstance(plain, str) else "".join(plain)
                    out.data = NotebookNode({"text/plain": self._cut(plain) if plain else
                                             f"(a {size:,}-character output removed by the grader)"})
        return cell, resources


class ReportScores(NbGraderPreprocessor):
    """Log the autograded score of a notebook and its failing cells, in one line."""

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        score = total = 0.0
        failed, manual = [], 0
        for cell in nb.cells:
            if not utils.is_grade(cell):
                continue
            points, max_points = utils.determine_grade(cell, None)
            total += max_points
            if points is None:
                manual += 1
                continue
            score += points
            if points < max_points and cell.cell_type == "code" and not utils.is_solution(cell):
                errors = [out for out in cell.outputs if out.output_type == "error"]
                last = errors[-1] if errors else None  # a timeout or a dead kernel is recorded last
                why = f"{last.ename}: {last.evalue.splitlines()[0] if last.evalue else ''}" if last else "no error"
                failed.append(f"{cell.metadata.nbgrader['grade_id']} ({why[:160]})")
        self.log.info(
            "Autograded %s: %g of %g points%s%s",
            _who(resources), score, total,
            f"; failed: {', '.join(failed)}" if failed else "; every test passed",
            f"; {manual} answer(s) to grade by hand" if manual else "",
        )
        return nb, resources


class ReadableOrBlankExporter(NotebookExporter):
    """Grade an unreadable submission as an unanswered copy of the release, instead of aborting."""

    def from_file(self, file_stream: Any, resources: Any = None, **kw: Any) -> tuple[str, Any]:
        try:
            nb = nbformat.reads(file_stream.read(), as_version=4)
            if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                raise ValueError("the file holds JSON, but no list of notebook cells")
        except Exception as exc:  # noqa: BLE001 - anything unreadable is graded as blank
            nb = self._blank(resources, exc)
        return self.from_notebook_node(nb, resources=resources, **kw)

    def _blank(self, resources: Any, exc: Exception) -> NotebookNode:
        info = resources["nbgrader"]
        coursedir = self.parent.coursedir  # the converter that created this exporter
        release = os.path.join(
            coursedir.format_path(coursedir.release_directory, ".", info["assignment"]),
            f"{info['notebook']}.ipynb",
        )
        first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
        reason = f"{type(exc).__name__}: {first_line}"
        self.log.error(
            "%s: the submitted file is not a readable notebook (%s); graded as an unanswered copy of "
            "the release, 0 points",
            _who(resources), reason,
        )
        nb = nbformat.read(release, as_version=4)
        note = nbformat.v4.new_markdown_cell(
            "**Your submitted file could not be read as a notebook** "
            f"(`{reason}`), so it was graded as an unanswered copy of the exercise: 0 points. "
            "Open the file you submitted in Jupyter to check it, and talk to your instructor."
        )
        note.id = "grader-unreadable-submission"
        nb.cells.insert(0, note)
        return nb


# ---- trusted grading: judge outside the student's interpreter ------------------------------------------
# Constructs that can fool checks made inside the student's interpreter (visible tests) or that reach
# outside the submission. A notebook using one is graded as usual and flagged for manual review. The
# regular expressions catch the plain spellings; :func:`ast_review_flags` catches what they cannot
# (computed names, writes through a module's __dict__, code decoded at run time).
SUSPICIOUS = {
    "an IPython hook": r"input_transformers|\bevents\s*\.\s*register|set_custom_exc|register_magic|ast_transformers",
    "the interpreter's error or exit hooks": r"\bsys\s*\.\s*(excepthook|displayhook|settrace|setprofile)|\batexit\b",
    "builtins": r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\s*\.",
    "the notebook's input history": r"\b_ih\b|\bIn\s*\[|\b_i\d*\b|history_manager|get_ipython",
    "a replaced checking function": (r"\b(grading|torch|np|numpy|testing|torch\.testing|numpy\.testing)\s*\.\s*\w+\s*="
                                     r"|__torch_function__|__eq__|__bool__|_make_subclass"),
    "the module table or imports machinery": r"\bsys\s*\.\s*(modules|path|meta_path)|\bimportlib\b|__import__",
    "numeric settings": r"allow_tf32|fp32_precision|set_float32_matmul_precision|use_deterministic_algorithms"
                        r"|cudnn\s*\.\s*(benchmark|deterministic)",
    "processes, files or the network outside the exercise": (r"\bsubprocess\b|\bos\s*\.\s*(system|fork|popen|exec\w*|spawn\w*)"
                                                             r"|\bctypes\b|\bsocket\b|urllib|requests|\bopen\s*\(|\bPath\s*\("
                                                             r"|CNNBOOK_|\bos\s*\.\s*environ"),
}


def suspicious_constructs(nb: NotebookNode, trusted: dict[str, str] | None = None) -> list[str]:
    """What in the student's own cells may tamper with the grading, by kind.

    ``trusted``: the gradebook's source of each cell by grade id; a cell whose source is exactly that
    is the instructor's and is skipped. Without it, locked cells are skipped.
    """
    found: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if trusted is None and utils.is_locked(cell) or trusted is not None and trusted.get(gid) == cell.source:
            continue
        kinds = [f.split(":")[0] for f in found]
        for kind, pattern in SUSPICIOUS.items():
            match = re.search(pattern, cell.source)
            if match and kind not in kinds:
                found.append(f"{kind}: {match.group(0)!r}")
                kinds.append(kind)
        for kind, what in ast_review_flags(cell.source):
            if kind not in kinds:
                found.append(f"{kind}: {what!r}")
                kinds.append(kind)
    return found


_GUARDED = {"grading", "cnnbook", "torch", "np", "numpy", "builtins", "sys", "IPython", "ip", "importlib"}
_LINKS = {"symlink", "link", "mkfifo", "mknod", "symlink_to", "hardlink_to", "link_to"}


def ast_review_flags(source: str) -> list[tuple[str, str]]:
    """(kind, code) of each construct :mod:`ast` finds that the regular expressions of :data:`SUSPICIOUS`
    miss: ``exec``/``eval``/``compile`` of a computed string, ``getattr``/``setattr``/``delattr``
    with a computed name on a module or the shell, writes through ``__dict__``/``vars()`` or to a
    function's ``__code__``, links and FIFOs, and ``multiprocessing``. An honest
    ``setattr(self, f"denselayer{i + 1}", layer)`` on the student's own object is not flagged."""
    try:
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()))
    except SyntaxError:
        return []
    modules = set(_GUARDED)
    for node in ast.walk(tree):  # names the cell binds to modules or to the shell
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and "get_ipython" in ast.unparse(node.value.func):
            modules |= {t.id for t in node.targets if isinstance(t, ast.Name)}

    def root(expr: ast.AST) -> str | None:
        while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    def constant(expr: ast.AST) -> bool:
        return isinstance(expr, ast.Constant) and isinstance(expr.value, str)

    flags: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        code = ast.unparse(node)[:80] if isinstance(node, ast.AST) and hasattr(node, "lineno") else ""
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0] if node.args else None
            if name in ("exec", "eval", "compile") and first is not None and not constant(first):
                flags.append(("code built at run time", code))
            elif name in ("getattr", "setattr", "delattr") and len(node.args) >= 2 and root(node.args[0]) in modules \
                    and (name != "getattr" or not constant(node.args[1])):
                flags.append(("a computed attribute of a module or the shell", code))
            elif name == "vars" and first is not None and root(first) in modules:
                flags.append(("a module's namespace written directly", code))
            elif name in _LINKS:
                flags.append(("links or special files", code))
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "__setitem__", "setdefault") \
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "__dict__":
                flags.append(("a module's namespace written directly", code))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(n.split(".")[0] in ("multiprocessing", "concurrent") for n in names):
                flags.append(("processes, files or the network outside the exercise", code))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and (target.attr in ("__code__", "__dict__", "__globals__")
                                                          or root(target) in ("grading", "cnnbook")):
                    flags.append(("a replaced checking function", code))
                elif isinstance(target, ast.Subscript) and isinstance(target.value, (ast.Attribute, ast.Call)) \
                        and ("__dict__" in ast.unparse(target.value) or ast.unparse(target.value).startswith("vars(")):
                    flags.append(("a module's namespace written directly", code))
    return flags


class TrustedExecute(GuardedExecute):
    """Run the student's notebook in an isolated kernel; judge the hidden tests outside it.

    Before the run: the reference and release manifests are checked (a mismatch stops the run); the
    kernel gets a folder for its records and a copy of the references *without expected values*.
    Each graded test cell gets a last line that records that it ran to its end. After the run, for
    each test cell, every hidden check named in its source (from the gradebook, not from the
    submission) is judged here with :func:`cnnbook.grading.judge`; a check that fails, or whose
    record is missing or malformed, or a cell that did not reach its last line, adds an error to the
    cell (0 points) with the reason. A failure the kernel reported stays a failure.
    """

    isolation = Unicode(os.environ.get("CNNBOOK_ISOLATION", "bwrap"),
                        help="'bwrap' (default): the kernel runs in a bubblewrap sandbox; 'none': unisolated "
                             "(logged as a warning on every notebook).").tag(config=True)
    references_dir = Unicode("", help="The references with expected values (never shown to the kernel).").tag(config=True)
    release_manifest = Unicode("", help="SHA-256 manifest of the release notebooks; '' skips the check.").tag(config=True)
    memory_gb = Float(8.0, help="Memory of one student's kernel and its children, GiB: the cgroup's MemoryMax, and "
                                "RLIMIT_AS per process; 0: none.").tag(config=True)
    cpu_seconds = Integer(900, help="CPU-time limit of the kernel per notebook (RLIMIT_CPU).").tag(config=True)
    max_processes = Integer(1024, help="Processes and threads of one student: the cgroup's TasksMax, and "
                                       "RLIMIT_NPROC of the sandbox user (as root).").tag(config=True)
    max_file_mb = Integer(512, help="Largest file the kernel may write, MiB (RLIMIT_FSIZE).").tag(config=True)
    max_files = Integer(2000, help="Most files of a student's folder copied into the run folder.").tag(config=True)
    max_folder_mb = Integer(256, help="Most MiB of a student's folder copied into the run folder.").tag(config=True)
    sandbox_uid = Integer(-1, help="When grading as root: the unprivileged user id the kernel runs as; -1 (default): "
                                   "a fresh id per notebook, from 1,000,000 up, used by nothing else, so that "
                                   "one student's processes never count against the next one's limit").tag(config=True)

    _checked: set[str] = set()
    _preflight_failed: dict[str, list[str]] = {}

    def _check_manifests(self) -> None:
        key = f"{self.references_dir}|{self.release_manifest}|{self._assignment}"
        if key in TrustedExecute._checked:
            return
        from cnnbook.grading import verify_manifest

        problems = [f"references: {p}" for p in verify_manifest(Path(self.references_dir))]
        if self.release_manifest:
            problems += [f"release: {p}" for p in verify_release_manifest(Path(self.release_manifest), self._assignment)]
        if self.isolation == "bwrap":
            problems += _bwrap_problems()
            how, why = limits_mechanism()
            if how == "prlimit":
                self.log.warning("per-student limits: prlimit only (per process, not per student): %s; see "
                                 "autograder/README.md", why)
            else:
                self.log.info("per-student limits: %s (%s)", how, why)
        from cnnbook.grading import grading_device_type

        if not problems and grading_device_type() == "cuda":
            if key not in TrustedExecute._preflight_failed:  # one preflight per run, not one per student
                TrustedExecute._preflight_failed[key] = self._cuda_preflight()
            problems += TrustedExecute._preflight_failed[key]
        if problems:
            for line in problems:
                self.log.error("integrity check failed: %s", line)
            raise RuntimeError("grading stopped before running any student code: " + "; ".join(problems[:5]))
        TrustedExecute._checked.add(key)

    def _cuda_preflight(self) -> list[str]:
        """CUDA inside the sandbox, with the kernel's limits and environment (issue 13); [] when it works."""
        work = Path(tempfile.mkdtemp(prefix="cnnbook-preflight-"))
        try:
            if self.isolation == "none":
                import subprocess

                proc = subprocess.run([sys.executable, "-I", "-c", CUDA_PROBE], capture_output=True, text=True,
                                      timeout=300)
                return [] if proc.returncode == 0 else [f"CUDA preflight failed: {proc.stderr.strip()[-300:]}"]
            return cuda_preflight(work, self.memory_gb, self.cpu_seconds, self.max_processes, self.max_file_mb)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _inputs(self, assignment: str, work: Path) -> Path:
        """references/<assignment>/*.pt without expected values, under work/inputs (read by the kernel)."""
        from cnnbook.grading import inputs_only, load_reference, save_reference

        root = work / "inputs"
        for path in sorted((Path(self.references_dir) / assignment).glob("*.pt")):
            item = f"{assignment}/{path.stem}"
            ref = load_reference(item, Path(self.references_dir))
            save_reference({k: v for k, v in inputs_only(ref).items() if k != "format"}, root / f"{item}.pt")
        return root

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        from cnnbook.grading import RECORD_ENV

        resources = resources if resources is not None else {}
        info = resources.get("nbgrader", {})
        self._assignment = info.get("assignment", "")
        self._check_manifests()
        who = _who(resources)
        metadata = resources.setdefault("metadata", {})
        cwd = Path(metadata.get("path") or os.getcwd()).resolve()
        work = Path(tempfile.mkdtemp(prefix="cnnbook-grade-"))
        records, run_dir = work / "records", work / "run"
        records.mkdir()
        # The kernel runs in a throwaway copy of the student's folder (regular files only, capped): it
        # never sees the folder nbgrader writes the graded notebook into (issue 17, holes 1, 2 and 6).
        left_out = throwaway_copy(cwd, run_dir, self.max_files, self.max_folder_mb)
        if left_out:
            self.log.warning("%s: not copied into the run folder: %s", who, "; ".join(left_out[:10]))
        inputs = self._inputs(info.get("assignment", ""), work)
        tokens = self._add_sentinels(nb)
        saved = {k: os.environ.get(k) for k in (RECORD_ENV, "CNNBOOK_REFERENCES")}
        os.environ[RECORD_ENV], os.environ["CNNBOOK_REFERENCES"] = str(records), str(inputs)
        metadata["path"] = str(run_dir)
        owner = None
        try:
            if self.isolation == "none":
                self.log.warning("%s: UNISOLATED kernel (isolation = 'none'): the student's code can read and "
                                 "write whatever this account can", who)
                km = None
                self.kernel_manager_class = GraderKernelManager
            elif self.isolation == "bwrap":
                uid = self.sandbox_uid if self.sandbox_uid >= 0 else 1_000_000 + secrets.randbelow(1_000_000)
                owner = _hand_over([work], uid)
                settings = {"student_dir": Unicode(str(run_dir)), "work_dir": Unicode(str(work)),
                            "memory_gb": Float(self.memory_gb), "cpu_seconds": Integer(self.cpu_seconds),
                            "max_processes": Integer(self.max_processes), "max_file_mb": Integer(self.max_file_mb),
                            "sandbox_uid": Integer(uid if owner else -1)}
                # nbclient creates, owns and shuts down the kernel manager: a subclass carries the settings
                self.kernel_manager_class = type("StudentKernelManager", (IsolatedKernelManager,), settings)
            else:
                raise RuntimeError(f"unknown isolation {self.isolation!r}: use 'bwrap' or 'none'")
            nb, resources = super().preprocess(nb, resources, km)
            self._judge(nb, resources, records, tokens, who)
        finally:
            metadata["path"] = str(cwd)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            if owner:
                _kill_user(uid, self.log)  # whatever the kernel left running (a fork bomb's children)
                _take_back([work], owner)
            if self.isolation == "bwrap":
                for problem in release(work.name):  # the student's cgroup, and anything still in it
                    self.log.warning("%s: per-student cgroup not removed: %s", who, problem)
            shutil.rmtree(work, ignore_errors=True)
            removed = remove_special_files(cwd)  # nothing the writer could follow or block on
            if removed:
                self.log.warning("%s: removed links or special files from the graded folder: %s", who,
                                 ", ".join(removed[:10]))
        return nb, resources

    # -- the sentinel line of each test cell
    def _add_sentinels(self, nb: NotebookNode) -> dict[str, tuple[str, str]]:
        tokens = {}
        for cell in nb.cells:
            if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
                gid = cell.metadata.nbgrader["grade_id"]
                token = secrets.token_hex(16)
                tokens[gid] = (token, cell.source)
                cell.source = cell.source + f"\n__import__('cnnbook.grading').grading.cell_done({gid!r}, {token!r})"
        return tokens

    def _judge(self, nb: NotebookNode, resources: Any, records: Path, tokens: dict[str, tuple[str, str]],
               who: str) -> None:
        from cnnbook.grading import (find_checks, forbidden_uses, grading_device_type, hidden_lines, judge,
                                     load_record, load_reference, read_regular_file)

        sources = _source_cells(self, resources)
        device_type = grading_device_type()
        review = resources.setdefault("cnnbook_review", [])
        cells, trusted = [], []  # every code cell, for the forbidden-name analysis
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                label = gid or f"cell {index + 1}"
                original = tokens[gid][1] if gid in tokens else cell.source
                cells.append((label, original))
                if gid is not None and sources.get(gid) == original:
                    trusted.append(label)
        hidden: list[str] = []
        test_cells = [c for c in nb.cells if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)]
        checks_of = {c.metadata.nbgrader["grade_id"]: find_checks(sources.get(c.metadata.nbgrader["grade_id"], ""))
                     for c in test_cells}
        for cell in test_cells:
            gid = cell.metadata.nbgrader["grade_id"]
            token, original = tokens.get(gid, ("", cell.source))
            cell.source = original  # the feedback shows the cell without the grader's line
            hidden += hidden_lines(sources.get(gid, ""))
            failed_in_kernel = any(out.output_type == "error" for out in cell.outputs)
            checks, unresolved = checks_of[gid]
            elsewhere = {r for other, (found, _) in checks_of.items() if other != gid for _, _, rs in found for r in rs}
            messages = [f"the grader could not judge this test cell, so it scores 0: {p}" for p in unresolved]
            for kind, item, roots in checks:
                ref = load_reference(item, Path(self.references_dir))
                cases, why = load_record(item, records)
                message = judge(item, kind, cases, ref, device_type, why or "missing")
                if message:
                    messages.append(message)
                uses = forbidden_uses(cells, ref.get("forbidden", []), trusted, roots, elsewhere)
                if uses:
                    messages.append(f"{ref.get('title', item)} scores 0: your code uses what this exercise "
                                    "forbids:\n" + "\n".join(uses))
            try:
                reached_end = read_regular_file(records / f"__cell__{gid}", 100).decode() == token
            except (OSError, ValueError, UnicodeDecodeError):
                reached_end = False
            if failed_in_kernel:
                continue  # 0 points already; the kernel's message explains it
            if not reached_end:
                messages.append("this test cell did not run to its end, but no error was reported: the "
                                "notebook hid an error or stopped the cell (0 points)")
                review.append(f"{gid}: an error was hidden from the grader")
            if messages:
                text = "\n\n".join(messages)
                cell.outputs.append(NotebookNode(output_type="error", ename="GradingError", evalue=text,
                                                 traceback=["GradingError: " + text]))
                self.log.info("%s: %s fails the grader's check: %s", who, gid, text.splitlines()[0][:200])
        _scrub_outputs(nb, hidden)


def _scrub_outputs(nb: NotebookNode, hidden: list[str]) -> None:
    """Remove every line that shows a hidden test from every output of the notebook (tracebacks included)."""
    from cnnbook.grading import scrub

    if not hidden:
        return
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.output_type == "stream":
                out.text = scrub(out.text, hidden)
            elif out.output_type == "error":
                out.evalue = scrub(out.evalue, hidden)
                out.traceback = [scrub(line, hidden) for line in out.traceback]
            elif out.output_type in ("execute_result", "display_data"):
                for key, value in list(out.get("data", {}).items()):
                    if isinstance(value, str):
                        out.data[key] = scrub(value, hidden)



def verify_release_manifest(manifest: Path, assignment: str | None = None) -> list[str]:
    """Problems with the release notebooks listed in ``manifest`` (paths relative to its folder's parent),
    only those of ``assignment`` when given."""
    if not manifest.is_file():
        return [f"{manifest} is missing (run `python autograder/integrity.py manifest`)"]
    root = manifest.parent.parent
    problems = []
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, rel = line.partition("  ")
            if assignment and not rel.startswith(f"exercises/{assignment}/"):
                continue
            path = root / rel
            if not path.is_file():
                problems.append(f"{rel}: listed in the manifest but missing")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                problems.append(f"{rel}: SHA-256 differs from the manifest")
    return problems




class FlagForReview(NbGraderPreprocessor):
    """Flag a notebook for manual review when its own cells use constructs that can fool checks made
    inside the student's interpreter (:data:`SUSPICIOUS`) or when the grader found a hidden error.

    Runs after ``SaveAutoGrades``: the autograded scores stay; every grade of the notebook is marked
    "needs manual grade" in the gradebook (the formgrader lists it), and the log says why.
    """

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        trusted = _source_cells(self, resources, locked_only=True)
        reasons = list(resources.get("cnnbook_review", [])) + suspicious_constructs(nb, trusted)
        if not reasons:
            return nb, resources
        info = resources["nbgrader"]
        with _gradebook(self, resources) as gb:
            submission = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
            for grade in submission.grades:
                grade.needs_manual_grade = True
            gb.db.commit()
        self.log.warning("%s: FLAGGED FOR MANUAL REVIEW (scores kept, marked 'needs manual grade'): %s",
                         _who(resources), "; ".join(reasons))
        return nb, resources
