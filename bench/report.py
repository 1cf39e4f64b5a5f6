"""Turn the benchmark results (plain data) into bench/REPORT.md and PNG charts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from grader.grading.result import SCORED

_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")

TARGETS = {
    "throughput": 3.0,  # x plain nbgrader, protections on
    "flat": 1.25,  # per-learner cost at the largest size / at the smallest (flat = at most this)
    "hot": 1.5,  # SimpleCache hit / @cached(TTLCache, lock) hit
    "trips": 1.0,  # round trips per decorator hit
}


def _s(summary: dict[str, float] | None, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    if not summary:
        return "-"
    med = summary["median"] * scale
    if summary.get("n", 1) <= 1:
        return f"{med:.{digits}f}{unit}"
    return f"{med:.{digits}f}{unit} ({summary['min'] * scale:.{digits}f}-{summary['max'] * scale:.{digits}f})"


def _ns(summary: dict[str, float] | None) -> str:
    if not summary:
        return "-"
    med = summary["median"]
    digits = 0 if med >= 100 else 1
    if summary.get("n", 1) <= 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({summary['min']:,.{digits}f}-{summary['max']:,.{digits}f})"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _save(fig: Figure, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / name, format="png", dpi=90)
    return name


def _img(page: Path, charts: Path, name: str, alt: str) -> str:
    rel = os.path.relpath(charts / name, page.parent)
    return f"![{alt}]({rel})"


def _error(section: dict[str, Any]) -> str | None:
    if "error" in section:
        return f"**This section failed:** `{section['error']}`\n\n```\n{section.get('traceback', '')[-1500:]}\n```"
    return None


# ---------------------------------------------------------------- sections


def _grading(res: dict[str, Any], charts: Path, page: Path, breakdown: dict[str, Any] | None,
             lessons: dict[str, Any] | None, gaps: list[list[str]]) -> list[str]:
    out = ["## 1. Grading throughput", ""]
    err = _error(res)
    if err:
        gaps.append(["grading throughput >= 3x plain nbgrader", "not measured (section failed)", "?"])
        return out + [err, ""]
    t = res["throughput"]
    out.append(f"The same synthetic class, {t['learners']} learner(s) x {len(t['lessons'])} lesson(s) = "
               f"{t['submissions']} submissions (6 in 10 correct, 3 partial with every other answer left as the "
               f"stub, 1 blank), graded lesson by lesson by each grader in its own copy of the course folder; "
               f"our grader with {t['workers']} worker(s), nbgrader serially (it has no parallel mode). "
               f"Runs interleaved per lesson, order alternated between repeats; {t['repeats']} repeat(s). "
               "Times include each command's own start-up (one command per lesson), as an instructor sees them. "
               "Values are median (min-max) over repeats.")
    out.append("")
    names = {"ours": "`python -m grader autograde` (protections on)",
             "ours-off": "our grader, protections off (`Limits(isolation=\"off\")`)",
             "nbgrader": "`nbgrader autograde` (plain)",
             "ours-class": "`python -m grader autograde` every lesson in one command (one queue; protections on)"}
    rows = []
    for v, d in t["variants"].items():
        rows.append([names.get(v, v), _s(d["wall_s"], 1), _s(d["per_submission_s"], 2),
                     f"{t['variants']['nbgrader']['wall_s']['median'] / d['wall_s']['median']:.2f}x"
                     if "nbgrader" in t["variants"] else "-"])
    out.append(_table(["grader", "whole class (s)", "seconds per submission", "speed vs nbgrader"], rows))
    out.append("")
    if not t.get("off_switch"):
        out.append("The grader has no switch to turn its protections off, so only \"on\" is measured.\n")
    elif t.get("off_error"):
        out.append(f"The protections-off run failed and was dropped: `{t['off_error'][-300:]}`\n")
    if "speedup" in t:
        sp = t["speedup"]
        met = sp["median"] >= TARGETS["throughput"]
        out.append(f"**Throughput, ours vs plain nbgrader (same run, ratio per repeat): {_s(sp, 2)}x** "
                   f"(target >= {TARGETS['throughput']:g}x: {'met' if met else 'not met'}).")
        gaps.append(["grading throughput >= 3x plain nbgrader (protections on)", f"{sp['median']:.2f}x",
                     "met" if met else f"gap: {TARGETS['throughput'] / sp['median']:.1f}x short"])
        if "speedup_class" in t:
            spc = t["speedup_class"]
            out.append(f"**The whole class in one command (one queue over every lesson) vs plain nbgrader lesson by "
                       f"lesson: {_s(spc, 2)}x**; same total score as the lesson-by-lesson run for "
                       f"{t.get('class_score_agreement', '?')}/{t['submissions']} submissions.")
            gaps.append(["grading throughput >= 3x plain nbgrader, the class in one command", f"{spc['median']:.2f}x",
                         "met" if spc["median"] >= TARGETS["throughput"]
                         else f"gap: {TARGETS['throughput'] / spc['median']:.1f}x short"])
        agree = t.get("score_agreement")
        if agree:
            out.append(f"Both graders gave the same total score to {agree['agree']}/{agree['total']} submissions"
                       + (f" (differences: {'; '.join(agree['examples'])})" if agree["examples"] else "") + ".")
        out.append("")
    if t.get("statuses"):
        for v, counts in t["statuses"].items():
            bad = {k: n for k, n in counts.items() if k not in SCORED}
            if bad:
                out.append(f"**Warning ({v}):** not every submission was graded: "
                           + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                           + ". Examples: " + "; ".join(f"`{x}`" for x in t["problems"].get(v, [])) + ". "
                           "Those submissions took little or no time, so this variant's time is too low.\n")
    if t.get("sandbox_seconds"):
        out.append(f"Sandbox time per graded submission (protections on, from the stored results): "
                   f"{_s(t['sandbox_seconds'], 2)} s.\n")
    # per lesson
    variants = [v for v in t["variants"] if all(v in d for d in t["per_lesson"].values())]  # one command per lesson
    rows = [[slug] + [f"{d[v]:.2f}" for v in variants] for slug, d in t["per_lesson"].items()]
    out.append("Seconds per submission, per lesson (median over repeats):\n")
    out.append(_table(["lesson"] + [v for v in variants], rows))
    out.append("")
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    slugs = list(t["per_lesson"])
    width = 0.8 / max(1, len(variants))
    for j, v in enumerate(variants):
        ax.bar([i + (j - (len(variants) - 1) / 2) * width for i in range(len(slugs))],
               [t["per_lesson"][s][v] for s in slugs], width, label=v, color=_COLORS[j])
    ax.set_xticks(range(len(slugs)), [s.split("-")[0] for s in slugs])
    ax.set_xlabel("lesson")
    ax.set_ylabel("seconds per submission (wall)")
    ax.set_title(f"Grading time per submission, {t['learners']} learner(s) per lesson")
    ax.legend()
    out.append(_img(page, charts, _save(fig, charts, "grading_per_lesson.png"), "grading time per lesson"))
    out.append("")
    # scaling
    sc = res["scaling"]
    out.append("### Cost per learner as the class grows")
    out.append("")
    asked = ", ".join(str(n) for n in sc["requested"])
    graded = ", ".join(str(r["learners"]) for r in sc["rows"])
    out.append(f"Lesson `{sc['lesson']}`, our grader with {sc['workers']} worker(s). Requested sizes {asked}, "
               f"scaled by {sc['factor']:g} to fit the time budget: **graded {graded} learners**. "
               "\"Grading\" is autograde's own timer (without the command's start-up).")
    out.append("")
    rows = [[r["learners"], _s(r["wall_s"], 1), _s(r["per_learner_s"], 2), _s(r.get("grading_per_learner_s"), 2),
             _s(r.get("sandbox_s"), 2), ", ".join(f"{n} {k}" for k, n in sorted(r.get("statuses", {}).items()))]
            for r in sc["rows"]]
    out.append(_table(["learners", "command (s)", "command s / learner", "grading s / learner",
                       "sandbox s per graded submission", "statuses"], rows))
    out.append("")
    if len(sc["rows"]) >= 2:
        key = "grading_per_learner_s" if all(r.get("grading_per_learner_s") for r in sc["rows"]) else "per_learner_s"
        per = [r[key]["median"] for r in sc["rows"]]
        growth = per[-1] / min(per[:-1]) if min(per[:-1]) else float("nan")
        flat = growth <= TARGETS["flat"]
        out.append(f"Per-learner cost ({'grading' if key == 'grading_per_learner_s' else 'command'} s / learner) at "
                   + ", ".join(f"{r['learners']} learners: {v:.2f} s" for r, v in zip(sc["rows"], per))
                   + f". Largest class / cheapest smaller class: **{growth:.2f}** "
                   f"({'does not grow' if flat else 'grows'}; target: at most {TARGETS['flat']:g}). A class smaller "
                   f"than twice the {sc['workers']} workers leaves a worker idle part of the time, and the command's "
                   "fixed start-up is shared by more learners, so small classes cost more per learner.")
        gaps.append([f"cost per learner flat from {sc['requested'][0]} to {sc['requested'][-1]} learners",
                     f"{growth:.2f}x ({', '.join(str(r['learners']) for r in sc['rows'])} learners graded)",
                     "met" if flat else "gap: grows"])
        out.append("")
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        xs = [r["learners"] for r in sc["rows"]]
        ax.plot(xs, [r["per_learner_s"]["median"] for r in sc["rows"]], marker="o", label="command / learner",
                color=_COLORS[0])
        if all(r.get("grading_per_learner_s") for r in sc["rows"]):
            ax.plot(xs, [r["grading_per_learner_s"]["median"] for r in sc["rows"]], marker="s",
                    label="grading / learner", color=_COLORS[1])
        ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("learners graded (log scale)")
        ax.set_ylabel("seconds per learner")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Cost per learner, {sc['lesson']}")
        ax.legend()
        out.append(_img(page, charts, _save(fig, charts, "grading_scaling.png"), "cost per learner"))
        out.append("")
    out += _breakdown(breakdown, lessons, t, charts, page)
    return out


def _breakdown(b: dict[str, Any] | None, lessons: dict[str, Any] | None, t: dict[str, Any] | None, charts: Path,
               page: Path) -> list[str]:
    out = ["### Where the time goes, per submission", ""]
    if not b or "error" in b:
        return out + [(_error(b) if b else "Not measured (section `breakdown` not run)."), ""]
    imports = {r["step"]: r["s"]["median"] for r in b["imports"]}
    runner_imports = sum(imports.get(k, 0) for k in ("IPython InteractiveShell", "create the shell", "hypothesis"))
    lesson_imports = sum(v for k, v in imports.items()
                         if k not in ("IPython InteractiveShell", "create the shell", "hypothesis"))
    rows = [["interpreter start-up (`python -c pass`)", f"{b['python_start']['median']:.3f}", "every submission"]]
    for r in b["imports"]:
        rows.append([f"import: {r['step']}", f"{r['s']['median']:.3f}", "every submission (fresh interpreter)"])
    rows.append([f"**imports total** (runner: {runner_imports:.2f}; lessons' libraries: {lesson_imports:.2f})",
                 f"**{runner_imports + lesson_imports:.2f}**", ""])
    iso = b.get("isolation", {}).get("modes", {})
    if "off" in iso and "auto" in iso:
        off, on = iso["off"], iso["auto"]
        fixed_off = off["sandbox_s"]["median"] - off["cells_s"]["median"]
        fixed_on = on["sandbox_s"]["median"] - on["cells_s"]["median"]
        rows.append(["sandbox start-up, protections off (near-empty notebook: sandbox time minus its cells)",
                     f"{fixed_off:.2f}", "every submission"])
        rows.append(["sandbox start-up, protections on", f"{fixed_on:.2f}", "every submission"])
        rows.append(["of which the protections (on minus off)", f"{fixed_on - fixed_off:+.2f}"
                     + (" (within the noise)" if abs(fixed_on - fixed_off) < 0.1 * fixed_off else ""),
                     "every submission"])
    elif iso:
        mode = next(iter(iso.values()))
        rows.append(["sandbox start-up (near-empty notebook)",
                     f"{mode['sandbox_s']['median'] - mode['cells_s']['median']:.2f}", "every submission"])
    if lessons and "rows" in lessons:
        cells = [r["cells_s"]["median"] for r in lessons["rows"]]
        starts = [r["startup_s"]["median"] for r in lessons["rows"]]
        first = [r["parts"]["first cell (imports, set-up)"]["median"] for r in lessons["rows"]]
        parent = [r["parent_s"]["median"] for r in lessons["rows"]]
        n = len(cells)
        rows.append([f"cell execution, mean over {n} lesson(s) (section 3)", f"{sum(cells) / n:.2f}",
                     "every submission"])
        rows.append(["  of which the first cell (the lesson's imports and set-up)", f"{sum(first) / n:.2f}",
                     "small: the runner imports what the test cells import (course_lib included) before the "
                     "first cell, so those imports count as start-up"])
        rows.append(["sandbox time outside cells, mean over the lessons", f"{sum(starts) / n:.2f}", "every submission"])
        rows.append(["grader parent per submission (read, assemble, collect results)", f"{sum(parent) / n:.3f}",
                     "every submission"])
    rows.append(["`python -m grader` command start-up (`--help`)", f"{b['grader_cli_start']['median']:.2f}",
                 "once per command (per lesson)"])
    if "kernel_start" in b:
        rows.append(["nbgrader: a new ipykernel started and ready", f"{b['kernel_start']['s']['median']:.2f}",
                     "every submission (nbgrader)"])
    if t and "nbgrader" in t.get("variants", {}):
        rows.append(["nbgrader: seconds per submission in the class run",
                     f"{t['variants']['nbgrader']['per_submission_s']['median']:.2f}", "(section 1)"])
        rows.append(["ours: seconds per submission in the class run",
                     f"{t['variants']['ours']['per_submission_s']['median']:.2f}",
                     f"(section 1, {t['workers']} workers)"])
    out.append(_table(["piece", "seconds (median)", "paid"], rows))
    out.append("")
    ri = b.get("runner_imports")
    if ri and "top" in ri:
        out.append(f"Imports inside the sandboxed runner before its first cell (`python -X importtime`, {ri['lesson']}, "
                   f"protections off): **{_s(ri['all_imports_s'], 2)} s of a {_s(ri['sandbox_s'], 2)} s sandbox run**. "
                   "Top-level packages, cumulative seconds:")
        out.append("")
        out.append(_table(["top-level import", "seconds"], [[f"`{r['module']}`", _s(r["s"], 3)] for r in ri["top"]
                                                           if r["s"]["median"] >= 0.005]))
        out.append("")
        grader_import = next((r["s"]["median"] for r in ri["top"] if r["module"] == "grader"), 0.0)
        if grader_import >= 0.2:  # grader/__init__.py is lazy (PEP 562): the runner should import next to nothing
            out.append(f"`grader` costs the runner {grader_import:.2f} s: something made `grader/__init__.py` "
                       "import its submodules eagerly again (it should import them on first use, PEP 562).")
            out.append("")
    elif ri:
        out.append(f"Imports inside the runner: not measured ({ri.get('error')}).\n")
    z = b.get("zygote")
    if z:
        saved = z["cold_s"]["median"] - z["warm_fork_s"]["median"]
        out.append(f"**Pre-forked warm interpreter (prototype, `bench/zygote.py`):** a new interpreter that imports "
                   f"{', '.join(z['preload'])}, creates an IPython shell and runs one trivial cell takes "
                   f"{_s(z['cold_s'], 3)} s; a fork of a process that imported them once "
                   f"({z['preload_once_s']:.2f} s, paid once per worker) does the same in "
                   f"{_s(z['warm_fork_s'], 3)} s: **{saved:.2f} s saved per submission**.")
        out.append("")
    out += _proposal(b, lessons, t)
    if lessons and "rows" in lessons and iso:
        fig = Figure(figsize=(8, 4), layout="constrained")
        ax = fig.subplots()
        slugs = [r["lesson"].split("-")[0] for r in lessons["rows"]]
        start = [r["startup_s"]["median"] for r in lessons["rows"]]
        cells = [r["cells_s"]["median"] for r in lessons["rows"]]
        parent = [r["parent_s"]["median"] for r in lessons["rows"]]
        ax.bar(slugs, start, label="sandbox start-up (interpreter, imports, isolation)", color=_COLORS[0])
        ax.bar(slugs, cells, bottom=start, label="cell execution", color=_COLORS[1])
        ax.bar(slugs, parent, bottom=[a + b for a, b in zip(start, cells)], label="grader parent", color=_COLORS[2])
        ax.set_xlabel("lesson")
        ax.set_ylabel("seconds (one submission, solution)")
        ax.set_title("Where one submission's grading time goes")
        top = max(a + b + c for a, b, c in zip(start, cells, parent))
        ax.set_ylim(0, top * 1.4)
        ax.legend(loc="upper left", fontsize=8, ncols=2)
        out.append(_img(page, charts, _save(fig, charts, "grading_breakdown.png"), "time breakdown"))
        out.append("")
    return out


def _proposal(b: dict[str, Any], lessons: dict[str, Any] | None, t: dict[str, Any] | None) -> list[str]:
    """A concrete proposal with the numbers of this run (the lead decides what to implement)."""
    z = b.get("zygote")
    rows = (lessons or {}).get("rows") or []
    sandbox = sum(r["sandbox_s"]["median"] for r in rows) / len(rows) if rows else None
    compared = [r for r in rows if r.get("kernel_sandbox_s")]
    out = ["#### Proposal", ""]
    if compared:
        judge = sum(r["sandbox_s"]["median"] for r in compared)
        kernel = sum(r["kernel_sandbox_s"]["median"] for r in compared)
        costly = sorted(compared, key=lambda r: r["kernel_sandbox_s"]["median"] - r["sandbox_s"]["median"])[:4]
        out.append(f"1. **The judge's round trips** are now the largest cost: {judge - kernel:+.1f} s over "
                   f"{len(compared)} lesson(s) (x{judge / kernel:.2f}, section 3). Each call, attribute, item or "
                   "callback between a test and the learner's code is one request (each test cell's record counts "
                   "them: `requests`). The lever left is the number of requests: the lessons where the judge "
                   f"costs most ({', '.join(r['lesson'] for r in costly)}) can test the same behaviour with fewer "
                   "calls (shorter loops over a learner's cache, fewer property-test examples that each make "
                   "dozens of calls).")
    if z:
        saved = z["cold_s"]["median"] - z["warm_fork_s"]["median"]
        out.append(f"2. **A pre-forked warm interpreter per worker** (zygote): each worker starts one runner that "
                   f"imports IPython, hypothesis, numpy, matplotlib, course_lib, fakeredis and cachetools once "
                   f"({z['preload_once_s']:.2f} s) and forks one child per submission, saving about {saved:.2f} s "
                   "per submission (prototype above). Conditions: the zygote must never hold instructor material "
                   "(source notebook, hidden tests, HMAC keys: those arrive in the child after the fork, as now over "
                   "the pipe); the child does what the runner's process start does now (new session, rlimits, "
                   "scratch folder, clean environment, audit hook, nobody user); with bubblewrap the zygote itself "
                   "runs inside the sandbox and each child needs its own scratch/tmpfs (or the zygote is recycled "
                   "after each submission it served, which keeps the imports warm through a second pre-fork).")
    out.append("3. **Start-up of the grader's own commands:** `python -m grader --help` takes "
               f"{b['grader_cli_start']['median']:.2f} s, mostly `nbformat` -> `jsonschema`; importing `nbformat` "
               "only inside the functions that read notebooks, and the command modules only when chosen, would "
               "cut every command (and `check`).")
    if sandbox is not None and z:
        saved = z["cold_s"]["median"] - z["warm_fork_s"]["median"]
        est = max(0.0, sandbox - saved)
        out.append("")
        line = (f"Estimate for step 2 alone: a solution's sandbox run averages {sandbox:.2f} s over the lessons in "
                f"this run; with a warm interpreter, about {est:.2f} s (mostly the cells themselves, section 3, which "
                "no start-up change removes).")
        if t and "nbgrader" in t.get("variants", {}) and est > 0:
            nb = t["variants"]["nbgrader"]["per_submission_s"]["median"]
            ours = t["variants"]["ours"]["per_submission_s"]["median"]
            projected = ours * (est / sandbox)
            line += (f" Scaling this run's {ours:.2f} s per submission by {est:.2f}/{sandbox:.2f} gives about "
                     f"{projected:.2f} s, i.e. **about {nb / projected:.1f}x plain nbgrader** ({nb:.2f} s) with "
                     f"{t['workers']} workers: an estimate to confirm by measuring, not a measurement.")
        out.append(line)
    out.append("")
    return out


def _baseline(res: dict[str, Any] | None, gaps: list[list[str]]) -> list[str]:
    out = ["## Against an earlier commit (`--baseline`)", ""]
    if not res or "skipped" in res or _error(res):
        return out + [(_error(res) if res and "error" in res else "Not measured in this run: pass `--baseline "
                       "PATH`, a worktree of the earlier commit with its own `.venv`."), ""]
    when = (f" Measured {res['started']}, load average {res['load'][0]:.1f} -> {res['load'][1]:.1f}."
            if "started" in res else "")
    out.append(f"This checkout (`{res['ours']}`) against `{res['baseline']}`: each grades its own lessons' "
               "solutions as submissions (`grade_notebook`, one child process per submission, runs interleaved). "
               "**Outside the cells** is the submission's wall time minus its cells' own time: start-up of the "
               "sandboxed processes, the judge's set-up, result handling. That is what a change to the grading "
               "processes costs; the cells' time also moves when a lesson's content changed between the commits." + when)
    out.append("")
    rows, deltas = [], []
    for r in res["rows"]:
        a, b = r["ours"], r["baseline"]
        delta = a["outside_s"]["median"] - b["outside_s"]["median"]
        deltas.append(delta)
        rows.append([r["lesson"], _s(b["outside_s"]), _s(a["outside_s"]), f"{delta:+.2f}", _s(b["wall_s"]),
                     _s(a["wall_s"]), ", ".join(b["status"]) + " / " + ", ".join(a["status"])])
    out.append(_table(["lesson", "outside cells, baseline (s)", "outside cells, ours (s)", "change (s)",
                       "wall, baseline (s)", "wall, ours (s)", "status baseline / ours"], rows))
    if deltas:
        mean = sum(deltas) / len(deltas)
        out += ["", f"**Mean change outside the cells: {mean:+.2f} s per submission** over {len(deltas)} lesson(s)."]
        gaps.append(["cost of a grading-process change vs `--baseline` <= +0.2 s per submission",
                     f"{mean:+.2f} s", "met" if mean <= 0.2 else f"gap: {mean - 0.2:.2f} s over"])
    return out + [""]


def _check(res: dict[str, Any] | None) -> list[str]:
    out = ["## 2. Self-check latency (`python -m grader check`)", ""]
    if not res:
        return out + ["Not measured.", ""]
    err = _error(res)
    if err:
        return out + [err, ""]
    out.append(f"Lesson `{res['lesson']}`, a correct notebook, each run a new process. {res['warm_note'].capitalize()}, "
               "so only cold latency is reported.")
    out.append("")
    rows = [[f"`{r['command']}`", _s(r["wall_s"], 2), ",".join(map(str, r["exit_codes"]))] for r in res["rows"]]
    out.append(_table(["command", "seconds, median (min-max)", "exit code"], rows))
    out.append("")
    return out


def _lessons(res: dict[str, Any] | None, charts: Path, page: Path) -> list[str]:
    out = ["## 3. Lesson execution at the grading scale", ""]
    if not res:
        return out + ["Not measured.", ""]
    err = _error(res)
    if err:
        return out + [err, ""]
    out.append(f"Each solution notebook graded as a submission by `grade_notebook` (sandbox on, the grader's "
               f"latency scale), {res['repeats']} repeat(s), median (min-max) seconds. \"Start-up\" is sandbox "
               "time outside the cells (interpreter, imports, isolation, shell). The last column grades the same "
               "submission with the test cells in the learner's kernel instead of the trusted judge (the lesson "
               "opted out), interleaved with the normal runs: the cost of the judge.")
    out.append("")
    rows = []
    compared = [r for r in res["rows"] if r.get("kernel_sandbox_s")]
    for r in res["rows"]:
        p = r["parts"]
        row = [r["lesson"], _s(r["wall_s"], 2), _s(r["startup_s"], 2), _s(r["cells_s"], 2),
               f"{p['first cell (imports, set-up)']['median']:.2f}", f"{p['course cells']['median']:.2f}",
               f"{p['answer cells']['median']:.2f}", f"{p['test cells']['median']:.2f}", ", ".join(r["status"])]
        if compared:
            kernel = r.get("kernel_sandbox_s")
            row += [f"{_s(kernel, 2)} ({', '.join(r.get('kernel_status') or [])})" if kernel else "-"]
        rows.append(row)
    total = sum(r["wall_s"]["median"] for r in res["rows"])
    out.append(_table(["lesson", "total", "start-up", "cells", "first cell", "course cells", "answers", "tests",
                       "result"] + (["tests in the kernel: sandbox s"] if compared else []), rows))
    out.append("")
    if compared:
        judge = sum(r["sandbox_s"]["median"] for r in compared)
        kernel = sum(r["kernel_sandbox_s"]["median"] for r in compared)
        out.append(f"The judge costs **{judge - kernel:+.1f} s** over {len(compared)} lesson(s) "
                   f"({judge:.1f} s with the tests in the judge, {kernel:.1f} s in the kernel: x{judge / kernel:.2f}).")
        out.append("")
    out.append(f"All lessons: {total:.1f} s for one learner's whole course, graded one after the other.")
    out.append("")
    return out


def _hotpaths(res: dict[str, Any] | None, charts: Path, page: Path, gaps: list[list[str]]) -> list[str]:
    out = ["## 4. Cache hot paths", ""]
    if not res:
        return out + ["Not measured.", ""]
    err = _error(res)
    if err:
        gaps.append(["SimpleCache within 1.5x of @cached(TTLCache, lock) per hit", "not measured", "?"])
        return out + [err, ""]
    out.append(f"Nanoseconds per call, median (min-max) over interleaved rounds of {res['ops']:,} calls "
               f"({res['redis_ops']:,} for Redis), the loop's own cost subtracted. Every row is one call `f(key)` "
               "that returns the value (cache-aside: a miss runs a trivial loader and stores the result; no "
               "eviction). Round trips are Redis commands per call, counted by wrapping the client's "
               f"`execute_command`. Real Redis: {res['real_redis']}.")
    out.append("")
    rows = []
    for r in res["rows"]:
        hit = _ns(r["hit_ns"])
        if r.get("direct_hit_ns"):
            hit += f"; `.get()` alone {_ns(r['direct_hit_ns'])}"
        rows.append([r["name"], hit, _ns(r.get("miss_ns")), r.get("round_trips_hit", "-"),
                     r.get("round_trips_miss", "-") if r.get("miss_ns") else "-"])
    out.append(_table(["implementation", "hit (ns)", "miss (ns)", "round trips / hit", "round trips / miss"], rows))
    out.append("")
    ratio_rows = [[k, f"{v['median']:.2f}", f"{v['best']:.2f}"] for k, v in res["ratios"].items()]
    out.append(_table(["per-hit ratio", "median", "best-of"], ratio_rows))
    out.append("")
    main = res["ratios"].get("SimpleCache ex. 2 (cache-aside call) / @cached(TTLCache, lock)")
    if main:
        met = main["median"] <= TARGETS["hot"]
        gaps.append(["reference in-memory TTL cache within 1.5x of @cached(TTLCache, lock=...) per hit",
                     f"{main['median']:.2f}x (lower is faster)", "met" if met else "gap"])
    dec = next((r for r in res["rows"] if r["name"].startswith("lesson 07") and "fakeredis" in r["name"]), None)
    if dec:
        ok = dec["round_trips_hit"] <= TARGETS["trips"]
        gaps.append(["the Redis decorator's hit costs one round trip",
                     f"{dec['round_trips_hit']:g} per hit, {dec['round_trips_miss']:g} per miss",
                     "met" if ok else "gap"])
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    names = [r["name"] for r in res["rows"]]
    hits = [max(r["hit_ns"]["median"], 1) for r in res["rows"]]
    misses = [max(r["miss_ns"]["median"], 1) if r.get("miss_ns") else 0 for r in res["rows"]]
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], hits, 0.4, label="hit", color=_COLORS[0])
    ax.barh([y + 0.2 for y in ys], misses, 0.4, label="miss", color=_COLORS[1])
    ax.set_yticks(list(ys), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("nanoseconds per call (log scale)")
    ax.set_title("Cost of a cache hit and miss")
    ax.legend()
    out.append(_img(page, charts, _save(fig, charts, "hot_paths.png"), "hot paths"))
    out.append("")
    return out


def _stampede(res: dict[str, Any] | None, charts: Path, page: Path) -> list[str]:
    out = ["## 5. Stampede protection and hit ratio", ""]
    if not res:
        return out + ["Not measured.", ""]
    err = _error(res)
    if err:
        return out + [err, ""]
    st = res["stampede"]
    out.append(f"### Database calls under N concurrent misses\n\nN threads released together by a barrier ask for "
               f"the same missing key; the query takes {st['delay_s'] * 1000:g} ms. {st['repeats']} repeat(s), "
               "median (min-max).")
    out.append("")
    rows = [[r["protection"], r["n"], _s(r["db_calls"], 0), _s(r["wall_s"], 3, 1000), r["errors"]] for r in st["rows"]]
    out.append(_table(["protection", "N", "database calls", "all N served (ms)", "errors"], rows))
    out.append("")
    largest = max(r["n"] for r in st["rows"])
    data = {r["protection"]: r["db_calls"]["median"] for r in st["rows"] if r["n"] == largest}
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    bars = ax.barh(list(data), list(data.values()), color=_COLORS[: len(data)])
    ax.bar_label(bars, labels=[f"{v:g}" for v in data.values()])
    ax.invert_yaxis()
    ax.set_xlabel(f"database calls for {largest} concurrent misses")
    ax.set_title("Stampede: database calls per protection")
    ax.tick_params(axis="y", labelsize=8)
    out.append(_img(page, charts, _save(fig, charts, "stampede.png"), "stampede"))
    out.append("")
    hr = res["hit_ratio"]
    out.append(f"### Hit ratio against Belady's optimum\n\nSeeded streams from `course_lib.workloads`, "
               f"{hr['length']:,} requests over {hr['keys']:,} keys, replayed cache-aside through cachetools "
               "caches; the optimum is `optimal_hit_ratio` (Belady). TTL is `TTLCache` whose clock advances one "
               "tick per request.")
    out.append("")
    caps = hr["capacities"]
    for i, (wname, d) in enumerate(hr["workloads"].items()):
        rows = [[p] + [f"{v:.3f}" for v in ys] for p, ys in d["series"].items()]
        rows.append(["**optimal (Belady)**"] + [f"**{v:.3f}**" for v in d["optimal"]])
        out.append(f"**{wname}** (hit ratio by capacity)\n")
        out.append(_table(["policy"] + [str(c) for c in caps], rows))
        out.append("")
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2).flatten()
    for ax, (wname, d) in zip(axes, hr["workloads"].items()):
        for j, (p, ys) in enumerate(d["series"].items()):
            ax.plot(caps, ys, marker="o", label=p, color=_COLORS[j])
        ax.plot(caps, d["optimal"], linestyle="--", color="black", label="optimal (Belady)")
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_title(wname)
        ax.set_xlabel("capacity (entries, log scale)")
        ax.set_ylabel("hit ratio")
    axes[0].legend(fontsize=8)
    out.append(_img(page, charts, _save(fig, charts, "hit_ratio.png"), "hit ratio"))
    out.append("")
    return out


# ---------------------------------------------------------------- the page


def _distributed(res: dict[str, Any] | None) -> list[str]:
    out = ["## 6. Grading on Dask, and grade on submit", ""]
    if not res:
        return out + ["Not measured.", ""]
    err = _error(res)
    if err:
        return out + [err, ""]
    ex, lat = res["executors"], res["latency"]
    out.append(f"`autograde --force` of {ex['submissions']} correct submission(s) of `{ex['lesson']}`: the local pool "
               f"({ex['local_workers']} worker(s)) against `--scheduler` on a loopback dask.distributed cluster of 1 "
               "and 2 `dask worker --nthreads 1` processes. Each Dask task ships both notebooks to its worker; the workers "
               "are started before the timed command, so their start-up is not in the Dask times, while the local pool "
               "starts its processes inside its time (a negative overhead is that start-up).")
    out.append("")
    out.append(_table(["executor", "class, s median (min-max)", "per submission, s"],
                      [[r["executor"], _s(r["wall_s"], 1), _s(r["per_submission_s"], 2)] for r in ex["rows"]]))
    out.append("")
    out.append("Overhead of the distributed path per submission (median Dask - median local, / submissions): "
               + ", ".join(f"{name} {sec:+.2f} s" for name, sec in ex["overhead_per_submission_s"].items()) + ".")
    out.append("")
    out.append(f"`grader serve --release-feedback` ({lat['workers']} local worker(s)): a burst of {lat['burst']} "
               f"submission(s) of `{lat['lesson']}` made at once through nbgrader's exchange; seconds from a submit "
               f"to its feedback released: **median {lat['latency_s']['median']:.1f} s, p95 {lat['p95_s']:.1f} s** "
               f"(min {lat['latency_s']['min']:.1f}, max {lat['latency_s']['max']:.1f}); the whole burst had "
               f"feedback after {lat['all_feedback_after_s']:.1f} s.")
    return out + [""]


def write_report(results: dict[str, Any], page: Path, charts: Path) -> Path:
    s = results["sections"]
    cfg = results["config"]
    m0, m1, v = results["machine_start"], results.get("machine_end", results["machine_start"]), results["versions"]
    gaps: list[list[str]] = []
    body: list[str] = []
    if "grading" in s:
        body += _grading(s["grading"], charts, page, s.get("breakdown"), s.get("lessons"), gaps)
    elif "breakdown" in s:
        body += ["## 1. Grading throughput", "", "Not measured in this run.", ""]
        body += _breakdown(s.get("breakdown"), s.get("lessons"), None, charts, page)
    if "baseline" in s:
        body += _baseline(s["baseline"], gaps)
    if "check" in s:
        body += _check(s["check"])
    if "lessons" in s:
        body += _lessons(s["lessons"], charts, page)
    if "hotpaths" in s:
        body += _hotpaths(s["hotpaths"], charts, page, gaps)
    if "stampede" in s:
        body += _stampede(s["stampede"], charts, page)
    if "distributed" in s:
        body += _distributed(s["distributed"])
    load = lambda m: ", ".join(f"{x:.2f}" for x in m["loadavg"])  # noqa: E731
    head = [
        "# Benchmarks: the course's grader and caches",
        "",
        "Generated by `make bench` (`python -m bench`). These are measurements, not tests: nothing here "
        "asserts. Medians with their spread (min-max) over repeats; ratios come from runs made side by side "
        "in the same invocation.",
        "",
        f"- **Run:** {results['started']}, `{results['command']}`, scale `{cfg['scale']}`, "
        f"{results.get('seconds', 0) / 60:.1f} minutes; git {results['git']}.",
        f"- **Machine:** {m0['cpu_model']}, {m0['cores']} cores ({m0['usable_cores']} usable), {m0['memory']} RAM, "
        f"Linux {m0['kernel']}.",
        f"- **Load average (1, 5, 15 min):** {load(m0)} at the start, {load(m1)} at the end"
        + (" — **the machine was busy with other work: absolute times are inflated and noisy; ratios measured "
           "side by side are more trustworthy**" if max(m0["loadavg"][0], m1["loadavg"][0]) > 0.5 * (m0["cores"] or 1)
           else "") + ".",
        "- **Versions:** " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "- **Scale:** " + (f"throughput class {cfg['learners']} learner(s) x "
                           f"{', '.join(cfg['lessons']) if cfg['lessons'] else 'every lesson'}; cost per learner at "
                           f"{cfg['scaling_sizes']} x {cfg['scaling_factor']:g} learners of `{cfg['scaling_lesson']}`; "
                           f"{cfg['workers']} worker(s); {cfg['repeats']} repeat(s) of cheap measurements, "
                           f"{cfg.get('lesson_repeats', cfg['repeats'])} of each solution notebook run, "
                           f"{cfg['grading_repeats']} of each class grading run; hot paths {cfg['hot_ops']:,} calls "
                           f"per timing; stampede N = {cfg['stampede_sizes']}; hit-ratio traces of "
                           f"{cfg['trace_length']:,} requests."),
        "- **Rerun:** `make bench` (full scale, about 15 minutes on 2 quiet cores), or "
        "`python -m bench --scale small` (minutes); `python -m bench --help` lists the options "
        "(`--learners`, `--scaling-factor`, `--sections`, `--grading-repeats`, `--no-nbgrader`, ...). "
        "Raw numbers: `bench/report/results.json`; `python -m bench --from-json bench/report/results.json` "
        "rewrites this page from them.",
        "",
        "Section durations: " + ", ".join(f"{k} {sec:.0f} s (load {results['section_load'][k][0]:.1f}->"
                                          f"{results['section_load'][k][1]:.1f})"
                                          for k, sec in results["section_seconds"].items()) + ".",
        "",
        "## Targets",
        "",
        _table(["target", "measured", "status"], gaps) if gaps else "No target was measured in this run.",
        "",
    ]
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(head + body).rstrip() + "\n", encoding="utf-8")
    return page
