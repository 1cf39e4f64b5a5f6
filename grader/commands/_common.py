"""Options and helpers shared by the instructor commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from course_lib.manifest import Lesson

from ..course.layout import lessons


def add_lessons(parser: argparse.ArgumentParser,
                what: str = "default: the lessons released to the class with `release` or `import`") -> None:
    parser.add_argument("lessons", nargs="*", metavar="LESSON", help=f"lesson slugs or numbers ({what})")


def add_exchange(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exchange", type=Path, metavar="DIR",
                        help="nbgrader exchange folder (default: Exchange.root from nbgrader_config.py, "
                             "/usr/local/share/nbgrader/exchange unless set)")


def chosen_lessons(args: argparse.Namespace) -> list[Lesson]:
    """The lessons named on the command line, else the lessons released to the class (manifest order)."""
    from ..classroom.released import released_slugs
    from ..course.layout import course_root
    from ..errors import UsageError

    found = lessons(args.lessons)
    if not found:
        raise UsageError("the course manifest lists no lessons yet (course_lib/course.toml)")
    if args.lessons:
        return found
    released = released_slugs(course_root())
    chosen = [lesson for lesson in found if lesson.slug in released]
    if not chosen:
        raise UsageError("no lesson is released to the class yet: run `python -m grader release LESSON` "
                         "(or `import LESSON PATH`) first, or name the lessons to work on")
    return chosen


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def add_redis_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-backend", choices=("auto", "redis-server", "fakeredis"), default="auto",
                        help="the grading Redis server each submission gets when no --redis-url is given, in its "
                             "own sandbox (default auto: redis-server where installed, else fakeredis)")
