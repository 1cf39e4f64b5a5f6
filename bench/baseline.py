"""Section ``baseline``: this checkout's grader against another checkout's (``--baseline PATH``, a git
worktree of an earlier commit with its own ``.venv``), each grading its own lessons' solutions as
submissions, one submission per child process, runs interleaved and their order alternated per repeat.

What a change to the grading processes costs shows in the time *outside the cells* (start-up of the
sandboxed processes, the judge's set-up, result handling): the cells' own time also moves when a lesson's
content changed between the two commits, so both are reported and only the first is the change's cost.

    python -m bench --sections baseline --baseline /work/wt/base --lesson-repeats 3
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import sys
from pathlib import Path
from typing import Any

from .common import ROOT, Config, log, summary
from .grading import available_lessons

__all__ = ["run", "CHILD"]

# Run by each checkout's own interpreter in its own folder: prints one JSON line. It uses only what both
# sides have had since the bench existed (grade_notebook, write_submission, available_lessons).
CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from bench.grading import available_lessons
from grader.grading.grade import grade_notebook
from grader.course.synthetic import write_submission

course = Path.cwd()
lesson = available_lessons(course, [sys.argv[1]])[0]
with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
    nb = write_submission(lesson.source_path(course), lesson.release_path(course), Path(tmp) / lesson.notebook)
    t0 = time.perf_counter()
    result = grade_notebook(lesson.source_path(course), nb)
    wall = time.perf_counter() - t0
cells = sum(float((c.get("record") or {}).get("seconds") or 0.0) for c in result.cells)
print(json.dumps({"wall_s": wall, "cells_s": cells, "status": result.status,
                  "score": f"{result.score:g}/{result.max_score:g}"}))
"""


def _python(checkout: Path) -> Path:
    python = checkout / ".venv" / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"bench: {checkout} has no .venv/bin/python; run `make .venv/.installed` there first")
    return python


def _grade(checkout: Path, slug: str) -> dict[str, Any]:
    proc = subprocess.run([str(_python(checkout)), "-c", CHILD, slug], cwd=checkout, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"grading {slug} in {checkout} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _revision(checkout: Path) -> str:
    proc = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return proc.stdout.strip()[:90] or str(checkout)


def run(cfg: Config) -> dict[str, Any]:
    if cfg.baseline is None:
        return {"skipped": "no --baseline checkout given"}
    sides = {"ours": ROOT, "baseline": cfg.baseline.resolve()}
    _python(sides["baseline"])  # says what to do before any lesson is graded
    theirs = {l.slug for l in available_lessons(sides["baseline"], [])}
    rows, started, load0 = [], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    for lesson in available_lessons(ROOT, cfg.lessons):
        if lesson.slug not in theirs:
            continue
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "baseline": []}
        for rep in range(cfg.lesson_repeats):
            for side in (("baseline", "ours") if rep % 2 == 0 else ("ours", "baseline")):
                runs[side].append(_grade(sides[side], lesson.slug))
        row: dict[str, Any] = {"lesson": lesson.slug}
        for side, done in runs.items():
            row[side] = {"wall_s": summary([r["wall_s"] for r in done]),
                         "cells_s": summary([r["cells_s"] for r in done]),
                         "outside_s": summary([r["wall_s"] - r["cells_s"] for r in done]),
                         "status": sorted({f"{r['status']} {r['score']}" for r in done})}
        log(f"baseline {lesson.slug}: outside cells {row['baseline']['outside_s']['median']:.2f} s -> "
            f"{row['ours']['outside_s']['median']:.2f} s")
        rows.append(row)
    return {"ours": _revision(sides["ours"]), "baseline": _revision(sides["baseline"]), "rows": rows,
            "python": sys.version.split()[0], "started": started, "load": [load0, os.getloadavg()[0]]}
