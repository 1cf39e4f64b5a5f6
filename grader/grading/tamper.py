"""What a submission changed that it must not: locked cells edited, grade cells deleted, retyped or stripped.

Grading never trusts these cells (``grader.grading.assemble`` rebuilds the program from the
instructor's source), so a change costs nothing and gains nothing; it is reported,
one note per cell, so the notebook's status is ``tampered`` and an instructor looks.
The instructor's own source notebook is not tampering: a locked cell may equal its
release text (hidden tests removed) or its full source.

>>> from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
>>> meta = {"nbgrader": {"grade_id": "t", "grade": True, "locked": True, "points": 1, "solution": False}}
>>> source = new_notebook(cells=[new_code_cell("check()", metadata=meta)])
>>> changes(source, new_notebook(cells=[new_code_cell("check()", metadata=meta)]))
[]
>>> changes(source, new_notebook(cells=[new_markdown_cell("check()", metadata=meta)]))
["grade cell 't' was changed from code to markdown"]
>>> changes(source, new_notebook(cells=[new_code_cell("check()")]))
["grade cell 't' was deleted or lost its nbgrader metadata"]
"""

from __future__ import annotations

import re
from typing import Any

from ..course.cells import cell_text, grade_id, is_answer, nbgrader_meta

__all__ = ["changes", "release_text"]

_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", flags=re.S)
_FLAGS = ("grade", "solution")


def releasecell_text(cell: Any) -> str:
    """What a locked cell looks like in the learner's copy (hidden tests removed)."""
    return _HIDDEN.sub("", cell_text(cell))


def _kind(cell: Any) -> str:
    meta = nbgrader_meta(cell)
    return "answer cell" if meta.get("solution") else "grade cell" if meta.get("grade") else "locked cell"


def changes(source_nb: Any, submission_nb: Any) -> list[str]:
    """One note per nbgrader cell of the source that the submission deleted, retyped, stripped or edited."""
    found: dict[str, list[Any]] = {}
    for cell in submission_nb.cells:
        gid = grade_id(cell)
        if gid:
            found.setdefault(gid, []).append(cell)
    notes: list[str] = []
    for cell in source_nb.cells:
        gid, meta = grade_id(cell), nbgrader_meta(cell)
        if not gid or not (meta.get("locked") or meta.get("grade") or meta.get("solution")):
            continue
        label = f"{_kind(cell)} {gid!r}"
        copies = found.get(gid, [])
        if not copies:
            notes.append(f"{label} was deleted or lost its nbgrader metadata")
            continue
        copy = copies[0]
        if copy.get("cell_type") != cell.get("cell_type"):
            notes.append(f"{label} was changed from {cell.get('cell_type')} to {copy.get('cell_type')}")
            continue
        theirs = nbgrader_meta(copy)
        if any(bool(theirs.get(flag)) != bool(meta.get(flag)) for flag in _FLAGS) or \
                (meta.get("grade") and float(theirs.get("points") or 0) != float(meta.get("points") or 0)):
            notes.append(f"{label}'s nbgrader metadata was changed")
            continue
        if meta.get("locked") and not is_answer(cell):
            text = cell_text(copy).strip()
            if text not in (releasecell_text(cell).strip(), cell_text(cell).strip()):
                notes.append(f"{label} was edited")
    return notes
