"""Options and helpers shared by the instructor commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from course_lib.manifest import Lesson

from ..course import lessons


def add_lessons(parser: argparse.ArgumentParser, what: str = "default: every lesson in the manifest") -> None:
    parser.add_argument("lessons", nargs="*", metavar="LESSON", help=f"lesson slugs or numbers ({what})")


def add_exchange(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exchange", type=Path, metavar="DIR",
                        help="nbgrader exchange folder (default: Exchange.root from nbgrader_config.py, "
                             "/usr/local/share/nbgrader/exchange unless set)")


def chosen_lessons(args: argparse.Namespace) -> list[Lesson]:
    from ..cli import UsageError

    found = lessons(args.lessons)
    if not found:
        raise UsageError("the course manifest lists no lessons yet (course_lib/course.toml)")
    return found


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def add_redis_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-backend", choices=("auto", "redis-server", "fakeredis"), default="auto",
                        help="the grading Redis server each submission gets when no --redis-url is given, in its "
                             "own sandbox (default auto: redis-server where installed, else fakeredis)")
