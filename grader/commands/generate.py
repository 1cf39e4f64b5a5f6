"""``generate``: rebuild notebooks/ (what learners open) from solutions/."""

from __future__ import annotations

import argparse

from ..course.layout import course_root, lessons
from ..course.nbgrader import generate

NAME = "generate"
HELP = "regenerate the learner notebooks in notebooks/ from solutions/ (nbgrader generate_assignment)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lessons", nargs="*", help="lesson slugs or numbers (default: every lesson in the manifest)")


def run(args: argparse.Namespace) -> int:
    root = course_root()
    chosen = lessons(args.lessons)
    for i, lesson in enumerate(chosen, 1):
        path = generate(root, lesson)
        print(f"[{i}/{len(chosen)}] {lesson.slug}: wrote {path.relative_to(root)}")
    print(f"generated {len(chosen)} lesson(s); learners' copies in workspace/ were not touched")
    return 0
