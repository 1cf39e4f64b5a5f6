"""``deadline``: set, clear or list the lessons' due dates in nbgrader's gradebook."""

from __future__ import annotations

import argparse

from ..course.layout import course_id, course_root, find_lesson
from ..course.nbgrader import db_url, ensure_assignment

NAME = "deadline"
HELP = ("set a lesson's due date in nbgrader's gradebook (`deadline 04 '2026-12-01 17:00 UTC'`), clear it "
        "(--clear) or list them (no arguments); autograde applies the late penalty of nbgrader_config.py")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", nargs="?", help="lesson slug or number (none: list every due date)")
    parser.add_argument("duedate", nargs="?", help="e.g. '2026-12-01 17:00:00 UTC' (a time without zone is UTC)")
    parser.add_argument("--clear", action="store_true", help="remove the lesson's due date")


def run(args: argparse.Namespace) -> int:
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    from ..errors import UsageError

    root = course_root()
    if args.lesson is None:
        if not (root / "gradebook.db").is_file():
            print("no gradebook yet: `python -m grader release LESSON` creates it")
            return 0
        with Gradebook(db_url(root), course_id(root)) as gb:
            for assignment in gb.assignments:
                when = assignment.duedate.strftime("%Y-%m-%d %H:%M:%S UTC") if assignment.duedate else "no due date"
                print(f"{assignment.name}: {when}")
        return 0
    lesson = find_lesson(args.lesson)
    if not args.clear and not args.duedate:
        raise UsageError("give the due date (e.g. '2026-12-01 17:00:00 UTC') or --clear")
    duedate = None
    if not args.clear:
        try:
            duedate = parse_utc(args.duedate)
        except (ValueError, OverflowError) as exc:
            raise UsageError(f"{args.duedate!r} is not a date nbgrader understands ({exc}); "
                             "write it like '2026-12-01 17:00:00 UTC'") from None
    ensure_assignment(root, lesson)
    with Gradebook(db_url(root), course_id(root)) as gb:
        assignment = gb.find_assignment(lesson.slug)
        assignment.duedate = duedate
        gb.db.commit()
    print(f"{lesson.slug}: " + (f"due {duedate:%Y-%m-%d %H:%M:%S} UTC" if duedate else "no due date")
          + f"; rerun `python -m grader autograde {lesson.slug}` to apply it to the stored grades (nothing is regraded)")
    return 0
