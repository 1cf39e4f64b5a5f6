"""Build nbgrader's autograded notebook from a graded submission.

The autograded copy is what the formgrader shows the instructor: the course's
cells (locked cells and tests from ``solutions/``, as nbgrader restores them),
the learner's answers and added cells, and the outputs of the grading run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..course.cells import NotebookUnreadable, grade_id, is_answer, read_notebook
from ..grading.assemble import assemble
from ..grading.result import NotebookResult

__all__ = ["autograded_notebook", "write_notebook_atomic"]


def _outputs(record: dict[str, Any] | None) -> list[Any]:
    import nbformat  # here, not at the top: the grader's commands start without nbformat

    if not record:
        return []
    outputs = [nbformat.from_dict(o) for o in record.get("outputs", []) if isinstance(o, dict)]
    if record.get("status") in ("error", "timeout"):
        outputs.append(nbformat.from_dict({"output_type": "error", "ename": str(record.get("ename", "Error")),
                                           "evalue": str(record.get("evalue", "")), "traceback": []}))
    return outputs


def autograded_notebook(source_path: Path, submission_path: Path, result: NotebookResult) -> Any:
    """The notebook to write to ``autograded/<student>/<lesson>/``."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    source_nb = read_notebook(source_path)
    try:
        submission_nb = read_notebook(submission_path)
    except NotebookUnreadable:
        submission_nb = new_notebook()
    assembly = assemble(source_nb, submission_nb)
    records = [c.get("record") for c in result.cells] if result.cells else []
    executed = [(cell, records[i] if i < len(records) else None) for i, cell in enumerate(assembly.cells)]
    by_id = {cell.grade_id: (cell, record) for cell, record in executed if cell.grade_id}
    learner_after: dict[str | None, list[tuple[Any, Any]]] = {}
    anchor = None
    for cell, record in executed:
        if cell.kind == "learner":
            learner_after.setdefault(anchor, []).append((cell, record))
        else:
            anchor = cell.grade_id

    def learner_cells(key):
        return [new_code_cell(c.source, outputs=_outputs(r)) for c, r in learner_after.get(key, [])]

    cells = learner_cells(None)
    for count, src in enumerate(source_nb.cells, 1):
        cell = copy.deepcopy(src)
        gid = grade_id(cell)
        if cell.cell_type == "code":
            graded, record = by_id.get(gid, (None, None))
            if is_answer(cell) and graded is not None:
                cell.source = graded.source
            cell.outputs = _outputs(record)
            cell.execution_count = count if record else None
        cells.append(cell)
        if gid:
            cells += learner_cells(gid)
    if result.status != "graded":
        banner = f"**Grader status: {result.status}.** {result.detail}".strip()
        if result.notes:
            banner += "\n\n" + "\n".join(f"- {n}" for n in result.notes)
        cells.insert(0, new_markdown_cell(banner))
    nb = new_notebook(cells=cells, metadata=copy.deepcopy(source_nb.metadata))
    return nb


def write_notebook_atomic(nb: Any, path: Path) -> None:
    import nbformat

    from ..atomic import write_text_atomic

    write_text_atomic(path, nbformat.writes(nbformat.from_dict(nb)))
