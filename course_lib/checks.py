"""Visible check cells: a diagnostic ladder with messages that say what happened.

Each exercise's check cell climbs the ladder: is the name defined? is it
still the stub? does it make the common mistake? does it behave exactly
right? A failure says what was called, what was expected and what came back.
Passing the visible checks is necessary, not sufficient: hidden tests run at
grading.

>>> ns = {"double": lambda x: x * 2}
>>> check = Check("demo", ns)
>>> double = check.defined("double", kind="function")
>>> check.equal("double(2)", check.call("double(2)", double, 2), 4)
>>> try:
...     check.equal("double(3)", double(3), 7)
... except CheckFailed as exc:
...     print(exc)
[demo] Called double(3). Expected 7, but got 6.
"""

from __future__ import annotations

import linecache
import os
import sys
import textwrap
from typing import Any, Callable, Mapping

__all__ = ["Check", "CheckFailed", "NotDoneYet", "by_reference", "passed_by_reference", "result_by_reference",
           "learner_line", "carry_learner_line"]

_COURSE_DIR = os.path.dirname(os.path.abspath(__file__))
_GRADER_DIR = os.path.join(os.path.dirname(_COURSE_DIR), "grader")  # the grader's frames are never the learner's
_NOT_LEARNER_FILES = ("<grader: tests>", "<course>")  # what the grader compiles test and course cells as
_CARRIED = "_course_learner_line"  # where an exception raised in another process came from (see the grader's judge)
_MAX_MESSAGE_LINES = 6

last_exercise_id = ""  # the exercise of the check cell that ran last ("not done yet" names it)
_BY_REFERENCE: dict[int, Any] = {}  # id -> container (kept alive, so its id stays its own)


def by_reference(container: Any) -> Any:
    """Mark a list, dict or set that the learner's code should keep and change in place.

    In a notebook this returns ``container`` unchanged. When the grader runs the
    tests in its judge process, containers passed to the learner's code are
    copied (and the changes a call made are copied back when it returns); a
    container marked here is passed by reference instead, so an object that
    keeps it (``ReadThroughCache(loader, cache=d)``) changes the test's ``d``.

    >>> d = by_reference({})
    >>> d, passed_by_reference(d), passed_by_reference({})
    ({}, True, False)
    """
    _BY_REFERENCE[id(container)] = container
    return container


def result_by_reference(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` and get its very result, not a copy.

    In a notebook this is just the call. When the grader runs the tests in its
    judge, a list, dict or set the learner's function returns is normally
    copied; through this call it stays in the learner's process and the test
    gets a reference to it (and to the containers inside it), so changing it
    changes the learner's object: use it to test that a cache does not hand
    out its own mutable values.

    >>> result_by_reference(sorted, [3, 1, 2])
    [1, 2, 3]
    """
    kept = getattr(type(fn), "grader_call_kept", None)
    return kept(fn, *args, **kwargs) if kept is not None else fn(*args, **kwargs)


def passed_by_reference(container: Any) -> bool:
    """Whether ``container`` was marked with :func:`by_reference`."""
    return _BY_REFERENCE.get(id(container)) is container


def _kind(obj: Any) -> str:
    """'class', 'function', 'callable' or 'object'; a reference from the grader's judge carries its own."""
    if isinstance(obj, type):
        return "class"
    remote = getattr(type(obj), "grader_kind", None)
    if remote is not None:  # a grader.sandbox.rpc.remote.RemoteObject: what the object is on the learner's side
        return obj.grader_kind
    return "function" if callable(obj) and not isinstance(obj, type) else "object"


class CheckFailed(AssertionError):
    """A visible check failed; the message explains what to fix.

    In a notebook it renders as its message alone (``_render_traceback_``, which IPython calls
    instead of printing a traceback): the exercise id, what was called and what came back, and
    the command for a hint. The grader reads the same text from ``str(exc)``.

    >>> print("\\n".join(CheckFailed("[demo] Called f(1). Expected 2, but got 1.", "demo")._render_traceback_(color=False)))
    ✗ demo: check failed
      Called f(1). Expected 2, but got 1.
      Stuck? Run hint("demo") in a new cell. Grade with the hidden tests: check_all()
    """

    headline = "check failed"

    def __init__(self, message: str, exercise_id: str = "") -> None:
        super().__init__(message)
        self.exercise_id = exercise_id

    def _render_traceback_(self, color: bool = True) -> list[str]:
        prefix = f"[{self.exercise_id}] "
        text = str(self)
        text = text[len(prefix):] if self.exercise_id and text.startswith(prefix) else text
        body = []
        for paragraph in text.splitlines() or [""]:
            body += textwrap.wrap(paragraph, 110) or [""]
        if len(body) > _MAX_MESSAGE_LINES:
            body = body[: _MAX_MESSAGE_LINES - 1] + [body[_MAX_MESSAGE_LINES - 1][:100] + " …"]
        red, bold, reset = ("\x1b[31m", "\x1b[1m", "\x1b[0m") if color else ("", "", "")
        who = self.exercise_id or "check"
        lines = [f"{red}{bold}✗ {who}: {self.headline}{reset}"] + [f"  {line}" for line in body]
        if self.exercise_id:
            lines.append(f'  Stuck? Run hint("{self.exercise_id}") in a new cell. '
                         f"Grade with the hidden tests: check_all()")
        return lines


class NotDoneYet(CheckFailed):
    """The exercise is still its stub (it raised NotImplementedError).

    Validate, ``check`` and autograde score it 0 like any failure. In a learner's own kernel,
    Run All shows "not done yet" and carries on (see ``course_lib.notebook``).
    """

    headline = "not done yet"


def carry_learner_line(exc: BaseException, where: str) -> None:
    """Say where in the learner's code ``exc`` was raised, when its frames stayed in another process.

    The grader's judge calls this for an exception that came back from the learner's process (whose
    frames do not travel), with the place the learner's side reported: ``learner_line(exc)`` then
    returns ``where``.
    """
    try:
        exc.__dict__[_CARRIED] = str(where)
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass


def _is_learner_file(filename: str) -> bool:
    return not (filename.startswith((_COURSE_DIR, _GRADER_DIR, "<frozen")) or filename in _NOT_LEARNER_FILES
                or "site-packages" in filename or filename.startswith(sys.prefix)
                or filename.startswith(sys.base_prefix))


def learner_line(exc: BaseException) -> str:
    """Where in the learner's code ``exc`` was raised: ``'line 5 of get(): return cache[x]'``, or ''.

    The deepest frame outside the course library, the grader and installed packages is the
    learner's (a notebook cell). Under the grader's judge the learner's code runs in another
    process and its frames do not travel: there the place comes with the exception
    (:func:`carry_learner_line`), named after the learner's cell.

    >>> def get(cache, x):
    ...     return cache[x]
    >>> try:
    ...     get({}, "x")
    ... except KeyError as exc:
    ...     print(learner_line(exc))
    line 2 of get(): return cache[x]
    >>> err = KeyError("x"); carry_learner_line(err, "answer cell 'read', line 4: return cache[x]")
    >>> learner_line(err)
    "answer cell 'read', line 4: return cache[x]"
    """
    carried = getattr(exc, "__dict__", {}).get(_CARRIED)
    if isinstance(carried, str) and carried:
        return carried
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        if _is_learner_file(filename):
            text = linecache.getline(filename, tb.tb_lineno).strip()
            if text:
                found = f"line {tb.tb_lineno}" + (f" of {code.co_name}()" if code.co_name != "<module>" else "") \
                    + f": {text}"
        tb = tb.tb_next
    return found


class Check:
    """The visible checks of one exercise; ``namespace`` is usually ``globals()``."""

    def __init__(self, exercise_id: str, namespace: Mapping[str, Any]) -> None:
        global last_exercise_id
        self.exercise_id = exercise_id
        self.namespace = namespace
        last_exercise_id = exercise_id

    def fail(self, message: str) -> None:
        """Stop the check with ``message`` (prefixed with the exercise id)."""
        raise CheckFailed(f"[{self.exercise_id}] {message}", self.exercise_id)

    def defined(self, name: str, *, kind: str | None = None) -> Any:
        """Rung 1: ``name`` exists (``kind`` may be ``"class"`` or ``"function"``)."""
        if name not in self.namespace:
            self.fail(f"`{name}` is not defined. Run your answer cell (the one that defines `{name}`) "
                      f"before this check, and keep the name exactly `{name}`.")
        obj = self.namespace[name]
        actual = _kind(obj)
        type_name = getattr(obj, "grader_type", type(obj).__name__).rpartition(".")[2]
        if kind == "class" and actual != "class":
            self.fail(f"`{name}` should be a class, but it is a {type_name}.")
        if kind == "function" and actual not in ("function", "callable"):
            self.fail(f"`{name}` should be a function, but it is a {type_name}.")
        return obj

    def call(self, description: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Rung 2: call ``fn``; the stub or a crash becomes a clear failure."""
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise NotDoneYet(f"[{self.exercise_id}] Called {description}: it raised NotImplementedError, so it is "
                             f"still the stub. Replace `raise NotImplementedError()` with your implementation.",
                             self.exercise_id) from None
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any crash is the learner's to see
            where = learner_line(exc)
            self.fail(f"Called {description}: it raised {type(exc).__name__}: {exc}"
                      + (f", in your code at {where}" if where else "")
                      + f". Your code raised this, not the check: try {description} yourself in a new cell.")

    def mistake(self, happened: bool, message: str) -> None:
        """Rung 3: a known common mistake was detected; explain it."""
        if happened:
            self.fail(f"Common mistake: {message}")

    def equal(self, description: str, got: Any, expected: Any, *, why: str = "") -> None:
        """Rung 4: exact behaviour. ``got == expected`` and, for None/bool, the same object."""
        same = got is expected if expected is None or isinstance(expected, bool) else got == expected
        if not same:
            self.fail(f"Called {description}. Expected {expected!r}, but got {got!r}." + (f" {why}" if why else ""))

    def true(self, condition: bool, message: str) -> None:
        """Rung 4: a property that must hold; ``message`` says what was observed."""
        if not condition:
            self.fail(message)

    def passed(self) -> None:
        """Say so once every rung held (a green box in a notebook, one line elsewhere)."""
        text = (f"[{self.exercise_id}] All visible checks passed. Hidden tests also run when your "
                f"notebook is graded: save it and run check_all() to grade it yourself.")
        from .notebook import show_box

        show_box(text, ok=True, title=f"✓ {self.exercise_id}: all visible checks passed")
