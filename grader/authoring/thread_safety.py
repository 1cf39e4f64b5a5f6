"""What dev-check asks of an exercise the manifest declares ``thread_safe = "<Class>"``.

Two rules, both read from the source notebook (nothing executes):

- its hidden tests grade the class's locking with ``course_lib.lock_discipline.require_locking(check,
  "<Class>")``, and the reference passes that rule;
- its hidden tests run ``course_lib.stress.hammer`` with an ``interface=`` that names **every public
  method** of the reference class (with those of the same class in earlier answer cells), so
  no secondary method is left out of the thread stress.

>>> import nbformat
>>> from course_lib.manifest import Exercise
>>> answer = nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nclass Box:\\n    def put(self): ...\\n    def peek(self): ...\\n### END SOLUTION",
...                                    metadata={"nbgrader": {"grade_id": "box", "solution": True}})
>>> tests = nbformat.v4.new_code_cell("from course_lib.stress import hammer\\nhammer(ops, interface=('put',))\\n"
...                                   "require_locking(check, \\"Box\\")", metadata={"nbgrader": {"grade_id": "box-tests", "grade": True}})
>>> nb = nbformat.v4.new_notebook(cells=[answer, tests])
>>> for p in thread_safety_problems("box.ipynb", nb, Exercise("box", "01-box", 1, "", (), thread_safe="Box")):
...     print(p)  # doctest: +ELLIPSIS
box.ipynb: 'box-tests' stresses Box over ('put',) but not its public method(s) peek: ...
"""

from __future__ import annotations

import ast
from pathlib import Path

from course_lib.answer_code import Definition
from course_lib.lock_discipline import unguarded_state
from course_lib.manifest import Exercise

from ..course.cells import cell_text, grade_id

__all__ = ["thread_safety_problems", "stressed_interface"]


def thread_safety_problems(path: Path | str, nb, exercise: Exercise) -> list[str]:
    """The problems of one ``thread_safe`` exercise of the notebook ``nb`` read from ``path``."""
    cells = {grade_id(c): cell_text(c) for c in nb.cells if grade_id(c)}
    tests, answer = cells.get(exercise.tests_cell_id, ""), cells.get(exercise.answer_cell_id, "")
    name = exercise.thread_safe
    try:
        classes = [n for n in ast.parse(answer).body if isinstance(n, ast.ClassDef)]
    except SyntaxError as exc:
        return [f"{path}: answer cell {exercise.id!r} is not valid Python: {exc}"]
    if not any(c.name == name for c in classes):
        return [f"{path}: answer cell {exercise.id!r} defines no class {name!r} (thread_safe in the manifest)"]
    order = list(cells)
    earlier = [n for gid in order[:order.index(exercise.id)] if _is_answer_text(cells[gid]) for n in _classes(cells[gid])]
    return (_locking_problems(path, exercise, tests, answer, classes, earlier)
            + _stress_problems(path, exercise, tests, [c for c in earlier + classes if c.name == name]))


def _locking_problems(path, exercise: Exercise, tests: str, answer: str, classes, earlier) -> list[str]:
    name, problems = exercise.thread_safe, []
    if f'require_locking(check, "{name}")' not in tests:
        problems.append(f"{path}: {exercise.tests_cell_id!r} does not call require_locking(check, {name!r}) (the "
                        f"manifest declares {exercise.id!r} thread_safe = {name!r}): add it at the end of its hidden tests")
    for cls in (c for c in classes if c.name == name):
        for finding in unguarded_state(Definition(cls, answer.splitlines(), f"answer cell {exercise.id!r}",
                                                  tuple(earlier) + tuple(c for c in classes if c is not cls))):
            problems.append(f"{path}: the reference fails its own lock rule: {finding.message}")
    return problems


def _stress_problems(path, exercise: Exercise, tests: str, definitions: list[ast.ClassDef]) -> list[str]:
    name = exercise.thread_safe
    public = sorted({f.name for cls in definitions for f in cls.body
                     if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and not f.name.startswith("_")})
    stressed = stressed_interface(tests)
    if stressed is None:
        return [f"{path}: {exercise.tests_cell_id!r} does not run course_lib.stress.hammer over {name}'s public "
                f"methods {tuple(public)} (the manifest declares {exercise.id!r} thread_safe = {name!r}): add a "
                f"hammer(..., interface={tuple(public)!r}) block to its hidden tests"]
    missing = [m for m in public if m not in stressed]
    if missing:
        return [f"{path}: {exercise.tests_cell_id!r} stresses {name} over {tuple(sorted(stressed))!r} but not its "
                f"public method(s) {', '.join(missing)}: add an operation for each to the hammer() call and its "
                f"interface="]
    return []


def stressed_interface(tests: str) -> set[str] | None:
    """The method names a test cell passes as ``interface=`` to ``course_lib.stress.hammer`` (under any alias;
    several calls add up); ``None`` when it never calls it with a literal interface.

    >>> sorted(stressed_interface("from course_lib.stress import hammer as h\\nh(ops, interface=('get', 'set'))"))
    ['get', 'set']
    >>> stressed_interface("hammer(ops)") is None
    True
    """
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return None
    aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "course_lib.stress"
               for a in n.names if a.name == "hammer"}
    found: set[str] | None = None
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        func = call.func
        if not ((isinstance(func, ast.Name) and func.id in aliases) or (isinstance(func, ast.Attribute) and func.attr == "hammer")):
            continue
        for kw in call.keywords:
            if kw.arg == "interface":
                try:
                    names = ast.literal_eval(kw.value)
                except ValueError:
                    continue
                found = (found or set()) | {str(n) for n in names}
    return found


def _is_answer_text(text: str) -> bool:
    return "### BEGIN SOLUTION" in text


def _classes(text: str) -> list[ast.ClassDef]:
    try:
        return [n for n in ast.parse(text).body if isinstance(n, ast.ClassDef)]
    except SyntaxError:
        return []
