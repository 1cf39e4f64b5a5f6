"""What the peer may do with this side's objects: everything (the learner's side), or the tests' declared API (the judge)."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["Policy", "JudgePolicy"]


class Policy:
    """What the peer may do with this side's objects. The default allows everything."""

    def getattr(self, obj: Any, name: str) -> Any:
        return getattr(obj, name)

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        setattr(obj, name, value)

    def delattr(self, obj: Any, name: str) -> None:
        delattr(obj, name)

    def call(self, obj: Any) -> Callable[..., Any]:
        return obj

    def operator(self, obj: Any, dunder: str) -> None:
        """May the peer apply the operator ``dunder`` (``__getitem__``, ``__len__``...) to ``obj``?"""


class JudgePolicy(Policy):
    """The learner may use what each of the tests' objects declares (``grader.sandbox.learner_api``), and nothing else.

    Every read, call and operator the learner's code applies to one of the judge's
    objects is checked against :func:`grader.sandbox.learner_api.api_of`; anything not
    listed, every name starting with ``_`` and every ``setattr`` is refused with a
    ``PermissionError`` that says what was tried.
    """

    DESCRIPTIVE = frozenset({"__name__", "__qualname__", "__doc__", "__module__", "__wrapped__"})  # functools.wraps

    def __init__(self, trusted_modules: tuple[str, ...] = ("__main__",)) -> None:
        self.trusted = tuple(trusted_modules)  # where the tests' own code lives (the judge runs it as __main__)

    @staticmethod
    def _refuse(obj: Any, what: str) -> PermissionError:
        return PermissionError(f"the tests' {type(obj).__name__} does not let your code use {what}")

    def getattr(self, obj: Any, name: str) -> Any:
        from ..learner_api import api_of, guard_execute_command

        if name in self.DESCRIPTIVE:
            return getattr(obj, name)
        if name.startswith("_") or name not in api_of(obj, self.trusted):
            raise self._refuse(obj, f".{name}")
        value = getattr(obj, name)
        if name == "execute_command":
            return guard_execute_command(value)
        return value

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        raise PermissionError(f"the tests' {type(obj).__name__} is read-only to your code (tried to set .{name})")

    def delattr(self, obj: Any, name: str) -> None:
        raise PermissionError(f"the tests' {type(obj).__name__} is read-only to your code (tried to delete .{name})")

    def call(self, obj: Any) -> Callable[..., Any]:
        from ..learner_api import api_of

        if "__call__" not in api_of(obj, self.trusted):
            raise PermissionError(f"the tests' {type(obj).__name__} is not callable by your code")
        return obj

    def operator(self, obj: Any, dunder: str) -> None:
        from ..learner_api import api_of

        if not hasattr(type(obj), dunder):  # what Python itself says (list() asks a generator for its length)
            raise TypeError(f"the tests' {type(obj).__name__} does not support {dunder}")
        if dunder not in api_of(obj, self.trusted):
            raise self._refuse(obj, dunder)
