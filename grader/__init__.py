"""The course's grader: release, collect, autograde (sandboxed, in parallel), feedback, reports, self-check.

Public API:

- ``grade_notebook(source, submission)``: grade one notebook, returns a ``NotebookResult``.
- ``Limits``: time, memory, file and output budgets for a submission.
- ``python -m grader --help``: the command-line interface.

The names are imported on first use (PEP 562): the sandboxed runner (``grader.sandbox.runner``) lives in this
package too, and must not pay for nbformat and the rest of the grader at every start.
"""

from importlib import import_module

__all__ = ["ExerciseResult", "NotebookResult", "grade_notebook", "Limits"]

_HOMES = {"ExerciseResult": ".grading.result", "NotebookResult": ".grading.result", "grade_notebook": ".grading.grade",
          "Limits": ".sandbox.protocol"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
