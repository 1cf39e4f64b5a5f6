"""``serve``: grade each submission as it lands in the exchange (grade on submit), locally or on Dask."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ..course.layout import course_root
from ..sandbox.protocol import Limits
from ._common import add_redis_backend

NAME = "serve"
HELP = ("grade on submit: watch the exchange's inbound folder and grade each new submission into the gradebook "
        "(and release its feedback with --release-feedback); --status shows the queue")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..classroom.store import RESULTS_DIR

    parser.add_argument("--exchange", type=Path, metavar="DIR",
                        help="nbgrader exchange folder (its <course_id>/inbound/ is watched); required to serve")
    parser.add_argument("--release-feedback", action="store_true",
                        help="release each learner's feedback through the exchange as soon as it is graded")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help=f"local grading processes (default: the number of cores, {os.cpu_count()})")
    parser.add_argument("--scheduler", metavar="URL",
                        help="grade on this dask.distributed scheduler (tcp://host:8786) instead of local processes")
    parser.add_argument("--test-timeout", type=float, default=Limits.cell_timeout,
                        help=f"seconds allowed for one cell, tests included (default {Limits.cell_timeout:g})")
    parser.add_argument("--submission-timeout", type=float, default=Limits.notebook_timeout,
                        help=f"seconds allowed for a whole notebook (default {Limits.notebook_timeout:g})")
    parser.add_argument("--redis-url", help="grade against this Redis server (local workers only)")
    add_redis_backend(parser)
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often the inbound folder is looked at (default 1)")
    parser.add_argument("--skip-reference-check", action="store_true",
                        help="grade even if a lesson's reference solution loses points with the current tests")
    parser.add_argument("--check-owner", action="store_true",
                        help="refuse a submission whose inbound folder is not owned by the student it names "
                             "(JupyterHub, where each learner submits as their own system user)")
    parser.add_argument("--exit-when-idle", action="store_true",
                        help="stop once every submission found is graded (a catch-up run, e.g. from cron)")
    parser.add_argument("--status", action="store_true",
                        help=f"print the queue (waiting, running, done, failed) from the journal and exit; "
                             f"results are in {RESULTS_DIR}/ as with autograde")


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..sandbox.isolation import describe
    from ..executors.executor import make_executor
    from ..serving.journal import Journal, journal_path
    from ..serving.live import LiveLine, status_report
    from ..serving.service import GradingService, ServiceOptions
    from ..executors.task import Unsandboxed

    root = course_root()
    if args.status:
        print(status_report(Journal(journal_path(root)).replay()))
        return 0
    if not args.exchange:
        raise UsageError("give the exchange to watch: --exchange DIR (nbgrader's Exchange.root)")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.scheduler and args.redis_url:
        raise UsageError("--redis-url is for local workers only: on Dask each submission gets a Redis server of "
                         "its own inside the worker's sandbox")
    if args.poll <= 0:
        raise UsageError("--poll must be a positive number of seconds")
    try:
        limits = Limits(cell_timeout=args.test_timeout, notebook_timeout=args.submission_timeout,
                        redis_backend=args.redis_backend)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = ServiceOptions(exchange=args.exchange.resolve(), release_feedback=args.release_feedback,
                             limits=limits, redis_url=args.redis_url, poll_seconds=args.poll,
                             check_reference=not args.skip_reference_check, check_owner=args.check_owner)
    print(describe(limits.isolation, redis=bool(args.redis_url)), flush=True)
    try:
        executor = make_executor(args.scheduler, args.workers, args.redis_url)
    except (RuntimeError, Unsandboxed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    where = args.scheduler or f"{executor.capacity()} local worker(s)"
    print(f"serving {root} from {options.exchange} on {where}"
          + ("; feedback released on grading" if args.release_feedback else ""), flush=True)
    try:
        GradingService(root, options, executor, log=lambda line: print(line, flush=True),
                       live=LiveLine()).run(stop, exit_when_idle=args.exit_when_idle)
    finally:
        executor.close()
    print("stopped; rerun the same command to go on (nothing graded is graded again)", flush=True)
    return 0
