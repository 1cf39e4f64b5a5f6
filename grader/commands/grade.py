"""``grade``: grade one notebook against its lesson's source and print the result (for course authors)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import UsageError
from ..course import course_root, find_lesson
from ..grade import grade_notebook
from ..sandbox import Limits

NAME = "grade"
HELP = "grade one notebook file against a lesson's hidden tests and print the result as JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", help="lesson slug or number")
    parser.add_argument("notebook", type=Path, help="the notebook to grade (it is only read)")
    parser.add_argument("--redis-url", help="grade against this Redis server instead of the embedded fakeredis")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell")


def run(args: argparse.Namespace) -> int:
    lesson = find_lesson(args.lesson)
    if not args.notebook.is_file():
        raise UsageError(f"{args.notebook}: no such file")
    result = grade_notebook(lesson.source_path(course_root()), args.notebook, redis_url=args.redis_url,
                            limits=Limits(cell_timeout=args.cell_timeout))
    summary = {"status": result.status, "score": result.score, "max_score": result.max_score,
               "exercises": [e.__dict__ for e in result.exercises], "notes": result.notes,
               "detail": result.detail, "seconds": result.seconds}
    print(json.dumps(summary, indent=2))
    return 0
