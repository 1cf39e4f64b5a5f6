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

from typing import Any, Callable, Mapping

__all__ = ["Check", "CheckFailed"]


class CheckFailed(AssertionError):
    """A visible check failed; the message explains what to fix."""


class Check:
    """The visible checks of one exercise; ``namespace`` is usually ``globals()``."""

    def __init__(self, exercise_id: str, namespace: Mapping[str, Any]) -> None:
        self.exercise_id = exercise_id
        self.namespace = namespace

    def fail(self, message: str) -> None:
        """Stop the check with ``message`` (prefixed with the exercise id)."""
        raise CheckFailed(f"[{self.exercise_id}] {message}")

    def defined(self, name: str, *, kind: str | None = None) -> Any:
        """Rung 1: ``name`` exists (``kind`` may be ``"class"`` or ``"function"``)."""
        if name not in self.namespace:
            self.fail(f"`{name}` is not defined. Run your answer cell (the one that defines `{name}`) "
                      f"before this check, and keep the name exactly `{name}`.")
        obj = self.namespace[name]
        if kind == "class" and not isinstance(obj, type):
            self.fail(f"`{name}` should be a class, but it is a {type(obj).__name__}.")
        if kind == "function" and (isinstance(obj, type) or not callable(obj)):
            self.fail(f"`{name}` should be a function, but it is a {type(obj).__name__}.")
        return obj

    def call(self, description: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Rung 2: call ``fn``; the stub or a crash becomes a clear failure."""
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            self.fail(f"Called {description}: it raised NotImplementedError, so it is still the stub. "
                      f"Replace `raise NotImplementedError()` with your implementation.")
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any crash is the learner's to see
            self.fail(f"Called {description}: it raised {type(exc).__name__}: {exc}")

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
        """Print the success line once every rung held."""
        print(f"[{self.exercise_id}] All visible checks passed. Hidden tests also run when your "
              f"notebook is graded: run `python -m grader check` to grade it yourself.")
