"""``grade``: grade one notebook against its lesson's source and print the result (for course authors)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..course.layout import course_root, find_lesson
from ..errors import UsageError
from ..grading.grade import grade_notebook
from ..sandbox.protocol import Limits
from ._common import add_redis_backend

NAME = "grade"
HELP = ("grade one notebook file against a lesson's hidden tests and print the result as JSON; exit status 0: "
        "full marks, 1: points lost, 3: could not be graded (timed out, crashed, unreadable)")
EXIT_FULL_MARKS, EXIT_POINTS_LOST, EXIT_NOT_GRADED = 0, 1, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", help="lesson slug or number")
    parser.add_argument("notebook", type=Path, help="the notebook to grade (it is only read)")
    parser.add_argument("--redis-url", help="grade against this Redis server instead of a server of its own")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell")
    add_redis_backend(parser)


def run(args: argparse.Namespace) -> int:
    lesson = find_lesson(args.lesson)
    if not args.notebook.is_file():
        raise UsageError(f"{args.notebook}: no such file")
    try:
        limits = Limits(cell_timeout=args.cell_timeout, redis_backend=args.redis_backend)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = grade_notebook(lesson.source_path(course_root()), args.notebook, redis_url=args.redis_url,
                            limits=limits)
    summary = {"status": result.status, "score": result.score, "max_score": result.max_score,
               "exercises": [e.__dict__ for e in result.exercises], "notes": result.notes,
               "detail": result.detail, "seconds": result.seconds, "processes": result.processes}
    print(json.dumps(summary, indent=2))
    if not result.is_scored:
        return EXIT_NOT_GRADED
    return EXIT_FULL_MARKS if result.score == result.max_score else EXIT_POINTS_LOST
