"""``collect``: copy the learners' latest submissions from the nbgrader exchange into submitted/."""

from __future__ import annotations

import argparse

from ..classroom.exchange import collect_lesson
from ..course.layout import course_root
from ._common import add_exchange, add_lessons, chosen_lessons

NAME = "collect"
HELP = "collect submissions from the nbgrader exchange into submitted/<student>/<lesson>/ (newer ones replace older)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser)
    add_exchange(parser)
    parser.add_argument("--check-owner", action="store_true",
                        help="warn when a submission's file owner differs from its student id (JupyterHub)")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    for lesson in chosen_lessons(args):
        got = collect_lesson(root, lesson, exchange=args.exchange, check_owner=args.check_owner)
        print(f"{lesson.slug}: {got.total} submission(s) in submitted/ ({len(got.new)} new, {len(got.updated)} updated)")
    print("done; next: python -m grader autograde")
    return 0
