"""Trusted grading: the student's notebook runs in an isolated kernel, and its hidden checks are judged
outside it (:class:`TrustedExecute`, first of the autograde preprocessors in ``nbgrader_config.py``).

Before the run, the SHA-256 manifests of the references and of the release are checked; the kernel runs in
a bubblewrap sandbox (``grader_sandbox.py``: :class:`IsolatedKernelManager`, ``python -I``) in a throwaway
copy of the student's folder, with per-student limits (``grader_limits.py``), and sees the references
without their expected values. After it, the records of the hidden checks are judged here
(:func:`cnnbook.grading.judge`); a test cell that does not reach its last line scores 0, and no line of a
hidden test is left in any output of the feedback.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from nbformat.notebooknode import NotebookNode
from traitlets import Float, Integer, Unicode

from nbgrader import utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grader_limits import limits_mechanism, release  # noqa: E402 - next to this file
from grader_plugins import GuardedExecute, source_cells, submission_name  # noqa: E402
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

__all__ = ["TrustedExecute", "verify_release_manifest", "IsolatedKernelManager", "sandbox_command"]


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
        who = submission_name(resources)
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

        sources = source_cells(self, resources)
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
