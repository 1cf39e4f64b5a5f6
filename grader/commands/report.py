"""``report``: class-level charts in one HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..classroom.autograde import grade_reference
from ..classroom.store import load_lesson_records
from ..course.layout import course_root
from ._common import add_lessons, chosen_lessons, rel

NAME = "report"
HELP = ("class report: score distribution, statuses, pass rate per exercise, each learner's score and "
        "run time against the reference solution (HTML + PNGs)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser)
    parser.add_argument("--output", type=Path, metavar="DIR", help="where to write it (default: reports/ in the course)")
    parser.add_argument("--no-reference", action="store_true", help="do not grade the solution for comparison")


def run(args: argparse.Namespace) -> int:
    from ..present.report import write_report  # matplotlib: imported only when needed

    root = course_root()
    chosen = chosen_lessons(args)
    if not args.no_reference:
        for lesson in chosen:
            if load_lesson_records(root, lesson.slug) and lesson.release_path(root).is_file():
                grade_reference(root, lesson)
    page, covered = write_report(root, chosen, (args.output or root / "reports").resolve())
    print(f"report on {len(covered)} lesson(s) ({', '.join(covered) or 'none graded yet'}): {rel(page, root)}")
    return 0
