"""``autograde``: grade every collected submission, in parallel, resumably, into nbgrader's gradebook."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from ..classroom.autograde import autograde_lessons
from ..classroom.store import RESULTS_DIR
from ..course.layout import course_root
from ..sandbox.isolation import describe
from ..sandbox.protocol import Limits
from ._common import add_lessons, add_redis_backend, chosen_lessons, rel

NAME = "autograde"
HELP = ("grade submitted/ with the hidden tests in parallel; writes autograded/, nbgrader's gradebook and "
        f"{RESULTS_DIR}/; interrupted runs continue where they stopped")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lessons(parser)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help=f"submissions graded at once (default: the number of cores, {os.cpu_count()})")
    parser.add_argument("--test-timeout", type=float, default=Limits.cell_timeout,
                        help=f"seconds allowed for one cell, tests included (default {Limits.cell_timeout:g})")
    parser.add_argument("--submission-timeout", type=float, default=Limits.notebook_timeout,
                        help=f"seconds allowed for a whole notebook (default {Limits.notebook_timeout:g})")
    parser.add_argument("--student", action="append", dest="students", metavar="ID",
                        help="grade only this student (repeatable)")
    parser.add_argument("--scheduler", metavar="URL",
                        help="grade on this dask.distributed scheduler (tcp://host:8786) instead of local processes; "
                             "results are stored here as usual")
    parser.add_argument("--force", action="store_true", help="regrade submissions that already have a result")
    parser.add_argument("--redis-url", help="grade against this Redis server (shared by every submission) instead "
                                            "of a server of their own for each")
    add_redis_backend(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--skip-reference-check", action="store_true",
                        help="grade even if the reference solution loses points with the current tests")
    parser.add_argument("--no-isolation", action="store_true",
                        help="run learner code without the sandbox's namespaces and audit hook (only to measure "
                             "their cost: never on real submissions)")


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.scheduler and (args.redis_url or args.no_isolation):
        raise UsageError("--scheduler grades in each Dask worker's sandbox, each submission with a Redis server of "
                         "its own: leave out --redis-url and --no-isolation")
    try:
        limits = Limits(cell_timeout=args.test_timeout, notebook_timeout=args.submission_timeout,
                        isolation="off" if args.no_isolation else "auto", redis_backend=args.redis_backend)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    root = course_root()
    print(describe(limits.isolation, redis=bool(args.redis_url)), flush=True)
    overall: Counter = Counter()
    graded = skipped = 0
    lessons = chosen_lessons(args)
    points = {lesson.slug: lesson.points for lesson in lessons}
    summaries = autograde_lessons(root, lessons, workers=args.workers, limits=limits, force=args.force,
                                  students=args.students, redis_url=args.redis_url, progress=not args.quiet,
                                  check_reference=not args.skip_reference_check, scheduler=args.scheduler)
    refused = [summary.refused for summary in summaries if summary.refused]
    for summary in summaries:
        if summary.refused:
            continue
        overall += summary.statuses
        graded += len(summary.graded_now)
        skipped += len(summary.skipped)
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "no submissions"
        mean = (sum(summary.scores.values()) / len(summary.scores)) if summary.scores else 0
        print(f"{summary.lesson}: {summary.total} submission(s): {statuses}; graded now {len(summary.graded_now)}, "
              f"already done {len(summary.skipped)}; mean {mean:.2g}/{points[summary.lesson]:g}; "
              f"{summary.seconds:.1f} s with {summary.workers} worker(s)")
        if summary.changes:
            print(f"  {len(summary.changes)} score(s) changed by this regrade (before -> after): "
                  + ", ".join(f"{s} {b:g} -> {a:g}" for s, (b, a) in sorted(summary.changes.items()))
                  + f"; saved in {rel(summary.changes_file, root)}")
        if summary.stale_feedback:
            print(f"  released feedback is stale for {len(summary.stale_feedback)} learner(s): "
                  f"{', '.join(summary.stale_feedback)}; rerun `python -m grader feedback {summary.lesson} --release`")
        if not summary.total:
            print(f"  (no submitted/*/{summary.lesson}/ folders: run `python -m grader collect {summary.lesson}` "
                  f"or `python -m grader import {summary.lesson} PATH`)")
    for problem in refused:
        print(f"error: {problem}", file=sys.stderr)
    if refused:
        return 1
    problems = sum(n for s, n in overall.items() if s not in ("graded",))
    print(f"done: {graded} graded now, {skipped} already graded"
          + (f"; {problems} need a look (not 'graded': see the status column of `python -m grader export`)"
             if problems else "")
          + ". Scores are in nbgrader's gradebook (formgrader) and autograded/.")
    return 0
