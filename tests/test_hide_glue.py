"""scripts/hide_glue.py moves glue bookkeeping out of the visible cells without changing what is glued."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hide_glue", ROOT / "scripts" / "hide_glue.py")
hide_glue = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hide_glue)  # type: ignore[union-attr]

PAGE = '''# A chapter

```{code-cell} ipython3
acc = 0.9
glue("acc", f"{acc:.1%}", display=False)
steps = [1]
glue("steps", str(steps), display=False)
steps.append(2)
glue("shown", acc)
total = acc * 2
total
```
'''


def _cells(text: str) -> list[str]:
    return [body for _, body, _ in hide_glue.CELL.findall(text)]


def test_movable_glue_goes_to_a_removed_cell_and_the_rest_stays(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    assert hide_glue.main([str(page)]) == 0
    visible, hidden = _cells(page.read_text())
    # acc is never changed later: its glue moves; steps is mutated after its glue, so that glue stays where
    # it is (moving it would glue [1, 2]); a glue that displays (no display=False) is output and stays too.
    assert 'glue("acc"' not in visible and 'glue("acc"' in hidden
    assert 'glue("steps", str(steps), display=False)\nsteps.append(2)' in visible
    assert 'glue("shown", acc)' in visible
    assert hidden.startswith(":tags: [remove-cell]")
    assert visible.rstrip().endswith("total")  # the value the cell displays is still its last expression


def test_running_it_twice_changes_nothing_more(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    hide_glue.main([str(page)])
    once = page.read_text()
    hide_glue.main([str(page)])
    assert page.read_text() == once


def test_an_expression_that_stops_being_last_is_silenced(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('```{code-cell} ipython3\nx = 1\nx + 1\nglue("x", str(x), display=False)\n```\n')
    hide_glue.main([str(page)])
    visible, hidden = _cells(page.read_text())
    assert visible.rstrip().endswith("x + 1;") and 'glue("x"' in hidden
