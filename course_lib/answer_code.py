"""The code of the learner's answer cells, as text, for hidden tests that read it (``lock_discipline``).

The judge runs the tests where the learner's objects are only references; some properties of an answer
(is shared state changed under the lock?) are in its code, not in anything a call can observe. The grader
hands the judge the text of every cell the learner controls (answer cells and the cells they added),
in notebook order, each tagged with the exercise whose block it belongs to; ``provide`` stores them
here. Nothing here runs that text: it is only parsed with ``ast``.

In a notebook kernel (an instructor running a source notebook by hand) the cells executed so far
(IPython's ``In``) stand in for it.

>>> provide([("ttl", "class Cache:\\n    pass\\n"), ("lru", "x = 1\\n"), ("lru", "class Cache:\\n    y = 2\\n")])
>>> definition("Cache", "ttl").where, definition("Cache", "lru").where
("answer cell 'ttl'", "the cell you added after answer cell 'lru'")
>>> definition("Cache", "lru").node.body[0].lineno
2
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterable

__all__ = ["AnswerCodeUnavailable", "Definition", "definition", "provide"]

_CELLS: list[tuple[str, str]] = []  # (exercise id of the block the cell belongs to, its source)
_PROVIDED = False


class AnswerCodeUnavailable(LookupError):
    """The learner's code of a class cannot be read (not given to the tests, or no ``class`` statement)."""


@dataclass(frozen=True)
class Definition:
    """A top-level ``class`` statement of the learner's: its tree, its cell's lines, and where it is."""

    node: ast.ClassDef
    lines: list[str]
    where: str
    others: tuple[ast.ClassDef, ...] = ()  # the other classes of the cells read (base classes, helpers)


def provide(cells: Iterable[tuple[str, str]]) -> None:
    """Store the learner's cells, ``(exercise id of their block, source)`` in notebook order (the judge does)."""
    global _PROVIDED
    _CELLS[:] = [(str(ex), str(src)) for ex, src in cells]
    _PROVIDED = True


def _kernel_cells() -> list[tuple[str, str]]:
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    history = shell.user_ns.get("In", []) if shell is not None else []
    return [("", src) for src in history if isinstance(src, str)]


def _labelled(cells: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    out, previous = [], None
    for ex, src in cells:
        if not ex:
            label = "a cell you ran"
        elif ex != previous:
            label = f"answer cell {ex!r}"
        else:
            label = f"the cell you added after answer cell {ex!r}"
        out.append((ex, src, label))
        previous = ex
    return out


def definition(name: str, exercise: str) -> Definition:
    """The last top-level ``class name`` in the cells up to the end of ``exercise``'s block.

    Raises AnswerCodeUnavailable with the reason, in the learner's words.
    """
    cells = _CELLS if _PROVIDED else _kernel_cells()
    if not cells:
        raise AnswerCodeUnavailable("the grader did not give the tests the code of your answer cells")
    labelled = _labelled(cells)
    if _PROVIDED:
        ends = [i for i, (ex, _, _) in enumerate(labelled) if ex == exercise]
        if not ends:
            raise AnswerCodeUnavailable(f"the notebook has no answer cell {exercise!r}")
        labelled = labelled[: ends[-1] + 1]
    found: Definition | None = None
    classes: list[ast.ClassDef] = []
    for _, source, label in labelled:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # the learner's process could not run it either
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes.append(node)
                if node.name == name:
                    found = Definition(node, source.splitlines(), label)
    if found is None:
        raise AnswerCodeUnavailable(
            f"no `class {name}:` statement was found in your answer cell {exercise!r} (or the cells you added "
            f"after it). The tests read the class's code to check its locking: define it with a class statement "
            f"at the top level of the cell.")
    return Definition(found.node, found.lines, found.where,
                      tuple(c for c in classes if c is not found.node))
