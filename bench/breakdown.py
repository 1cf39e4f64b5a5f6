"""Where the time of one graded submission goes, and what a warm interpreter would save.

Measured pieces (medians of repeats, each in a new process where it matters):
interpreter start-up; the imports the runner and the lessons' first cells
need, one after the other in one fresh process; the cost of the isolation
(the same near-empty notebook graded with ``Limits(isolation="auto")`` and
``"off"``); the grader's command-line start-up; nbgrader's kernel start-up;
and the pre-forked warm interpreter prototype (``bench.zygote``).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import PYTHON, ROOT, Config, log, run_timed, summary, venv_env

IMPORT_STEPS = (
    ("IPython InteractiveShell", "from IPython.core.interactiveshell import InteractiveShell"),
    ("create the shell", "InteractiveShell.instance()"),
    ("hypothesis", "import hypothesis"),
    ("numpy", "import numpy"),
    ("matplotlib + Figure", "import matplotlib; from matplotlib.figure import Figure"),
    ("course_lib (charts, database, redis_conn, ...)", "import course_lib"),
    ("fakeredis + redis", "import fakeredis, redis"),
    ("cachetools", "import cachetools"),
)

_IMPORT_SCRIPT = """
import json, time
out = []
t = time.perf_counter()
for name, stmt in STEPS:
    exec(stmt, globals())
    now = time.perf_counter()
    out.append((name, now - t))
    t = now
print(json.dumps(out))
"""


def import_costs(repeats: int) -> list[dict[str, Any]]:
    script = f"STEPS = {list(IMPORT_STEPS)!r}\n" + _IMPORT_SCRIPT
    samples: dict[str, list[float]] = {name: [] for name, _ in IMPORT_STEPS}
    for _ in range(repeats):
        res = run_timed([PYTHON, "-c", script], env=venv_env(MPLBACKEND="Agg"), cwd=ROOT)
        for name, secs in json.loads(res["stdout"].strip().splitlines()[-1]):
            samples[name].append(secs)
    return [{"step": name, "s": summary(vals)} for name, vals in samples.items()]


def isolation_cost(cfg: Config) -> dict[str, Any]:
    """Sandbox seconds of a near-empty notebook (the fixture course's first lesson), isolation on and off."""
    from grader.course.layout import load
    from grader.grading.grade import grade_notebook
    from grader.sandbox.protocol import Limits
    from grader.course.synthetic import write_submission

    fixture = ROOT / "examples" / "tiny-course"
    lesson = load(fixture).lessons[0]
    has_switch = any(f.name == "isolation" for f in dataclasses.fields(Limits))
    modes = ["auto", "off"] if has_switch else ["default"]
    out: dict[str, Any] = {"lesson": f"fixture {lesson.slug}", "modes": {}, "switch": has_switch}
    with tempfile.TemporaryDirectory(prefix="bench-iso-") as tmp:
        nb = write_submission(lesson.source_path(fixture), lesson.release_path(fixture), Path(tmp) / lesson.notebook)
        samples: dict[str, dict[str, list[float]]] = {m: {"sandbox": [], "cells": []} for m in modes}
        for _ in range(max(cfg.repeats, 3) if cfg.scale != "tiny" else 1):
            for mode in modes:
                limits = Limits(isolation=mode) if has_switch else Limits()
                result = grade_notebook(lesson.source_path(fixture), nb, limits=limits)
                cells = sum(float((c.get("record") or {}).get("seconds") or 0) for c in result.cells)
                samples[mode]["sandbox"].append(result.seconds)
                samples[mode]["cells"].append(cells)
        for mode in modes:
            out["modes"][mode] = {"sandbox_s": summary(samples[mode]["sandbox"]),
                                  "cells_s": summary(samples[mode]["cells"])}
    return out


def _top_level_imports(text: str) -> dict[str, float]:
    """Cumulative seconds of each top-level import in ``python -X importtime`` output."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if name.startswith(" ") and not name.startswith("  "):  # nesting level 0
            top = name.strip().split(".")[0]
            out[top] = out.get(top, 0.0) + int(parts[1]) / 1e6
    return out


def runner_imports(cfg: Config) -> dict[str, Any]:
    """What the sandboxed runner imports before the first cell, from ``-X importtime`` (protections off, fixture
    lesson): the grader's sandbox is asked to start ``python -X importtime -m grader.sandbox.runner`` instead."""
    import subprocess as sp

    import grader.sandbox.parent as sandbox
    from grader.course.layout import load
    from grader.grading.grade import grade_notebook
    from grader.sandbox.protocol import Limits
    from grader.course.synthetic import write_submission

    fixture = ROOT / "examples" / "tiny-course"
    lesson = load(fixture).lessons[0]
    runs: list[dict[str, float]] = []
    totals: list[float] = []
    original = sandbox.subprocess.Popen
    with tempfile.TemporaryDirectory(prefix="bench-imp-") as tmp:
        nb = write_submission(lesson.source_path(fixture), lesson.release_path(fixture), Path(tmp) / lesson.notebook)
        for i in range(max(cfg.repeats, 3) if cfg.scale != "tiny" else 1):
            log_path = Path(tmp) / f"imports-{i}.txt"
            with open(log_path, "wb") as log_file:
                def popen(args, *a, **kw):
                    args = list(args)
                    at = args.index(sys.executable)
                    args[at + 1:at + 1] = ["-X", "importtime"]
                    kw["stderr"] = log_file
                    return original(args, *a, **kw)

                sandbox.subprocess = _PatchedSubprocess(sp, popen)
                try:
                    result = grade_notebook(lesson.source_path(fixture), nb, limits=Limits(isolation="off"))
                finally:
                    sandbox.subprocess = sp
            runs.append(_top_level_imports(log_path.read_text(encoding="utf-8", errors="replace")))
            totals.append(result.seconds)
    names = sorted({n for r in runs for n in r}, key=lambda n: -statistics.median([r.get(n, 0.0) for r in runs]))
    top = [{"module": n, "s": summary([r.get(n, 0.0) for r in runs])} for n in names[:10]]
    return {"top": top, "all_imports_s": summary([sum(r.values()) for r in runs]), "sandbox_s": summary(totals),
            "lesson": f"fixture {lesson.slug}"}


class _PatchedSubprocess:
    """``subprocess`` with another Popen, for the sandbox module only."""

    def __init__(self, real, popen) -> None:
        self._real, self.Popen = real, popen

    def __getattr__(self, name):
        return getattr(self._real, name)


def kernel_start(repeats: int) -> dict[str, Any]:
    """nbgrader's per-notebook start-up: a new ipykernel, started and ready (jupyter_client)."""
    script = ("import time; from jupyter_client.manager import start_new_kernel\n"
              "t = time.perf_counter(); km, kc = start_new_kernel(kernel_name='python3')\n"
              "ready = time.perf_counter() - t; kc.stop_channels(); km.shutdown_kernel(now=True)\n"
              "print(ready)")
    vals = []
    for _ in range(repeats):
        res = run_timed([PYTHON, "-c", script], env=venv_env(), cwd=ROOT)
        vals.append(float(res["stdout"].strip().splitlines()[-1]))
    return {"s": summary(vals)}


def zygote(repeats: int) -> dict[str, Any]:
    res = run_timed([PYTHON, "-m", "bench.zygote", str(repeats)], env=venv_env(PYTHONPATH=str(ROOT)), cwd=ROOT)
    data = json.loads(res["stdout"].strip().splitlines()[-1])
    return {"cold_s": summary(data["cold_s"]), "warm_fork_s": summary(data["warm_fork_s"]),
            "preload_once_s": data["preload_once_s"], "preload": data["preload"]}


def run(cfg: Config) -> dict[str, Any]:
    reps = max(cfg.repeats, 3) if cfg.scale != "tiny" else 1
    out: dict[str, Any] = {}
    log("breakdown: interpreter and imports")
    out["python_start"] = summary([run_timed([PYTHON, "-c", "pass"], env=venv_env())["wall"] for _ in range(reps)])
    out["imports"] = import_costs(reps)
    out["grader_cli_start"] = summary([run_timed([PYTHON, "-m", "grader", "--help"], env=venv_env())["wall"]
                                       for _ in range(reps)])
    log("breakdown: imports inside the runner")
    try:
        out["runner_imports"] = runner_imports(cfg)
    except Exception as exc:  # depends on the sandbox's internals: report, do not fail the section
        out["runner_imports"] = {"error": f"{type(exc).__name__}: {exc}"}
    log("breakdown: isolation on/off")
    out["isolation"] = isolation_cost(cfg)
    if cfg.nbgrader:
        log("breakdown: kernel start")
        out["kernel_start"] = kernel_start(reps)
    if cfg.zygote:
        log("breakdown: warm interpreter prototype")
        out["zygote"] = zygote(max(reps, 5))
    return out
