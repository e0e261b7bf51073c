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
from jupyter_client.manager import AsyncKernelManager
from traitlets import Float, Integer, Unicode

from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

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
_CHECK = re.compile(r"grading\s*\.\s*check_(function|module|value)\s*\((?:[^()]|\([^()]*\))*?[\"']([\w./-]+)[\"']\s*\)")

# Constructs that can fool checks made inside the student's interpreter (visible tests) or that reach
# outside the submission. A notebook using one is graded as usual and flagged for manual review.
SUSPICIOUS = {
    "an IPython hook": r"input_transformers|\bevents\s*\.\s*register|set_custom_exc|register_magic|ast_transformers",
    "the interpreter's error or exit hooks": r"\bsys\s*\.\s*(excepthook|displayhook|settrace|setprofile)|\batexit\b",
    "builtins": r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\s*\.",
    "the notebook's input history": r"\b_ih\b|\bIn\s*\[|\b_i\d*\b|history_manager|get_ipython",
    "a replaced checking function": (r"\b(grading|torch|np|numpy|testing|torch\.testing|numpy\.testing)\s*\.\s*\w+\s*="
                                     r"|\bsetattr\s*\(|__torch_function__|__eq__|__bool__|_make_subclass"),
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
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if trusted is None and utils.is_locked(cell) or trusted is not None and trusted.get(gid) == cell.source:
            continue
        for kind, pattern in SUSPICIOUS.items():
            match = re.search(pattern, cell.source)
            if match and kind not in [f.split(":")[0] for f in found]:
                found.append(f"{kind}: {match.group(0)!r}")
    return found


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
    memory_gb = Float(8.0, help="Address-space limit of the kernel, GiB (RLIMIT_AS); 0: none.").tag(config=True)
    cpu_seconds = Integer(900, help="CPU-time limit of the kernel per notebook (RLIMIT_CPU).").tag(config=True)
    max_processes = Integer(1024, help="Processes and threads of the sandbox user (RLIMIT_NPROC).").tag(config=True)
    max_file_mb = Integer(512, help="Largest file the kernel may write, MiB (RLIMIT_FSIZE).").tag(config=True)
    sandbox_uid = Integer(-1, help="When grading as root: the unprivileged user id the kernel runs as; -1 (default): "
                                   "a fresh id per notebook, from 1,000,000 up, used by nothing else, so that "
                                   "one student's processes never count against the next one's limit").tag(config=True)

    _checked: set[str] = set()

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
        if problems:
            for line in problems:
                self.log.error("integrity check failed: %s", line)
            raise RuntimeError("grading stopped before running any student code: " + "; ".join(problems[:5]))
        TrustedExecute._checked.add(key)

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

        info = (resources or {}).get("nbgrader", {})
        self._assignment = info.get("assignment", "")
        self._check_manifests()
        who = _who(resources or {})
        cwd = Path((resources or {}).get("metadata", {}).get("path") or os.getcwd()).resolve()
        work = Path(tempfile.mkdtemp(prefix="cnnbook-grade-"))
        records = work / "records"
        records.mkdir()
        inputs = self._inputs(info.get("assignment", ""), work)
        tokens = self._add_sentinels(nb)
        saved = {k: os.environ.get(k) for k in (RECORD_ENV, "CNNBOOK_REFERENCES")}
        os.environ[RECORD_ENV], os.environ["CNNBOOK_REFERENCES"] = str(records), str(inputs)
        owner = None
        try:
            if self.isolation == "none":
                self.log.warning("%s: UNISOLATED kernel (isolation = 'none'): the student's code can read and "
                                 "write whatever this account can", who)
                km = None
                self.kernel_manager_class = GraderKernelManager
            elif self.isolation == "bwrap":
                uid = self.sandbox_uid if self.sandbox_uid >= 0 else 1_000_000 + secrets.randbelow(1_000_000)
                owner = _hand_over([cwd, work], uid)
                settings = {"student_dir": Unicode(str(cwd)), "work_dir": Unicode(str(work)),
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
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            if owner:
                _kill_user(uid, self.log)  # whatever the kernel left running (a fork bomb's children)
                _take_back([cwd, work], owner)
            shutil.rmtree(work, ignore_errors=True)
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
        from cnnbook.grading import grading_device, judge, load_record, load_reference

        sources = _source_cells(self, resources)
        device_type = grading_device().type
        review = resources.setdefault("cnnbook_review", [])
        for cell in nb.cells:
            if not (cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)):
                continue
            gid = cell.metadata.nbgrader["grade_id"]
            token, original = tokens.get(gid, ("", cell.source))
            cell.source = original  # the feedback shows the cell without the grader's line
            failed_in_kernel = any(out.output_type == "error" for out in cell.outputs)
            messages = []
            for kind, item in _CHECK.findall(sources.get(gid, "")):
                cases, why = load_record(item, records)
                message = judge(item, kind, cases, load_reference(item, Path(self.references_dir)), device_type,
                                why or "missing")
                if message:
                    messages.append(message)
            sentinel = records / f"__cell__{gid}"
            reached_end = (sentinel.is_file() and not sentinel.is_symlink()
                           and sentinel.stat().st_size < 100 and sentinel.read_text() == token)
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


def _bwrap_problems() -> list[str]:
    """Why the sandbox cannot start here (empty when bubblewrap works)."""
    import subprocess

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ["isolation: bubblewrap is not installed (`apt-get install bubblewrap`, or `make sandbox`); "
                "to grade unisolated on purpose, set CNNBOOK_ISOLATION=none"]
    proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--dev", "/dev", "--proc",
                           "/proc", "true"], capture_output=True, text=True, timeout=60)
    if proc.returncode:
        return [f"isolation: bubblewrap cannot create a sandbox here ({proc.stderr.strip()[:300]}); user namespaces "
                "may be disabled (sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces), or grade "
                "as root; to grade unisolated on purpose, set CNNBOOK_ISOLATION=none"]
    return []


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


def _hand_over(paths: list[Path], uid: int) -> dict[str, tuple[int, int]] | None:
    """As root: give ``paths`` (recursively) to the sandbox user; returns the old owners, else None."""
    if os.geteuid() != 0 or uid < 0:
        return None
    owners = {}
    for top in paths:
        for path in [top, *top.rglob("*")]:
            st = path.lstat()
            owners[str(path)] = (st.st_uid, st.st_gid)
            os.lchown(path, uid, uid)
    return owners


def _kill_user(uid: int, log: Any, wait_s: float = 30.0) -> None:
    """SIGKILL every process of ``uid`` (a sandbox user of this run only) and wait until they are gone."""
    import signal
    import time

    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
                if int(fields.get("Uid", "-1").split()[0]) == uid:
                    left.append(int(status.parent.name))
            except (OSError, ValueError):
                continue
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > deadline:
            log.error("%d processes of the sandbox user %d are still there after %g s", len(left), uid, wait_s)
            return
        time.sleep(0.2)


def _take_back(paths: list[Path], owners: dict[str, tuple[int, int]]) -> None:
    for top in paths:
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            uid, gid = owners.get(str(path), (0, 0))  # files the kernel created go to the grader too
            os.lchown(path, uid, gid)


class GraderKernelManager(AsyncKernelManager):
    """The kernel as nbgrader starts it, with ``python -I``: the submission's folder is not on sys.path,
    so a submitted numpy.py, torch.py or cnnbook/ cannot shadow the real package."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd and Path(cmd[0]).name.startswith("python") and "-I" not in cmd[1:2]:
            cmd = [cmd[0], "-I", *cmd[1:]]
        return cmd + ["--IPKernelApp.ignore_cwd=True"]


class IsolatedKernelManager(GraderKernelManager):
    """The kernel in a bubblewrap sandbox (see ``sandbox_command``), talking over Unix sockets."""

    student_dir = Unicode("")
    work_dir = Unicode("")
    memory_gb = Float(8.0)
    cpu_seconds = Integer(900)
    max_processes = Integer(1024)
    max_file_mb = Integer(512)
    sandbox_uid = Integer(-1)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        ipc = Path(self.work_dir) / "ipc"
        ipc.mkdir(exist_ok=True)
        if self.sandbox_uid >= 0:
            os.chown(ipc, self.sandbox_uid, self.sandbox_uid)
        self.transport = "ipc"  # no network in the sandbox: Unix sockets instead of TCP
        self.ip = str(ipc / "kernel")
        self.connection_file = str(ipc / "kernel.json")

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.sandbox_uid >= 0:
            os.chown(self.connection_file, self.sandbox_uid, self.sandbox_uid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        return sandbox_command(cmd, student_dir=Path(self.student_dir), work_dir=Path(self.work_dir),
                               memory_gb=self.memory_gb, cpu_seconds=self.cpu_seconds,
                               max_processes=self.max_processes, max_file_mb=self.max_file_mb,
                               uid=self.sandbox_uid)


def sandbox_command(cmd: list[str], student_dir: Path, work_dir: Path, memory_gb: float = 8.0,
                    cpu_seconds: int = 900, max_processes: int = 1024, max_file_mb: int = 512,
                    uid: int = -1) -> list[str]:
    """``cmd`` wrapped in bubblewrap: read-only system, Python and package; no network; limits.

    The sandbox sees /usr, /etc, the Python installation, the virtual environment and the cnnbook
    source, all read-only; the student's build folder and the grader's work folder (records, the
    references without expected values, the kernel's sockets) read-write; a private /tmp. Not the
    course folder (gradebook, references, other students), not solutions/, not the home folder.
    New network, PID, IPC and UTS namespaces; the kernel dies with the grader. As root, the kernel
    runs as ``uid`` (an unprivileged user), so RLIMIT_NPROC bounds a fork bomb.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise RuntimeError(
            "isolated grading needs bubblewrap (`apt-get install bubblewrap`, or `make sandbox`); it is not "
            "installed. Install it, or grade unisolated on purpose with CNNBOOK_ISOLATION=none "
            "(see the instructor guide)")
    import cnnbook

    python = Path(cmd[0])
    ro = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), python.resolve().parent.parent,
          Path(cnnbook.__file__).resolve().parent.parent}
    args = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/lib", "/lib64", "/sbin", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    made: set[str] = set()

    def parents(path: Path) -> list[str]:
        out = []
        for parent in reversed(path.parents):
            p = str(parent)
            if p not in ("/", "/usr", "/etc", "/tmp") and p not in made:
                made.add(p)
                out += ["--perms", "0755", "--dir", p]
        return out

    args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size", str(512 * 2**20), "--tmpfs", "/tmp"]
    for path in sorted(ro):
        if str(path).startswith("/usr/"):
            continue
        args += parents(path) + ["--ro-bind", str(path), str(path)]
    if os.environ.get("CNNBOOK_GRADING_DEVICE", "cpu").startswith(("cuda", "auto")):
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(dev), str(dev)]
    for path in (student_dir.resolve(), work_dir.resolve()):
        args += parents(path) + ["--bind", str(path), str(path)]
    args += ["--chdir", str(student_dir.resolve()), "--clearenv"]
    env = {"HOME": "/tmp", "PATH": f"{python.parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    for key, value in os.environ.items():
        if key.startswith(("CNNBOOK_", "OMP_", "MKL_", "CUBLAS_", "CUDA_", "NVIDIA_")):
            env[key] = value
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    limits = ["prlimit", f"--cpu={cpu_seconds}", f"--fsize={max_file_mb * 2**20}", "--core=0", "--nofile=1024"]
    if memory_gb > 0:
        limits.append(f"--as={int(memory_gb * 2**30)}")
    if uid >= 0:
        limits.append(f"--nproc={max_processes}")
        args += ["--cap-add", "CAP_SETUID,CAP_SETGID", "setpriv", f"--reuid={uid}", f"--regid={uid}",
                 "--clear-groups", "--inh-caps=-all"]
    return args + [*limits, "--", *cmd]


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
