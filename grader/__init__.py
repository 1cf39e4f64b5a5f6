"""The course's grader: release, collect, autograde (sandboxed, in parallel), feedback, reports, self-check.

Public API:

- ``grade_notebook(source, submission)``: grade one notebook, returns a ``NotebookResult``.
- ``Limits``: time, memory, file and output budgets for a submission.
- ``python -m grader --help``: the command-line interface.
"""

from .grade import ExerciseResult, NotebookResult, grade_notebook
from .sandbox import Limits

__all__ = ["ExerciseResult", "NotebookResult", "grade_notebook", "Limits"]
