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

The integrity layer (issue 7; the instructor guide's "What the grader defends") builds on these, in
two files of its own:

- ``grader_trusted.py``: :class:`TrustedExecute` (a :class:`GuardedExecute`) runs the kernel in the
  bubblewrap sandbox (``grader_sandbox.py``) and judges the hidden checks outside it.
- ``grader_review.py``: :class:`FlagForReview` marks for manual review a notebook whose own cells use
  constructs that can fool in-kernel checks, or that hid an error.
"""

from __future__ import annotations

import os
from typing import Any

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.exporters import NotebookExporter
from nbformat.notebooknode import NotebookNode
from traitlets import Integer

from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

__all__ = [
    "GuardedExecute",
    "StderrIsNotFailure",
    "LimitOutputSize",
    "ReportScores",
    "ReadableOrBlankExporter",
]


def submission_name(resources: dict[str, Any]) -> str:
    """How the log names the notebook being graded: ``student 'alice', ch02_lenet/lenet``."""
    info = resources.get("nbgrader", {})
    return f"student {info.get('student', '?')!r}, {info.get('assignment', '?')}/{info.get('notebook', '?')}"


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def gradebook_of(preprocessor: Any, resources: Any) -> Any:
    """The gradebook of the notebook being graded (a context manager), for any of our preprocessors."""
    from nbgrader.api import Gradebook

    try:
        course_id = preprocessor.parent.parent.coursedir.course_id
    except AttributeError:
        course_id = "default_course"
    return Gradebook(resources["nbgrader"]["db_url"], course_id=course_id)


def source_cells(preprocessor: Any, resources: Any, locked_only: bool = False) -> dict[str, str]:
    """The instructor's source of the cells of this notebook, by cell name, from the gradebook."""
    info = resources["nbgrader"]
    with gradebook_of(preprocessor, resources) as gb:
        notebook = gb.find_notebook(info["notebook"], info["assignment"])
        return {cell.name: cell.source for cell in notebook.source_cells if cell.locked or not locked_only}


class GuardedExecute(Execute):
    """nbgrader's ``Execute``, which survives a kernel that dies in the middle of the notebook."""

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._died_in: int | None = None
        self._who = submission_name(resources or {})
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
            submission_name(resources), score, total,
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
            submission_name(resources), reason,
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
