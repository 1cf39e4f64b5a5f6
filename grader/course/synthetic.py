"""Build submissions from a lesson's notebooks: the solution, the release, or custom answers.

Used by the course's tests (buggy and alternative implementations are graded
through the real grader) and by the demo class.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Mapping

import nbformat

from .cells import grade_id, is_answer, read_notebook

__all__ = ["solution_answers", "with_answers", "write_submission"]

_SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def solution_answers(source_nb: Any) -> dict[str, str]:
    """The instructor's answer for each answer cell, markers removed."""
    return {grade_id(c): _SOLUTION_MARKER.sub("", "".join(c.source) if isinstance(c.source, list) else c.source)
            for c in source_nb.cells if is_answer(c)}


def with_answers(release_nb: Any, answers: Mapping[str, str]) -> Any:
    """A copy of the learner's notebook with some answer cells filled in."""
    nb = copy.deepcopy(release_nb)
    ids = {grade_id(c) for c in nb.cells if is_answer(c)}
    unknown = sorted(set(answers) - ids)
    if unknown:
        raise KeyError(f"no answer cell(s) {unknown} in this notebook; answer cells are {sorted(ids)}")
    for cell in nb.cells:
        if is_answer(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def write_submission(source_path: Path, release_path: Path, out_path: Path,
                     answers: Mapping[str, str] | None = None, *, base: str = "solution") -> Path:
    """Write a submission: the release with the solution's answers (``base='solution'``) or the stubs
    (``base='release'``), then ``answers`` on top."""
    if base not in ("solution", "release"):
        raise ValueError(f"base must be 'solution' or 'release', got {base!r}")
    filled = dict(solution_answers(read_notebook(source_path))) if base == "solution" else {}
    filled.update(answers or {})
    nb = with_answers(read_notebook(release_path), filled)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_path)
    return out_path
