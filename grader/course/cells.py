"""Reading notebooks safely and reading their nbgrader cell metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nbformat (and jsonschema under it) is imported when a notebook is read
    import nbformat

__all__ = ["NotebookUnreadable", "read_notebook", "nbgrader_meta", "grade_id", "is_answer", "is_tests", "MAX_NOTEBOOK_BYTES", "cell_text", "STUB", "exercise_id_of"]

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"  # an unanswered cell: nbgrader_config.py writes it too

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


class NotebookUnreadable(ValueError):
    """The file is not a notebook the grader can use; the message says why."""


def read_notebook(path: str | Path, *, max_bytes: int = MAX_NOTEBOOK_BYTES) -> nbformat.NotebookNode:
    """Read a version-4 notebook, refusing huge, malformed or wrong-version files with a clear reason."""
    path = Path(path)
    if not path.is_file():
        raise NotebookUnreadable(f"{path}: no such notebook file")
    size = path.stat().st_size
    if size > max_bytes:
        raise NotebookUnreadable(f"{path}: {size / 1e6:.1f} MB is larger than the {max_bytes / 1e6:.0f} MB limit; "
                                 f"clear the outputs (Edit > Clear Outputs of All Cells) and save again")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise NotebookUnreadable(f"{path}: not a valid notebook file (JSON error: {str(exc)[:200]})") from None
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        version = raw.get("nbformat") if isinstance(raw, dict) else None
        raise NotebookUnreadable(f"{path}: notebook format version {version!r} is not supported; "
                                 f"open and save it in JupyterLab 4 to convert it to version 4")
    import nbformat

    try:
        nb = nbformat.from_dict(raw)
        nbformat.validate(nb, relax_add_props=True)
    except Exception as exc:  # nbformat raises several types for broken structure
        raise NotebookUnreadable(f"{path}: not a valid version-4 notebook ({str(exc).splitlines()[0][:200]})") from None
    return nb


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: Any) -> str | None:
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) and value else None


def is_answer(cell: Any) -> bool:
    """An autograded answer cell: the learner writes code here."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_tests(cell: Any) -> bool:
    """A locked grade cell with visible checks and (in the source) hidden tests."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def cell_text(cell: Any) -> str:
    """A cell's source as one string (nbformat keeps it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def exercise_id_of(tests_cell_id: str) -> str:
    """The exercise a test cell checks: its grade id without ``-tests`` (``course_lib.manifest.Exercise.tests_cell_id``).

    >>> exercise_id_of("read-tests"), exercise_id_of("setup")
    ('read', 'setup')
    """
    return tests_cell_id.removesuffix("-tests")
