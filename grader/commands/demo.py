"""``demo``: the whole instructor pipeline on a synthetic class, in a temporary course folder."""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from ..course.layout import course_root

NAME = "demo"
HELP = ("build a synthetic class (correct, partially wrong, blank and broken notebooks) and run release, "
        "fetch/submit, collect, autograde, feedback, report and export on it in a temporary course folder")

TINY_COURSE = Path(__file__).resolve().parents[2] / "examples" / "tiny-course"  # when the course has no lesson yet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--learners", type=int, default=30, help="class size (default 30)")
    parser.add_argument("--max-lessons", type=int, default=2,
                        help="use at most this many lessons (default 2; 0 = every lesson that exists)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="autograde workers (default: cores)")
    parser.add_argument("--output", type=Path, help="course folder to create (default: a new temporary folder)")
    parser.add_argument("--test-timeout", type=float, default=20.0, help="seconds per cell (default 20)")
    parser.add_argument("--submission-timeout", type=float, default=120.0, help="seconds per notebook (default 120)")
    parser.add_argument("--seed", type=int, default=7)


def _step(number: int, text: str) -> float:
    print(f"\n== {number}. {text}", flush=True)
    return time.monotonic()


def run(args: argparse.Namespace) -> int:
    from ..classroom.autograde import autograde_lesson, grade_reference
    from ..classroom.demo import ExchangeUser, answer_notebook, copy_course, make_class, pick_course
    from ..classroom.exchange import collect_lesson, release_feedback, release_lesson
    from ..course.layout import course_id
    from ..errors import UsageError
    from ..present.export import export_csv
    from ..present.feedback import write_lesson_feedback
    from ..present.report import write_report
    from ..progressbar import ProgressBar
    from ..sandbox.protocol import Limits

    if args.learners < 1:
        raise UsageError("--learners must be at least 1")
    start = time.monotonic()
    source, lessons, what = pick_course(course_root(), TINY_COURSE)
    if args.max_lessons:
        lessons = lessons[: args.max_lessons]
    base = (args.output or Path(tempfile.mkdtemp(prefix="grader-demo-"))).resolve()
    if base.exists() and any(base.iterdir()):
        raise UsageError(f"{base} is not empty; pass a new folder with --output")
    root = copy_course(source, base / "course", lessons)
    exchange = base / "exchange"
    exchange.mkdir(parents=True)
    os.environ["COURSE_ROOT"] = str(root)
    cid = course_id(root)
    print(f"demo course: {len(lessons)} lesson(s) of {what}: {', '.join(l.slug for l in lessons)}; "
          f"{args.learners} learners; in {base}")

    _step(1, "release (what `release` does: nbgrader generate_assignment + release_assignment)")
    for lesson in lessons:
        release_lesson(root, lesson, exchange=exchange)
        print(f"   released {lesson.slug}")

    _step(2, "learners fetch, answer and submit through the exchange")
    learners = make_class(args.learners, args.seed)
    rng = random.Random(args.seed)
    users = {l.name: ExchangeUser(l.name, base / "homes" / l.name, exchange, cid) for l in learners}
    bar = ProgressBar(len(learners) * len(lessons), "   submit")
    for learner in learners:
        for lesson in lessons:
            folder = users[learner.name].fetch(lesson.slug)
            answer_notebook(learner, lesson, root, folder / lesson.notebook, rng)
            users[learner.name].submit(lesson.slug)
            bar.advance(f"{learner.name} ({learner.kind}{'/' + learner.broken_how if learner.broken_how else ''})")
    bar.close()
    kinds = {}
    for learner in learners:
        key = learner.kind + (f" ({learner.broken_how})" if learner.broken_how else "")
        kinds[key] = kinds.get(key, 0) + 1
    print("   class: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))

    _step(3, "collect")
    for lesson in lessons:
        print(f"   {lesson.slug}: {collect_lesson(root, lesson, exchange=exchange).total} submissions collected")

    _step(4, f"autograde ({args.workers} worker(s), resumable)")
    limits = Limits(cell_timeout=args.test_timeout, notebook_timeout=args.submission_timeout)
    grading = {}
    for lesson in lessons:
        t0 = time.monotonic()
        summary = autograde_lesson(root, lesson, workers=args.workers, limits=limits)
        grading[lesson.slug] = (summary, time.monotonic() - t0)
        print(f"   {lesson.slug}: " + ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items()))
              + f" in {summary.seconds:.1f} s")

    _step(5, "feedback (written to feedback/, released to the exchange, fetched by three learners)")
    for lesson in lessons:
        release_feedback(root, lesson, write_lesson_feedback(root, lesson), exchange=exchange)
    fetched = []
    for learner in learners[:3]:
        for lesson in lessons:
            fetched += users[learner.name].fetch_feedback(lesson.slug)
    print(f"   {len(fetched)} feedback page(s) fetched by learners, e.g. {fetched[0] if fetched else '-'}")

    _step(6, "report and export")
    for lesson in lessons:
        grade_reference(root, lesson, limits=limits)
    page, _ = write_report(root, lessons, root / "reports")
    csv_path, rows = export_csv(root, lessons, root / "exports" / "grades.csv")

    print(f"\nDone in {time.monotonic() - start:.0f} s. Results:")
    for slug, (summary, seconds) in grading.items():
        print(f"  autograde {slug}: {summary.total} submissions with {summary.workers} worker(s) in {seconds:.1f} s")
    print(f"  course folder     {root}")
    print(f"  gradebook         {root / 'gradebook.db'} (nbgrader formgrader: cd {root} && jupyter lab)")
    print(f"  autograded        {root / 'autograded'}/<student>/<lesson>/")
    print(f"  feedback          {root / 'feedback'}/<student>/<lesson>/  (fetched: {base / 'homes'}/<learner>/<lesson>/feedback/)")
    print(f"  class report      {page}")
    print(f"  grades CSV        {csv_path} ({rows} learners)")
    print(f"  exchange          {exchange}")
    return 0
