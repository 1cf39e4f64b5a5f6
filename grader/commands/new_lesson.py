"""``new-lesson``: scaffold a lesson (source notebook, manifest entry, test file, release) in one command."""

from __future__ import annotations

import argparse
import sys

from ..course.layout import course_root

NAME = "new-lesson"
HELP = ("start a lesson: write solutions/NN-slug/ (a gradable example exercise with nbgrader metadata), its "
        "manifest entry, tests/lessons/test_NN_slug.py and the release, each exercise's id and points stated once")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slug", help="the lesson's folder name: two digits, a dash, lowercase words (11-write-behind)")
    parser.add_argument("--exercise", action="append", default=[], metavar="ID:POINTS", required=True,
                        help="an exercise's id (its nbgrader grade_id) and points; repeat for more exercises")
    parser.add_argument("--title", default="", help="the lesson's title (default: a placeholder)")
    parser.add_argument("--notebook", default="", help="the notebook's file name (default: from the slug)")
    parser.add_argument("--minutes", type=int, default=45, help="expected time for a learner (default 45)")


def run(args: argparse.Namespace) -> int:
    from ..authoring.scaffold import PLACEHOLDER, ScaffoldError, parse_exercise, scaffold_lesson
    from ..errors import UsageError
    from ..errors import NbgraderFailed

    root = course_root()
    try:
        exercises = [parse_exercise(text) for text in args.exercise]
        lesson, written = scaffold_lesson(root, args.slug, exercises, title=args.title, notebook=args.notebook,
                                          minutes=args.minutes)
    except ScaffoldError as exc:
        raise UsageError(str(exc)) from None
    except NbgraderFailed as exc:
        print(f"error: the lesson was written but nbgrader could not generate its release: {exc}\n"
              f"fix solutions/{args.slug}/ and run `python -m grader generate {args.slug}`", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    number = lesson.slug[:2]
    print(f"\nnext: replace every {PLACEHOLDER} (the example exercise works: dev-check grades it now), then\n"
          f"  python -m grader generate {number}\n"
          f"  python -m grader dev-check {number}\n"
          f"  python -m pytest {written[2].relative_to(root)} tests/test_lessons.py -k {lesson.slug}")
    return 0
