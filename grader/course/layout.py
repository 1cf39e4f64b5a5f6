"""Where the course lives on disk, and its lessons.

The grader can work on any course folder: ``$COURSE_ROOT`` (or the global
``--course DIR`` option, which sets it) points at a folder with
``course_lib/course.toml``, ``solutions/``, ``notebooks/`` and
``nbgrader_config.py``. Without it, the checkout this package was installed
from is the course. The notebooks themselves always read the installed
manifest through ``course_lib.load_course()``; only the grader follows
``$COURSE_ROOT``.
"""

from __future__ import annotations

import os
from pathlib import Path

from course_lib.manifest import COURSE_ROOT, MANIFEST_PATH, Course, Lesson, load_course

__all__ = ["course_root", "manifest_path", "load", "lessons", "find_lesson", "course_id"]


def course_root() -> Path:
    """The course folder: ``$COURSE_ROOT`` or the checkout this package was installed from."""
    return Path(os.environ.get("COURSE_ROOT") or COURSE_ROOT).resolve()


def manifest_path(root: Path | None = None) -> Path:
    """``<course root>/course_lib/course.toml`` (the installed manifest when the root has none)."""
    candidate = (root or course_root()) / "course_lib" / "course.toml"
    return candidate if candidate.is_file() else MANIFEST_PATH


def load(root: Path | None = None) -> Course:
    """The manifest of the course at ``root`` (default: ``course_root()``)."""
    return load_course(manifest_path(root))


def course_id(root: Path | None = None) -> str:
    """The nbgrader course id from the course's ``nbgrader_config.py`` (``CourseDirectory.course_id``)."""
    import re

    config = (root or course_root()) / "nbgrader_config.py"
    if config.is_file():
        found = re.search(r"CourseDirectory\.course_id\s*=\s*['\"]([^'\"]+)['\"]", config.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
    return "caching-course"


def lessons(names: list[str] | None = None) -> list[Lesson]:
    """All lessons in order, or the named ones (slug or number), in the order asked."""
    course: Course = load()
    if not names:
        return list(course.lessons)
    return [find_lesson(n) for n in names]


def find_lesson(name: str) -> Lesson:
    from ..errors import UsageError

    try:
        return load().lesson(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
