"""``release``: generate the learner versions from solutions/ and release them to the nbgrader exchange."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import write_text_atomic
from ..classroom.released import mark_released
from ..course.layout import course_root
from ..course.layout import lessons
from ..course.nbgrader import exchange_options, run_nbgrader
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


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    root = course_root()
    if not args.lessons and not args.all:
        raise UsageError("name the lessons to release (e.g. `release 01 04`), or pass --all: only released "
                         "lessons go into the gradebook and count in the class's totals")
    chosen = lessons(args.lessons)
    record_path = root / ".grader" / "released.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    backups, released = [], []
    for i, lesson in enumerate(chosen, 1):
        with tempfile.TemporaryDirectory(prefix="release-", dir=root) as scratch:
            run_nbgrader(root, "generate_assignment", lesson.slug, "--force",
                         f"--CourseDirectory.release_directory={scratch}")
            fresh = Path(scratch) / lesson.slug
            target = root / "notebooks" / lesson.slug
            current = target / lesson.notebook
            if current.is_file() and _sha(current) not in (_sha(fresh / lesson.notebook), record.get(lesson.slug)):
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                backup = root / ".grader" / "backups" / f"{lesson.slug}-{stamp}"
                shutil.copytree(target, backup)
                backups.append(backup)
                print(f"  notebooks/{lesson.slug} was edited by hand: kept a copy in {rel(backup, root)}")
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(fresh, target)
        record[lesson.slug] = _sha(target / lesson.notebook)
        write_text_atomic(record_path, json.dumps(record, indent=1))
        line = f"[{i}/{len(chosen)}] {lesson.slug}: generated notebooks/{lesson.slug}/{lesson.notebook}"
        if not args.no_exchange:
            run_nbgrader(root, "release_assignment", lesson.slug, *exchange_options(args.exchange),
                         *(["--force"] if args.force else []))
            released.append(lesson.slug)
            line += ", released to the exchange"
        mark_released(root, lesson.slug, "notebooks" if args.no_exchange else "exchange")
        print(line)
    print(f"{len(chosen)} lesson(s) generated, {len(released)} released"
          + (f", {len(backups)} hand-edited notebook(s) backed up" if backups else "")
          + ". Learners: `nbgrader fetch_assignment LESSON --course ID` (their copies are never overwritten).")
    return 0
