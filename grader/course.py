"""Where the course lives on disk, and its lessons."""

from __future__ import annotations

import os
from pathlib import Path

from course_lib.manifest import COURSE_ROOT, Course, Lesson, load_course

__all__ = ["course_root", "lessons", "find_lesson"]


def course_root() -> Path:
    """The course folder: ``$COURSE_ROOT`` or the checkout this package was installed from."""
    return Path(os.environ.get("COURSE_ROOT") or COURSE_ROOT).resolve()


def lessons(names: list[str] | None = None) -> list[Lesson]:
    """All lessons in order, or the named ones (slug or number), in the order asked."""
    course: Course = load_course()
    if not names:
        return list(course.lessons)
    return [find_lesson(n) for n in names]


def find_lesson(name: str) -> Lesson:
    from .cli import UsageError

    try:
        return load_course().lesson(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
