"""Validate in the learner's lab: what a failed check says, not the check cell's source and traceback.

nbgrader's Validate button posts the notebook's path to ``/assignments/validate``; nbgrader's handler
runs ``nbgrader.validator.Validator`` and its dialog shows, for every failed grade cell, the cell's whole
source and every error output. In this course a check cell's source is a dozen lines of ``Check``
calls, and an error the check did not expect comes with its chained traceback.

:class:`CourseValidator` is nbgrader's Validator (same kernel, same preprocessors, same verdicts, same
"changed cell" warnings) whose failed cells read, instead:

- in place of the source, which exercise the cell checks and its points;
- in place of the traceback, the check's own message (``CheckFailed`` renders itself as a few lines
  with the hint command), or one line naming the error and the learner's line it came from; when
  the exercise's answer cell itself failed to run (a SyntaxError, say), that, with its line.

This server extension answers ``/assignments/validate`` ahead of nbgrader's handler with it. It is
enabled in the learner's lab only (``python -m grader lab`` writes it into that lab's config); an
instructor's Validate keeps nbgrader's full report.
"""

from __future__ import annotations

import html
import re
import traceback
from pathlib import Path
from typing import Any

from ..course.cells import exercise_id_of

__all__ = ["short_failure", "cell_names", "course_validator", "_jupyter_server_extension_points",
           "_load_jupyter_server_extension"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[(\d+)\], line (\d+)")  # IPython's name for a frame in a notebook cell
_FILE_LINE = re.compile(r"\s*\([^()]*, line (\d+)\)$")  # the end of a SyntaxError's evalue: " (1234.py, line 3)"
_CHECK_ERRORS = ("CheckFailed", "NotDoneYet")  # course_lib.checks: they render as their own message
MAX_LINES = 6


def _meta(cell: Any) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _errors(cell: Any) -> list[dict[str, Any]]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _plain(lines: Any) -> list[str]:
    text = "\n".join(lines) if isinstance(lines, list) else str(lines or "")
    return [line.rstrip() for line in _ANSI.sub("", text).splitlines()]


def _where(error: dict[str, Any], cells: dict[int, str]) -> str:
    """' at answer cell 'read', line 4': the innermost notebook-cell frame of an error output, or ''.

    IPython names a cell by its execution count (``Cell In[7], line 4``); Validate's kernel ran the
    notebook from the top, so ``cells`` (execution count -> the cell's name) says which cell that is.
    """
    found = [m.groups() for line in _plain(error.get("traceback", [])) for m in [_CELL_LINE.search(line)] if m]
    if found:
        count, line = found[-1]
        return f" at {cells.get(int(count), 'a cell of your notebook')}, line {line}"
    if error.get("ename") in ("SyntaxError", "IndentationError", "TabError"):
        match = _FILE_LINE.search(str(error.get("evalue", "")))
        return f" on line {match.group(1)}" if match else ""
    return ""


def cell_names(nb: Any) -> dict[int, str]:
    """{execution count: how a message names that cell} for an executed notebook."""
    names, after = {}, ""
    for cell in nb.get("cells", []):
        count = cell.get("execution_count")
        meta = _meta(cell)
        grade_id = str(meta.get("grade_id", ""))
        if meta.get("solution"):
            after = name = f"answer cell {grade_id!r}"
        elif meta.get("grade"):
            name = f"the check cell of {exercise_id_of(grade_id)!r}"
        elif not meta:
            name = f"the cell you added after {after}" if after else "a cell you added"
        else:
            name = f"the lesson's cell {grade_id!r}"
        if isinstance(count, int):
            names[count] = name
    return names


def short_failure(cell: Any, answer: Any | None, cells: dict[int, str] | None = None) -> tuple[str, str]:
    """(what the cell is, what went wrong) for a failed grade cell, in a few lines.

    ``answer`` is the exercise's answer cell (the solution cell whose grade_id is the exercise id),
    if the notebook has one; ``cells`` names the cells by execution count (:func:`cell_names`).

    >>> cell = {"metadata": {"nbgrader": {"grade_id": "read-tests", "points": 2}}, "outputs": [
    ...     {"output_type": "error", "ename": "KeyError", "evalue": "'x'",
    ...      "traceback": ["Traceback ...", "Cell In[7], line 4", "KeyError: 'x'"]}]}
    >>> label, text = short_failure(cell, None, {7: "answer cell 'read'"})
    >>> print(label); print(text)
    read: its check cell (2 points)
    ✗ read: the check stopped with KeyError: 'x', raised at answer cell 'read', line 4.
      Run the check cell to see the whole error.
    """
    cells = cells or {}
    meta = _meta(cell)
    exercise = exercise_id_of(str(meta.get("grade_id", "")))
    label = f"{exercise}: its check cell ({float(meta.get('points') or 0):g} points)"
    answer_errors = [e for e in _errors(answer or {}) if e.get("ename") != "NotImplementedError"]
    if answer_errors:
        error = answer_errors[-1]
        ename, evalue = str(error.get("ename", "Error")), _ANSI.sub("", str(error.get("evalue", "")))
        if ename in ("SyntaxError", "IndentationError", "TabError"):
            where = _where(error, cells).replace(f" at answer cell {exercise!r},", " on")
            evalue = _FILE_LINE.sub("", evalue)
            return label, (f"✗ {exercise}: your answer cell has a {ename}{where}: {evalue}\n"
                           f"  Python could not read the cell, so nothing in it was defined: fix that line, run "
                           f"the cell, then Validate again.")
        where = _where(error, cells)
        return label, (f"✗ {exercise}: your answer cell raised {ename}{',' if where else ''}{where} when it ran: "
                       f"{evalue[:300]}\n  Fix the answer cell first, run it, then Validate again.")
    errors = _errors(cell)
    if not errors:
        return label, f"✗ {exercise}: the check did not pass (partial credit)."
    error = errors[-1]
    if error.get("ename") in _CHECK_ERRORS:
        lines = [line for line in _plain(error.get("traceback", [])) if line.strip()]
        if len(lines) > MAX_LINES:
            lines = lines[: MAX_LINES - 1] + [lines[-1]]  # the hint command stays
        return label, "\n".join(lines)
    ename, evalue = str(error.get("ename", "Error")), " ".join(_ANSI.sub("", str(error.get("evalue", ""))).split())
    where = _where(error, cells)
    return label, (f"✗ {exercise}: the check stopped with {ename}: {evalue[:300]}"
                   f"{', raised' + where if where else ''}.\n  Run the check cell to see the whole error.")


def course_validator(config: Any) -> Any:
    """nbgrader's Validator whose failed cells are reported by :func:`short_failure`."""
    from nbgrader.validator import Validator

    class CourseValidator(Validator):
        def _get_failed_cells(self, nb: Any) -> list[Any]:
            failed = super()._get_failed_cells(nb)
            answers = {_meta(c).get("grade_id"): c for c in nb.cells if _meta(c).get("solution")}
            names = cell_names(nb)
            self.short = [short_failure(c, answers.get(exercise_id_of(str(_meta(c).get("grade_id", "")))), names)
                          for c in failed]
            return failed

        def validate(self, filename: str) -> dict[str, list[dict[str, str]]]:
            self.short = []
            results = super().validate(filename)
            if "failed" in results:
                results["failed"] = [{"source": label, "error": html.escape(text), "raw_error": text}
                                     for label, text in self.short]
            return results

    return CourseValidator(config=config)


def _handler_class() -> Any:
    from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError
    from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler
    from tornado import web

    class CourseValidateHandler(ValidateAssignmentHandler):
        """nbgrader's Validate handler, with the course's short report of failed cells."""

        def validate_notebook(self, path: str) -> dict[str, Any]:
            root = Path(self.root_dir).resolve()
            target = (root / path).resolve()
            if not target.is_relative_to(root):
                raise web.HTTPError(403, "Access denied: path outside allowed directory")
            try:
                result = course_validator(self.load_config()).validate(str(target))
            except (SchemaTooOldError, SchemaTooNewError):
                return super().validate_notebook(path)  # nbgrader's own instructions for its metadata
            except Exception as exc:  # noqa: BLE001 - the dialog says what failed, the log has the traceback
                self.log.error(traceback.format_exc())
                return {"success": False, "value": f"Validate could not run {target.name}: {type(exc).__name__}: "
                                                   f"{exc}. Save the notebook and try again; check_all() in a "
                                                   f"cell grades it too."}
            return {"success": True, "value": result}

    return CourseValidateHandler


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "grader.lab.validate"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join
    from tornado.routing import HostMatches, Rule
    from tornado.web import _ApplicationRouter

    webapp = serverapp.web_app
    webapp.settings.setdefault("root_dir", serverapp.root_dir)  # what nbgrader's handler reads
    route = [(url_path_join(webapp.settings["base_url"], r"/assignments/validate"), _handler_class())]
    # Ahead of nbgrader's own handler for the same URL (added by its validate_assignment extension).
    webapp.default_router.rules.insert(0, Rule(HostMatches(".*$"), _ApplicationRouter(webapp, route)))
    serverapp.log.info("grader.lab.validate: Validate reports failed checks by their message")
