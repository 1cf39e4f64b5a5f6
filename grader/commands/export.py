"""``export``: grades as CSV, one row per learner, one column per exercise, plus statuses."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..course.layout import course_root
from ..present.export import export_csv
from ._common import add_lessons, chosen_lessons, rel

NAME = "export"
HELP = ("write a CSV: one row per learner; per lesson a status column (graded, tampered, timed_out, crashed, "
        "unreadable, not_graded, not_submitted), one column per exercise (empty = could not be graded, not 0) and a total")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser)
    parser.add_argument("--output", type=Path, metavar="FILE", help="default: exports/grades.csv in the course")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    out, count = export_csv(root, chosen_lessons(args), (args.output or root / "exports" / "grades.csv").resolve())
    print(f"exported {count} learner(s) to {rel(out, root)}")
    return 0
