"""Build the program to grade: the instructor's cells around the learner's answers.

Everything the learner may not change (instructions, demonstrations, check
cells, hidden tests) comes from the source notebook in ``solutions/``; only
answer cells and cells the learner added come from the submission. Edited,
deleted, duplicated or retyped locked cells therefore change nothing.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from ..course.cells import STUB, cell_text, grade_id, is_answer, is_tests, nbgrader_meta

__all__ = ["GradedCell", "Assembly", "assemble", "strip_hidden_markers", "bound_names"]

_HIDDEN_MARKER = re.compile(r"^\s*### (BEGIN|END) HIDDEN TESTS\s*$", re.MULTILINE)


@dataclass
class GradedCell:
    """One code cell to execute. ``kind`` is 'answer', 'tests', 'learner' (added by the learner) or 'course'."""

    kind: str
    source: str
    grade_id: str | None = None
    points: float = 0.0


@dataclass
class Assembly:
    cells: list[GradedCell]
    notes: list[str] = field(default_factory=list)
    missing_answers: list[str] = field(default_factory=list)


def strip_hidden_markers(source: str) -> str:
    """Remove the ``### BEGIN/END HIDDEN TESTS`` lines, keeping the tests between them."""
    return _HIDDEN_MARKER.sub("", source)


def assemble(source_nb: Any, submission_nb: Any) -> Assembly:
    """Merge a submission into the source notebook's cell order.

    Learner-added code cells run right after the submission cell they follow
    (an answer cell or a locked course cell), so helpers a learner defines in
    a new cell before the check still exist when the check runs.
    """
    notes: list[str] = []
    answers: dict[str, str] = {}
    added_after: dict[str | None, list[str]] = {}
    source_ids = {grade_id(c) for c in source_nb.cells if grade_id(c)}
    answer_ids = {grade_id(c) for c in source_nb.cells if is_answer(c)}
    anchor: str | None = None
    for cell in submission_nb.cells:
        gid = grade_id(cell)
        if gid and gid in source_ids:
            if gid in answer_ids and cell.get("cell_type") == "code":
                if gid in answers:
                    notes.append(f"answer cell {gid!r} appears more than once; the first copy was graded")
                else:
                    answers[gid] = cell_text(cell)
            anchor = gid
        elif cell.get("cell_type") == "code" and not nbgrader_meta(cell).get("grade") and cell_text(cell).strip():
            added_after.setdefault(anchor, []).append(cell_text(cell))
        elif gid and nbgrader_meta(cell).get("grade"):
            notes.append(f"cell {gid!r} is not part of this assignment and was ignored")
    cells: list[GradedCell] = [GradedCell("learner", s) for s in added_after.get(None, [])]
    missing: list[str] = []
    for cell in source_nb.cells:
        gid = grade_id(cell)
        if cell.get("cell_type") != "code":
            pass
        elif is_answer(cell):
            if gid not in answers:
                missing.append(gid)
                notes.append(f"answer cell {gid!r} is missing from the submission (deleted or retyped?); "
                             f"it was graded as not answered")
            cells.append(GradedCell("answer", answers.get(gid, STUB), gid))
        elif is_tests(cell):
            points = float(nbgrader_meta(cell).get("points") or 0)
            cells.append(GradedCell("tests", strip_hidden_markers(cell_text(cell)), gid, points))
        else:
            cells.append(GradedCell("course", cell_text(cell), gid))
        cells.extend(GradedCell("learner", s) for s in added_after.get(gid, []))
    return Assembly(cells, notes, missing)


def bound_names(source: str) -> set[str]:
    """Top-level names a cell binds (assignments, functions, classes, imports)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names
