"""``python -m bench.mutation [--lesson 04] [--jobs 2] [--max-per-exercise N] [--report-only]``."""

from __future__ import annotations

import argparse
import sys

from course_lib.manifest import COURSE_ROOT, load_course

from .plan import Cache, equivalents, plan_lesson
from .report import write_report
from .run import run_lesson


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutation", description=__doc__)
    parser.add_argument("--lesson", action="append", default=[], metavar="NN",
                        help="a lesson number or slug (repeat for several; default: every lesson)")
    parser.add_argument("--exercise", action="append", default=[], metavar="ID", help="only these exercises")
    parser.add_argument("--jobs", type=int, default=1, help="grading runs at the same time (default 1)")
    parser.add_argument("--max-per-exercise", type=int, default=None, metavar="N",
                        help="grade a seeded sample of N mutants per exercise, spread over the operators")
    parser.add_argument("--redis-backend", default="auto", choices=("auto", "redis-server", "fakeredis"))
    parser.add_argument("--report-only", action="store_true", help="rewrite bench/MUTATION.md from the cache")
    parser.add_argument("--list", action="store_true", help="print the chosen mutants and grade nothing")
    args = parser.parse_args(argv)
    course = load_course()
    lessons = course.lessons
    if args.lesson:
        lessons = [l for l in lessons if l.slug in args.lesson or l.slug.split("-")[0] in args.lesson]
        if not lessons:
            print(f"error: no lesson {args.lesson}; lessons are {[l.slug for l in course.lessons]}", file=sys.stderr)
            return 2
    only = set(args.exercise) or None
    cache = Cache()
    plans = [plan_lesson(l, COURSE_ROOT, cap=args.max_per_exercise, only=only) for l in lessons]
    if args.list:
        for plan in plans:
            for ex in plan.exercises:
                print(f"{plan.slug} {ex.id}: {len(ex.chosen)} of {len(ex.mutants)} mutants")
                for m in ex.chosen:
                    print(f"  {m.key} line {m.line} {m.operator}: {m.description}")
        return 0
    try:
        if not args.report_only:
            for plan in plans:
                run_lesson(plan, cache, jobs=args.jobs, redis_backend=args.redis_backend)
    finally:
        every = [plan_lesson(l, COURSE_ROOT, cap=args.max_per_exercise) for l in course.lessons
                 if l.source_path(COURSE_ROOT).is_file()]
        cap = f" --max-per-exercise {args.max_per_exercise}" if args.max_per_exercise else ""
        write_report(every, cache, equivalents(), f"python -m bench.mutation{cap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
