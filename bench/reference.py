"""Load a lesson's reference implementation (the ``### BEGIN SOLUTION`` regions) as Python objects.

The answer cells of ``solutions/<lesson>/*.ipynb`` are extracted with
``grader.course.synthetic.solution_answers`` and executed in one namespace, after the
top-level ``import`` lines of the notebook's other code cells (answer cells rely
on imports made earlier in the notebook). Nothing else of the notebook runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from grader.course.cells import is_answer, read_notebook
from grader.course.synthetic import solution_answers

from .common import ROOT

__all__ = ["load_reference", "lesson_notebook"]

_IMPORT = re.compile(r"^(?:import [\w., ]+|from [\w.]+ import [\w., ()]+)\s*$", re.MULTILINE)


def lesson_notebook(course: Path, slug: str) -> Path:
    found = sorted((course / "solutions" / slug).glob("*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no solution notebook in {course / 'solutions' / slug}")
    return found[0]


def load_reference(slug: str, answer_ids: list[str] | None = None, course: Path = ROOT) -> SimpleNamespace:
    """Run the answers (all, or the listed ids in that order) and return the resulting names."""
    nb = read_notebook(lesson_notebook(course, slug))
    answers = solution_answers(nb)
    ns: dict = {"__name__": f"reference_{slug.replace('-', '_')}"}
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and not is_answer(cell):
            source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
            for line in _IMPORT.findall(source):
                try:
                    exec(line, ns)
                except Exception:  # an import of a notebook-only helper: not needed by the answers
                    pass
    for gid in answer_ids or list(answers):
        exec(compile(answers[gid], f"<{slug}:{gid}>", "exec"), ns)
    return SimpleNamespace(**{k: v for k, v in ns.items() if not k.startswith("__")})
