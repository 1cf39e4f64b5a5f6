"""``check``: grade my own notebook locally with the hidden tests (my file is only read)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import UsageError
from ..course import course_root, find_lesson, load
from ..grade import grade_notebook
from ..learner import default_lesson, format_check, record_check
from ..sandbox import Limits
from ..workspace import DEFAULT_WORKSPACE

NAME = "check"
HELP = "grade your notebook in workspace/ with the hidden tests, print what failed with hints, and save your progress"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", nargs="?", help="lesson slug or number (default: the notebook you edited last)")
    parser.add_argument("--notebook", type=Path, help="grade this file instead of workspace/<lesson>/<notebook>")
    parser.add_argument("--workspace", type=Path, help=f"your working folder (default: {DEFAULT_WORKSPACE}/ in the course)")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell")
    parser.add_argument("--redis-url", help="check against this Redis server instead of the embedded fakeredis")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    workspace = (args.workspace or root / DEFAULT_WORKSPACE).resolve()
    if args.lesson:
        lesson = find_lesson(args.lesson)
    else:
        lesson = default_lesson(load(), workspace)
        if lesson is None:
            raise UsageError(f"no lesson notebooks in {workspace}: run `python -m grader lab` first, "
                             f"or name a lesson and --notebook")
    notebook = args.notebook or workspace / lesson.slug / lesson.notebook
    if not notebook.is_file():
        raise UsageError(f"{notebook}: no such notebook (run `python -m grader lab` to copy the lessons "
                         f"into {workspace.name}/, or pass --notebook)")
    source = lesson.source_path(root)
    if not source.is_file():
        raise UsageError(f"{source}: the lesson's source notebook is missing from this checkout")
    print(f"checking {notebook} ...", flush=True)
    result = grade_notebook(source, notebook, limits=Limits(cell_timeout=args.cell_timeout), redis_url=args.redis_url)
    page = record_check(workspace, lesson, notebook, result)
    print(format_check(lesson, result, page))
    passed = result.status in ("graded", "tampered") and all(e.status == "passed" for e in result.exercises)
    return 0 if passed else 1
