"""``release``: generate the learner versions from solutions/ and release them to the nbgrader exchange."""

from __future__ import annotations

import argparse

from ..classroom.exchange import release_lesson
from ..course.layout import course_root, lessons
from ..errors import UsageError
from ._common import add_exchange, add_lessons, rel

NAME = "release"
HELP = ("generate notebooks/ from solutions/ (recording the lesson in nbgrader's gradebook) and release it "
        "to the nbgrader exchange; a hand-edited notebook in notebooks/ is backed up, never lost")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser, "required, or --all")
    add_exchange(parser)
    parser.add_argument("--all", action="store_true", help="release every lesson in the manifest")
    parser.add_argument("--no-exchange", action="store_true", help="only regenerate notebooks/ and the gradebook")
    parser.add_argument("--force", action="store_true",
                        help="replace a lesson already in the exchange (learners who fetched it keep their copy)")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    if not args.lessons and not args.all:
        raise UsageError("name the lessons to release (e.g. `release 01 04`), or pass --all: only released "
                         "lessons go into the gradebook and count in the class's totals")
    chosen = lessons(args.lessons)
    backups = 0
    for i, lesson in enumerate(chosen, 1):
        done = release_lesson(root, lesson, exchange=args.exchange, to_exchange=not args.no_exchange, force=args.force)
        if done.backup:
            backups += 1
            print(f"  notebooks/{lesson.slug} was edited by hand: kept a copy in {rel(done.backup, root)}")
        print(f"[{i}/{len(chosen)}] {lesson.slug}: generated notebooks/{lesson.slug}/{lesson.notebook}"
              + (", released to the exchange" if done.to_exchange else ""))
    released = 0 if args.no_exchange else len(chosen)
    print(f"{len(chosen)} lesson(s) generated, {released} released"
          + (f", {backups} hand-edited notebook(s) backed up" if backups else "")
          + ". Learners: `nbgrader fetch_assignment LESSON --course ID` (their copies are never overwritten).")
    return 0
