"""``collect``: copy the learners' latest submissions from the nbgrader exchange into submitted/."""

from __future__ import annotations

import argparse

from ..course.layout import course_root
from ..course.nbgrader import exchange_options, run_nbgrader
from ._common import add_exchange, add_lessons, chosen_lessons

NAME = "collect"
HELP = "collect submissions from the nbgrader exchange into submitted/<student>/<lesson>/ (newer ones replace older)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser)
    add_exchange(parser)
    parser.add_argument("--check-owner", action="store_true",
                        help="warn when a submission's file owner differs from its student id (JupyterHub)")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    total = 0
    for lesson in chosen_lessons(args):
        before = {p.parent.parent.name: p.stat().st_mtime for p in (root / "submitted").glob(f"*/{lesson.slug}/timestamp.txt")}
        run_nbgrader(root, "collect", lesson.slug, "--update", *exchange_options(args.exchange),
                     f"--ExchangeCollect.check_owner={args.check_owner}")
        after = {p.parent.parent.name: p.stat().st_mtime for p in (root / "submitted").glob(f"*/{lesson.slug}/timestamp.txt")}
        new = sorted(s for s in after if s not in before)
        updated = sorted(s for s in after if s in before and after[s] != before[s])
        total += len(after)
        print(f"{lesson.slug}: {len(after)} submission(s) in submitted/ ({len(new)} new, {len(updated)} updated)")
    print("done; next: python -m grader autograde")
    return 0
