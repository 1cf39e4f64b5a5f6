"""``students``: the class list in nbgrader's gradebook (register learners, list them)."""

from __future__ import annotations

import argparse
import csv
import shutil
from datetime import datetime, timezone
from pathlib import Path

from ..course.layout import course_id, course_root
from ..course.nbgrader import db_url, run_nbgrader

NAME = "students"
HELP = ("the class list: `students import FILE.csv` (columns id, first_name, last_name, email; nbgrader's "
        "`db student import`), `students add ID`, `students list`; learners without a submission then show "
        "as not_submitted in export and report")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("import", "add", "list"))
    parser.add_argument("target", nargs="?", help="import: the CSV file; add: the student id")
    parser.add_argument("--first-name", default=None)
    parser.add_argument("--last-name", default=None)
    parser.add_argument("--email", default=None)


def _backup(root: Path) -> Path | None:
    db = root / "gradebook.db"
    if not db.is_file():
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    backup = root / ".grader" / "backups" / f"gradebook-{stamp}.db"
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(db, backup)
    return backup


def _check_csv(path: Path) -> int:
    from ..errors import UsageError
    from .import_submissions import id_problem

    if not path.is_file():
        raise UsageError(f"{path}: no such file (a CSV with a header row: id,first_name,last_name,email)")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: not a readable CSV ({exc})") from None
    if not rows or "id" not in rows[0]:
        raise UsageError(f"{path}: the first row must name the columns, with at least `id` "
                         "(id,first_name,last_name,email)")
    bad = [f"line {i}: {r['id']!r} ({id_problem(r['id'] or '') or 'empty'})"
           for i, r in enumerate(rows, 2) if not r["id"] or id_problem(r["id"])]
    if bad:
        raise UsageError(f"{path}: unusable student ids, nothing imported:\n  " + "\n  ".join(bad))
    return len(rows)


def run(args: argparse.Namespace) -> int:
    from nbgrader.api import Gradebook

    from ..errors import UsageError
    from .import_submissions import id_problem

    root = course_root()
    if args.action == "list":
        if not (root / "gradebook.db").is_file():
            print("no gradebook yet: 0 learners")
            return 0
        with Gradebook(db_url(root), course_id(root)) as gb:
            students = sorted(gb.students, key=lambda s: s.id)
            for s in students:
                print(f"{s.id}\t{s.first_name or ''}\t{s.last_name or ''}\t{s.email or ''}")
        print(f"{len(students)} learner(s)")
        return 0
    if not args.target:
        raise UsageError(f"`students {args.action}` needs " + ("the CSV file" if args.action == "import" else "a student id"))
    if args.action == "import":
        count = _check_csv(Path(args.target))
        backup = _backup(root)
        run_nbgrader(root, "db", "student", "import", str(Path(args.target).resolve()))
        print(f"registered {count} learner(s) from {args.target}" + (f" (gradebook backed up to {backup})" if backup else ""))
        return 0
    problem = id_problem(args.target)
    if problem:
        raise UsageError(f"{args.target[:60]!r} is not a usable student id: {problem}")
    backup = _backup(root)
    with Gradebook(db_url(root), course_id(root)) as gb:
        fields = {k: v for k, v in (("first_name", args.first_name), ("last_name", args.last_name),
                                    ("email", args.email)) if v is not None}
        gb.update_or_create_student(args.target, **fields)
    print(f"registered {args.target}" + (f" (gradebook backed up to {backup})" if backup else ""))
    return 0
