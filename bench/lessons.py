"""Section 3: each lesson's solution notebook graded as a submission (``grade_notebook``), at the grading
scale (``COURSE_LATENCY_SCALE`` = the grader's default), with the time split by cell kind."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from grader.grade import grade_notebook
from grader.synthetic import write_submission

from .common import Config, log, summary
from .grading import available_lessons
from .whatif import lazy_runner


def _split(result) -> dict[str, float]:
    parts = {"first cell (imports, set-up)": 0.0, "course cells": 0.0, "answer cells": 0.0, "test cells": 0.0}
    first = True
    for cell in result.cells:
        record = cell.get("record") or {}
        secs = float(record.get("seconds") or 0.0)
        if first:
            parts["first cell (imports, set-up)"] += secs
            first = False
        elif cell["kind"] == "tests":
            parts["test cells"] += secs
        elif cell["kind"] == "answer":
            parts["answer cells"] += secs
        else:
            parts["course cells"] += secs
    return parts


def run(cfg: Config) -> dict[str, Any]:
    lessons = available_lessons(cfg.course, cfg.lessons)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lessons-") as tmp:
        for lesson in lessons:
            nb = write_submission(lesson.source_path(cfg.course), lesson.release_path(cfg.course),
                                  Path(tmp) / lesson.slug / lesson.notebook)
            walls, sandbox, parts, statuses = [], [], [], set()
            lazy, lazy_status, lazy_error = [], set(), None
            for rep in range(cfg.lesson_repeats):
                for variant in (("normal", "lazy") if rep % 2 == 0 else ("lazy", "normal")):
                    if variant == "lazy":
                        if not cfg.whatif or lazy_error:
                            continue
                        try:
                            with lazy_runner() as patched:
                                result = grade_notebook(lesson.source_path(cfg.course), nb)
                            if not patched.swapped:
                                raise RuntimeError("the sandbox no longer starts `python -m grader.runner`")
                        except Exception as exc:  # depends on the sandbox's internals: report, do not fail
                            lazy_error = f"{type(exc).__name__}: {exc}"
                            continue
                        lazy.append(result.seconds)
                        lazy_status.add(f"{result.status} {result.score:g}/{result.max_score:g}")
                        continue
                    t0 = time.perf_counter()
                    result = grade_notebook(lesson.source_path(cfg.course), nb)
                    walls.append(time.perf_counter() - t0)
                    sandbox.append(result.seconds)
                    parts.append(_split(result))
                    statuses.add(f"{result.status} {result.score:g}/{result.max_score:g}")
            cells = {k: summary([p[k] for p in parts]) for k in parts[0]}
            executed = [sum(p.values()) for p in parts]
            rows.append({"lesson": lesson.slug, "wall_s": summary(walls), "sandbox_s": summary(sandbox),
                         "cells_s": summary(executed), "parts": cells,
                         "startup_s": summary([s - e for s, e in zip(sandbox, executed)]),
                         "parent_s": summary([w - s for w, s in zip(walls, sandbox)]),
                         "status": sorted(statuses),
                         "lazy_sandbox_s": summary(lazy) if lazy else None, "lazy_status": sorted(lazy_status),
                         "lazy_error": lazy_error})
            log(f"lessons: {lesson.slug}: {summary(walls)['median']:.2f} s")
    return {"rows": rows, "repeats": cfg.lesson_repeats}
