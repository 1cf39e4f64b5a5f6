"""``progress``: which lessons you have passed, from your last `check` of each."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..course.layout import course_root, load
from ..lab.workspace import DEFAULT_WORKSPACE, WORKSPACE_ENV, workspace_from
from ..present.learner import format_progress

NAME = "progress"
HELP = "show your progress through the course (lessons passed, points), from the results of `check`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", type=Path, help=f"your working folder (default: ${WORKSPACE_ENV}, else {DEFAULT_WORKSPACE}/ in the course)")


def run(args: argparse.Namespace) -> int:
    workspace = workspace_from(args.workspace, course_root())
    print(format_progress(load(), workspace))
    return 0
