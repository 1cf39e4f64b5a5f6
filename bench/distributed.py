"""Section 6: grading through dask.distributed against the local pool, and submit-to-feedback latency.

Executors: the same class (``dask_learners`` correct submissions of ``scaling_lesson``) graded from
scratch by ``autograde`` on the local pool (``workers`` processes), then with ``--scheduler`` on a
loopback cluster of 1 and of 2 ``dask worker --nthreads 1`` processes; the overhead per submission of
the distributed path is (Dask time - local time) / submissions. The Dask workers are up before the
timed command starts, the local pool starts its processes inside its time.
Latency: ``grader serve --release-feedback`` on the local pool; ``burst`` learners submit at once
through nbgrader's exchange; for each, the seconds from its submit returning to its feedback being
released (the service's journal says when), median and 95th percentile.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import PYTHON, Config, log, run_timed, summary, venv_env


def _course(cfg: Config, folder: Path) -> tuple[Path, Any]:
    from grader.course.layout import load
    from grader.classroom.demo import copy_course

    lesson = next(l for l in load(cfg.course).lessons if l.slug == cfg.scaling_lesson)
    return copy_course(cfg.course, folder / "course", [lesson]), lesson


def _grader(root: Path, *args: str, timeout: float = 3600) -> dict[str, Any]:
    return run_timed([PYTHON, "-m", "grader", "--course", str(root), *args], cwd=root, env=venv_env(), timeout=timeout)


def _class(cfg: Config, root: Path, lesson: Any, folder: Path) -> None:
    from grader.course.synthetic import write_submission

    incoming = folder / "incoming"
    for k in range(cfg.dask_learners):
        write_submission(lesson.source_path(root), lesson.release_path(root),
                         incoming / f"learner{k:03d}" / lesson.notebook)
    _grader(root, "import", lesson.slug, str(incoming))
    from grader.classroom.autograde import grade_reference

    grade_reference(root, lesson)  # stored: every timed run below reuses the reference solution's verdict


def executors(cfg: Config, tmp: Path) -> dict[str, Any]:
    from .dask_cluster import DaskCluster

    root, lesson = _course(cfg, tmp / "executors")
    _class(cfg, root, lesson, tmp / "executors")
    n = cfg.dask_learners
    runs: dict[str, list[float]] = {"local": [], "dask-1": [], "dask-2": []}
    for _ in range(cfg.grading_repeats):
        runs["local"].append(_grader(root, "autograde", lesson.slug, "--quiet", "--force", "--workers",
                                     str(cfg.workers))["wall"])
        for workers in (1, 2):
            with DaskCluster(tmp / f"cluster-{workers}-{len(runs['dask-1'])}", workers=workers) as cluster:
                runs[f"dask-{workers}"].append(_grader(root, "autograde", lesson.slug, "--quiet", "--force",
                                                       "--scheduler", cluster.address)["wall"])
    rows = []
    for name, walls in runs.items():
        rows.append({"executor": name, "wall_s": summary(walls), "per_submission_s": summary([w / n for w in walls])})
    local = statistics.median(runs["local"])
    overhead = {name: (statistics.median(runs[name]) - local) / n for name in ("dask-1", "dask-2")}
    return {"lesson": lesson.slug, "submissions": n, "local_workers": cfg.workers, "rows": rows,
            "overhead_per_submission_s": overhead}


def _iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def latency(cfg: Config, tmp: Path) -> dict[str, Any]:
    from grader.course.layout import course_id
    from grader.classroom.demo import ExchangeUser
    from grader.serving.journal import Journal, journal_path
    from grader.course.synthetic import write_submission

    root, lesson = _course(cfg, tmp / "latency")
    exchange = tmp / "latency" / "exchange"
    exchange.mkdir()
    _grader(root, "release", lesson.slug, "--exchange", str(exchange))
    course = course_id(root)
    users = [ExchangeUser(f"learner{k:03d}", tmp / "latency" / "home" / f"learner{k:03d}", exchange, course)
             for k in range(cfg.burst)]
    for user in users:  # fetched and answered beforehand: the burst is the submits alone
        fetched = user.fetch(lesson.slug) / lesson.notebook
        write_submission(lesson.source_path(root), lesson.release_path(root), fetched)
    service = subprocess.Popen([PYTHON, "-m", "grader", "--course", str(root), "serve", "--exchange", str(exchange),
                                "--release-feedback", "--workers", str(cfg.workers), "--poll", "0.2"],
                               cwd=root, env=venv_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    journal = Journal(journal_path(root))
    try:
        submitted: dict[str, float] = {}
        for user in users:
            user.submit(lesson.slug)
            submitted[user.name] = time.time()
        deadline = time.monotonic() + 120 + 60 * cfg.burst
        done: dict[str, float] = {}
        while len(done) < len(users):
            if service.poll() is not None:
                raise RuntimeError(f"grader serve stopped: {service.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(done)} of {len(users)} submissions were graded in time")
            done = {e["student"]: _iso(e["at"]) for e in journal.events() if e["event"] == "done"}
            time.sleep(0.2)
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()
    seconds = sorted(done[name] - submitted[name] for name in submitted)
    p95 = statistics.quantiles(seconds, n=20, method="inclusive")[-1] if len(seconds) > 1 else seconds[0]
    burst_s = max(done.values()) - min(submitted.values())
    return {"lesson": lesson.slug, "burst": cfg.burst, "workers": cfg.workers, "latency_s": summary(seconds),
            "p95_s": p95, "all_feedback_after_s": burst_s, "seconds": seconds}


def run(cfg: Config) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        log(f"distributed: {cfg.dask_learners} submission(s), local pool vs Dask with 1 and 2 workers")
        result = {"executors": executors(cfg, Path(tmp))}
        log(f"distributed: a burst of {cfg.burst} submission(s) to grader serve")
        result["latency"] = latency(cfg, Path(tmp))
    log("distributed: " + json.dumps(result["executors"]["overhead_per_submission_s"]))
    return result
