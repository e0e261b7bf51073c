"""exercises/ is what `nbgrader generate_assignment` makes of solutions/, and nothing else.

The release is regenerated from the instructor source into a temporary course and compared, notebook
by notebook, with the committed exercises/. Fix a difference by regenerating, never by editing exercises/:

    cd autograder && nbgrader generate_assignment "*" --force && python integrity.py manifest
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
# Every chapter of the lectures that has a graded exercise (see the syllabus).
CHAPTERS = {"ch02_lenet", "ch03_pooling", "ch04_nin_gap", "ch05_vgg", "ch06_inception", "ch07_batchnorm",
            "ch08_resnet", "ch09_densenet_se", "ch10_unet", "ch11_mobilenet", "ch12_augmentation",
            "ch13_nas", "ch14_transfer"}


def _normalised(path: Path) -> dict[str, Any]:
    """The notebook as JSON. Nothing in a generated release is volatile (cell ids and checksums are
    derived from the source), so only the JSON formatting is normalised away."""
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release")
    ignore = shutil.ignore_patterns("submitted", "autograded", "feedback", "gradebook.db*", "__pycache__",
                                    "references")
    shutil.copytree(REPO / "autograder", root / "autograder", ignore=ignore)
    shutil.copytree(REPO / "solutions", root / "solutions")
    (root / "exercises").mkdir()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "nbgrader"), "generate_assignment", "*", "--force"], cwd=root / "autograder",
                          env=env, capture_output=True, text=True, timeout=800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root / "exercises"


def test_every_chapter_has_a_graded_exercise() -> None:
    assert CHAPTERS <= set(ASSIGNMENTS)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_generated_from_the_source(regenerated: Path, assignment: str) -> None:
    fresh = sorted(p.relative_to(regenerated) for p in (regenerated / assignment).rglob("*") if p.is_file())
    committed_dir = REPO / "exercises" / assignment
    committed = sorted(p.relative_to(REPO / "exercises") for p in committed_dir.rglob("*") if p.is_file())
    assert committed == fresh, "exercises/ and the regenerated release hold different files"
    for rel in fresh:
        if rel.suffix != ".ipynb":
            assert (regenerated / rel).read_bytes() == (REPO / "exercises" / rel).read_bytes(), rel
            continue
        new, old = _normalised(regenerated / rel), _normalised(REPO / "exercises" / rel)
        if new == old:
            continue
        changed = [a.get("id", i) for i, (a, b) in enumerate(zip(new["cells"], old["cells"])) if a != b]
        pytest.fail(f"{rel} differs from the regenerated release (cells {changed}, or the cell count / metadata); "
                    f"regenerate it: cd autograder && nbgrader generate_assignment {assignment} --force")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(assignment: str) -> None:
    for path in (REPO / "exercises" / assignment).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "Marking (removed from the release)"):
            assert marker not in text, f"{path.name} leaks {marker!r}"
        # visible checks name public "<assignment>/<item>_visible" references; a hidden item's name must not show
        named = re.findall(rf'"{assignment}/(\w+)"', text)
        hidden = [name for name in named if not name.endswith("_visible")]
        assert not hidden, f"{path.name} names hidden reference items {hidden} outside its hidden tests"
        points = [c.metadata["nbgrader"]["points"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert 3 <= len([c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                         and c.cell_type == "code"]) <= 6, "3 to 6 autograded parts"
        assert sum(points) == _announced_total(nb), "the points announced in the title are the sum of the parts"


def _announced_total(nb: nbformat.NotebookNode) -> float:
    first = nb.cells[0].source
    words = first.split("*Chapter", 1)[1].split(".", 2)[1]  # " 9 points: 8 graded automatically, ..."
    return float(words.split("points")[0].strip())


def test_release_manifest_matches_the_release() -> None:
    """autograder/RELEASE.sha256 (checked before every autograde run) lists exactly the committed release."""
    sys.path.insert(0, str(REPO / "autograder"))
    try:
        from grader_trusted import verify_release_manifest
    finally:
        sys.path.remove(str(REPO / "autograder"))
    manifest = REPO / "autograder" / "RELEASE.sha256"
    assert verify_release_manifest(manifest) == [], "run `python autograder/integrity.py manifest`"
    listed = {line.split("  ", 1)[1] for line in manifest.read_text().splitlines() if line.strip()}
    assert listed == {p.relative_to(REPO).as_posix() for p in (REPO / "exercises").glob("*/*.ipynb")}
