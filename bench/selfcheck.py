"""Section 2: ``python -m grader check`` latency on one lesson, each run a new process (cold).

The grader has no warm mode (no server or resident process that keeps an
interpreter ready between checks), so only cold runs are measured; the
report says so. For scale, the same table shows the bare start-up of
``python -c pass`` and of ``python -m grader --help``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import nbformat

from .common import PYTHON, Config, log, run_timed, summary, venv_env
from .grading import available_lessons, submission_nb


def run(cfg: Config) -> dict[str, Any]:
    lesson = available_lessons(cfg.course, [cfg.scaling_lesson])[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        workspace = Path(tmp) / "workspace"
        notebook = workspace / lesson.slug / lesson.notebook
        notebook.parent.mkdir(parents=True)
        nbformat.write(submission_nb(lesson, cfg.course, "correct", 0), notebook)
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "python -m grader --help": [PYTHON, "-m", "grader", "--help"],
            f"python -m grader check {lesson.slug} (cold)": [
                PYTHON, "-m", "grader", "--course", str(cfg.course), "check", lesson.slug,
                "--notebook", str(notebook), "--workspace", str(workspace)],
        }
        reps = max(cfg.repeats, 3) if cfg.scale != "tiny" else 1
        for name, cmd in commands.items():
            walls, rcs = [], set()
            for _ in range(reps):
                res = run_timed(cmd, cwd=cfg.course, env=venv_env(), check=False)
                walls.append(res["wall"])
                rcs.add(res["rc"])
            rows.append({"command": name, "wall_s": summary(walls), "exit_codes": sorted(rcs)})
            log(f"self-check: {name}: {summary(walls)['median']:.2f} s")
    return {"lesson": lesson.slug, "rows": rows, "warm": None,
            "warm_note": "no warm mode: every `python -m grader check` starts a new grader process and a new "
                         "sandboxed interpreter"}
