"""``python -m bench`` / ``make bench``: run the benchmarks and write bench/REPORT.md with PNG charts.

    python -m bench                       # everything at full scale (what `make bench` runs)
    python -m bench --scale small         # a few minutes, same sections, smaller numbers
    python -m bench --sections hotpaths,stampede --out /tmp/r.md --charts /tmp/r
    python -m bench --from-json bench/report/results.json   # rewrite the report from saved results

Benchmarks report; they never fail on a number. A section that errors is
reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .common import PRESETS, Config, git_revision, log, machine, make_config, save_json, versions

SECTIONS = ("hotpaths", "stampede", "lessons", "check", "breakdown", "baseline", "grading", "distributed")  # cheap first


def _ints(text: str | None) -> list[int] | None:
    return [int(x) for x in text.split(",") if x.strip()] if text else None


def parse(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=sorted(PRESETS), default="full")
    p.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--course", type=Path, help="course folder to grade (default: this checkout)")
    p.add_argument("--lessons", help="comma-separated lesson slugs or numbers for the throughput class")
    p.add_argument("--learners", type=int, help="learners in the throughput class (x every lesson)")
    p.add_argument("--scaling-lesson", help="lesson for the cost-per-learner runs")
    p.add_argument("--scaling-sizes", help="class sizes to show, e.g. 10,50,200")
    p.add_argument("--scaling-factor", type=float, help="the sizes actually graded are sizes x factor")
    p.add_argument("--workers", type=int, help="our grader's workers (default: cores)")
    p.add_argument("--repeats", type=int, help="repeats of the cheap measurements")
    p.add_argument("--lesson-repeats", type=int, help="repeats of each solution notebook's run (section 3)")
    p.add_argument("--grading-repeats", type=int, help="repeats of each whole-class grading run")
    p.add_argument("--dask-learners", type=int, help="class graded by the local pool and by Dask (section distributed)")
    p.add_argument("--burst", type=int, help="submissions made at once to `grader serve` (section distributed, default 50)")
    p.add_argument("--no-nbgrader", action="store_true", help="skip plain nbgrader (no comparison)")
    p.add_argument("--no-real-redis", action="store_true", help="do not start a redis-server")
    p.add_argument("--out", type=Path, help="the Markdown report (default bench/REPORT.md)")
    p.add_argument("--charts", type=Path, help="folder for PNGs and results.json (default bench/report)")
    p.add_argument("--baseline", type=Path,
                   help="another checkout of this course (a git worktree of an earlier commit, with its own .venv): "
                        "section `baseline` grades each lesson's solution with both, interleaved")
    p.add_argument("--from-json", type=Path, help="only rewrite the report from a results.json")
    args = p.parse_args(argv)
    cfg = make_config(
        args.scale, course=args.course.resolve() if args.course else None,
        lessons=args.lessons.split(",") if args.lessons else None, learners=args.learners,
        scaling_lesson=args.scaling_lesson, scaling_sizes=_ints(args.scaling_sizes),
        scaling_factor=args.scaling_factor, workers=args.workers, repeats=args.repeats,
        grading_repeats=args.grading_repeats, lesson_repeats=args.lesson_repeats, nbgrader=False if args.no_nbgrader else None,
        dask_learners=args.dask_learners, burst=args.burst,
        real_redis=False if args.no_real_redis else None,
        sections=args.sections.split(",") if args.sections else None,
        baseline=args.baseline.resolve() if args.baseline else None,
        out=args.out.resolve() if args.out else None, charts=args.charts.resolve() if args.charts else None)
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return cfg, args


def run_all(cfg: Config) -> dict[str, Any]:
    import importlib

    results: dict[str, Any] = {"config": cfg.to_dict(), "machine_start": machine(), "versions": versions(),
                               "git": git_revision(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                               "command": " ".join(["python -m bench"] + sys.argv[1:]), "sections": {},
                               "section_seconds": {}, "section_load": {}}
    start = time.monotonic()
    for name in SECTIONS:
        if cfg.sections and name not in cfg.sections:
            continue
        module = importlib.import_module(f"bench.{'grading' if name == 'grading' else name}"
                                         if name != "check" else "bench.selfcheck")
        log(f"== {name} (load average {os.getloadavg()[0]:.2f})")
        t0, load0 = time.monotonic(), os.getloadavg()
        try:
            results["sections"][name] = module.run(cfg)
        except Exception as exc:  # reported, the other sections still run
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}",
                                         "traceback": traceback.format_exc()[-4000:]}
            log(f"{name} failed: {exc}")
        results["section_seconds"][name] = time.monotonic() - t0
        results["section_load"][name] = [load0[0], os.getloadavg()[0]]
    results["seconds"] = time.monotonic() - start
    results["machine_end"] = machine()
    return results


def main(argv: list[str] | None = None) -> int:
    import json

    from .report import write_report

    cfg, args = parse(argv)
    import signal

    # a terminated run still removes its temporary course folders and stops its child processes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        results = run_all(cfg)
        save_json(cfg.charts / "results.json", results)
    page = write_report(results, cfg.out, cfg.charts)
    log(f"report: {page} ({results.get('seconds', 0):.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
