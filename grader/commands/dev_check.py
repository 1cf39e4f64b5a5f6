"""``dev-check``: the course's consistency check, for course maintainers and CI."""

from __future__ import annotations

import argparse

from ..authoring.check import grading_problems, lesson_problems, placeholder_problems, release_matches_source
from ..course.layout import course_root, lessons

NAME = "dev-check"
HELP = ("check that the manifest, solutions/ and notebooks/ agree (ids, points, no outputs, no leaks, releases up to "
        "date), that each lesson has a chart and each exercise hints and no TODO(scaffold) is left, and grade the solution "
        "(full marks) and the stub (0)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lessons", nargs="*", help="lesson slugs or numbers (default: all)")
    parser.add_argument("--no-grade", action="store_true",
                        help="do not grade the solution (full marks expected) and the stub (0 expected)")
    parser.add_argument("--skip-regenerate", action="store_true",
                        help="do not regenerate releases to compare them with notebooks/ (faster)")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    problems: list[str] = []
    chosen = lessons(args.lessons)
    for lesson in chosen:
        found = lesson_problems(root, lesson)
        if not found and not args.skip_regenerate and not release_matches_source(root, lesson):
            found.append(f"notebooks/{lesson.slug} is not what solutions/{lesson.slug} generates: run `make generate`")
        graded = ""
        if not found and not args.no_grade:
            grading, graded = grading_problems(root, lesson)
            found += grading
        found += placeholder_problems(root, lesson)
        problems += found
        print(f"{'ok  ' if not found else 'FAIL'} {lesson.slug}" + (f" ({graded})" if graded else ""))
    for problem in problems:
        print(f"  - {problem}")
    print(f"{len(chosen)} lesson(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0
