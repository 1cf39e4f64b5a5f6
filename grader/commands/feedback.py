"""``feedback``: write each learner's feedback page and (optionally) release it through the exchange."""

from __future__ import annotations

import argparse

from ..classroom.grades import class_grades
from ..classroom.released import record_feedback_release
from ..classroom.store import load_lesson_records
from ..course.layout import course_root
from ..course.nbgrader import exchange_options, run_nbgrader
from ..present.feedback import write_feedback
from ..progressbar import ProgressBar
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
        records = {s: r for s, r in load_lesson_records(root, lesson.slug).items()
                   if not args.students or s in args.students}
        book = class_grades(root, [lesson], students=sorted(records))  # the gradebook: manual grades, comments, penalty
        bar = ProgressBar(len(records), f"feedback {lesson.slug}")
        for student, record in records.items():
            write_feedback(root, lesson, student, record["result"], grade=book.grades[(student, lesson.slug)])
            bar.advance(student)
        bar.close()
        written += len(records)
        line = f"{lesson.slug}: {len(records)} page(s) in {rel(root / 'feedback', root)}/<student>/{lesson.slug}/"
        if args.release and records:
            student_opts = [f"--student={s}" for s in args.students] if args.students and len(args.students) == 1 else []
            if args.students and len(args.students) > 1:
                for s in args.students:
                    run_nbgrader(root, "release_feedback", lesson.slug, f"--student={s}", *exchange_options(args.exchange))
            else:
                run_nbgrader(root, "release_feedback", lesson.slug, *student_opts, *exchange_options(args.exchange))
            record_feedback_release(root, lesson.slug, {s: book.grades[(s, lesson.slug)].digest() for s in records})
            line += "; released (learners: nbgrader fetch_feedback LESSON --course ID)"
        print(line)
        if not records:
            print(f"  (no graded submissions: run `python -m grader autograde {lesson.slug}` first)")
    print(f"done: {written} feedback page(s)")
    return 0

