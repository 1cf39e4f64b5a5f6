"""``feedback``: write each learner's feedback page and (optionally) release it through the exchange."""

from __future__ import annotations

import argparse

from ..classroom.exchange import release_feedback
from ..course.layout import course_root
from ..present.feedback import write_lesson_feedback
from ._common import add_exchange, add_lessons, chosen_lessons, rel

NAME = "feedback"
HELP = ("write feedback/<student>/<lesson>/<notebook>.html (score per exercise, failure first, hints, the "
        "learner's charts; never test code); --release puts it in the exchange for nbgrader fetch_feedback")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser)
    add_exchange(parser)
    parser.add_argument("--release", action="store_true", help="also run nbgrader release_feedback")
    parser.add_argument("--student", action="append", dest="students", metavar="ID", help="only this student")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    written = 0
    for lesson in chosen_lessons(args):
        digests = write_lesson_feedback(root, lesson, args.students)
        written += len(digests)
        line = f"{lesson.slug}: {len(digests)} page(s) in {rel(root / 'feedback', root)}/<student>/{lesson.slug}/"
        if args.release and digests:
            release_feedback(root, lesson, digests, exchange=args.exchange, students=args.students)
            line += "; released (learners: nbgrader fetch_feedback LESSON --course ID)"
        print(line)
        if not digests:
            print(f"  (no graded submissions: run `python -m grader autograde {lesson.slug}` first)")
    print(f"done: {written} feedback page(s)")
    return 0
