"""Section 3: each lesson's solution notebook graded as a submission (``grade_notebook``), at the grading
scale (``COURSE_LATENCY_SCALE`` = the grader's default), with the time split by cell kind, and the cost of
running the test cells in the trusted judge: the same submission graded against a copy of the source
notebook that opts out (``{"grader": {"tests": "kernel"}}``), runs interleaved."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from grader.grading.grade import grade_notebook
from grader.course.synthetic import write_submission

from .common import Config, log, summary
from .grading import available_lessons


def _kernel_copy(source: Path, folder: Path) -> Path:
    """The lesson's source notebook with its tests run in the learner's kernel (no judge)."""
    nb = nbformat.read(source, as_version=4)
    nb.metadata["grader"] = {**nb.metadata.get("grader", {}), "tests": "kernel"}
    path = folder / ("kernel-" + source.name)
    nbformat.write(nb, path)
    return path


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
            kernel, kernel_status = [], set()
            kernel_source = _kernel_copy(lesson.source_path(cfg.course), Path(tmp) / lesson.slug)
            for rep in range(cfg.lesson_repeats):
                for variant in (("judge", "kernel") if rep % 2 == 0 else ("kernel", "judge")):
                    if variant == "kernel":
                        if cfg.compare_kernel:
                            result = grade_notebook(kernel_source, nb)
                            kernel.append(result.seconds)
                            kernel_status.add(f"{result.status} {result.score:g}/{result.max_score:g}")
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
                         "kernel_sandbox_s": summary(kernel) if kernel else None,
                         "kernel_status": sorted(kernel_status)})
            log(f"lessons: {lesson.slug}: {summary(walls)['median']:.2f} s")
    return {"rows": rows, "repeats": cfg.lesson_repeats}
