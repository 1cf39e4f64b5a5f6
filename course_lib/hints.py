"""Hints on demand, from the course manifest: a first nudge, then more.

>>> reset_hints()
>>> text = next_hint("cache-aside-read")
>>> text.startswith("Hint 1 of")
True
"""

from __future__ import annotations

from collections import defaultdict

from .manifest import load_course

__all__ = ["hint", "next_hint", "reset_hints", "HintError"]

_shown: defaultdict[str, int] = defaultdict(int)


def _exercise(exercise_id: object):
    course = load_course()
    known = [e.id for lesson in course.lessons for e in lesson.exercises]
    if not isinstance(exercise_id, str) or not exercise_id:
        raise HintError('hint() needs the id of an exercise, in quotes: the one in its check cell\'s '
                        'Check("...") line, e.g. hint("' + known[0] + '")')
    try:
        return course.exercise(exercise_id)
    except KeyError:
        import difflib

        close = difflib.get_close_matches(exercise_id, known, n=3, cutoff=0.5)
        raise HintError(f"there is no exercise {exercise_id!r}. "
                        + (f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
                        + "The id is the one in the check cell's Check(\"...\") line.") from None


class HintError(LookupError):
    """hint() was given no exercise id, or one the course does not have; the message says which ids exist."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mhint: {self}\x1b[0m"]


def next_hint(exercise_id: str) -> str:
    """The next hint for an exercise as text (each call goes one level deeper)."""
    exercise = _exercise(exercise_id)
    level = _shown[exercise_id]
    if level >= len(exercise.hints):
        return (f"No more hints for {exercise_id!r} (you have seen all {len(exercise.hints)}). "
                f"Re-read the failure message of the check cell: it says what was called and what came back.")
    _shown[exercise_id] = level + 1
    return f"Hint {level + 1} of {len(exercise.hints)} for {exercise_id!r}: {exercise.hints[level]}"


def hint(exercise_id: str = "") -> None:
    """Print the next hint for an exercise. Call again for a bigger one.

    Without an id: the exercise whose check cell ran last, if one did.
    """
    if not exercise_id:
        from . import checks

        exercise_id = checks.last_exercise_id
    print(next_hint(exercise_id))


def reset_hints() -> None:
    """Start every exercise's hints from the first one again."""
    _shown.clear()
