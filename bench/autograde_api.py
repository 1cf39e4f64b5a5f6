"""``python -m bench.autograde_api COURSE LESSON WORKERS [LIMITS_JSON]``: one autograde run through the
grader's Python API (``grader.classroom.autograde.autograde_lesson``), with ``Limits`` overrides such as
``{"isolation": "off"}``. Used when the command line has no flag for a setting the benchmark compares."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    course, slug, workers = Path(argv[0]).resolve(), argv[1], int(argv[2])
    overrides = json.loads(argv[3]) if len(argv) > 3 else {}
    os.environ["COURSE_ROOT"] = str(course)
    from grader.classroom.autograde import autograde_lesson
    from grader.course.layout import find_lesson
    from grader.sandbox.protocol import Limits

    summary = autograde_lesson(course, find_lesson(slug), workers=workers, limits=Limits(**overrides),
                               force=True, progress=False)
    print(f"{slug}: {summary.total} submission(s); {summary.seconds:.1f} s with {summary.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
