"""``check``: grade my own notebook locally with the hidden tests (my file is only read)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..course.layout import course_root, find_lesson, load
from ..errors import UsageError
from ..grading.grade import grade_notebook
from ..lab.workspace import DEFAULT_WORKSPACE, WORKSPACE_ENV, workspace_from
from ..present.learner import check_report, default_lesson, format_check, is_workspace_copy, lesson_from_cwd, record_check
from ..sandbox.protocol import Limits

NAME = "check"
HELP = "grade your notebook in workspace/ with the hidden tests, print what failed with hints, and save your progress"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", nargs="?", help="lesson slug or number (default: the lesson folder you are in, "
                                                  "else the notebook you edited last)")
    parser.add_argument("--notebook", type=Path, help="grade this file instead of workspace/<lesson>/<notebook> "
                                                      "(your saved progress is left as it is)")
    parser.add_argument("--workspace", type=Path, help=f"your working folder (default: ${WORKSPACE_ENV}, which "
                                                       f"`lab` sets, else {DEFAULT_WORKSPACE}/ in the course)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (what check_all() reads)")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds per cell")
    parser.add_argument("--redis-url", help="check against this Redis server instead of a grading server of its own")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    workspace = workspace_from(args.workspace, root)
    if args.lesson:
        lesson = find_lesson(args.lesson)
    else:
        lesson = lesson_from_cwd(load(), workspace, Path.cwd()) or default_lesson(load(), workspace)
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
    notebook = notebook.resolve()
    if not args.json:
        print(f"checking {notebook} ...", flush=True)
    result = grade_notebook(source, notebook, limits=Limits(cell_timeout=args.cell_timeout), redis_url=args.redis_url)
    page = record_check(workspace, lesson, notebook, result)
    recorded = is_workspace_copy(workspace, lesson, notebook)
    if args.json:
        print(json.dumps(check_report(lesson, result, notebook, page, recorded)))
    else:
        print(format_check(lesson, result, page))
        if not recorded:
            print(f"(not your workspace copy of {lesson.slug}: your saved progress is unchanged)")
    passed = result.passed_all
    return 0 if passed else 1
