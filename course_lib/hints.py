"""Hints on demand, from the course manifest: a first nudge, then more.

>>> reset_hints()
>>> text = next_hint("cache-aside-read")
>>> text.startswith("Hint 1 of")
True
"""

from __future__ import annotations

from collections import defaultdict

from .manifest import load_course

__all__ = ["hint", "next_hint", "reset_hints"]

_shown: defaultdict[str, int] = defaultdict(int)


def next_hint(exercise_id: str) -> str:
    """The next hint for an exercise as text (each call goes one level deeper)."""
    exercise = load_course().exercise(exercise_id)
    level = _shown[exercise_id]
    if level >= len(exercise.hints):
        return (f"No more hints for {exercise_id!r} (you have seen all {len(exercise.hints)}). "
                f"Re-read the failure message of the check cell: it says what was called and what came back.")
    _shown[exercise_id] = level + 1
    return f"Hint {level + 1} of {len(exercise.hints)} for {exercise_id!r}: {exercise.hints[level]}"


def hint(exercise_id: str) -> None:
    """Print the next hint for an exercise. Call again for a bigger one."""
    print(next_hint(exercise_id))


def reset_hints() -> None:
    """Start every exercise's hints from the first one again."""
    _shown.clear()
