"""Section 1: grading throughput against plain ``nbgrader autograde``, and how cost grows with class size.

Both graders get the same synthetic class in two identical temporary course
folders (``nbgrader generate_assignment`` with the gradebook, submissions in
``submitted/<student>/<lesson>/``). Each lesson is graded by one command,
``python -m grader autograde <lesson> --force`` (the course's grader, sandbox
on, ``--workers`` = cores) and ``nbgrader autograde <lesson> --force``
(serial: nbgrader has no parallel mode), the two interleaved lesson by lesson
and their order alternated between repeats, so both see the same machine load.
Beside them, ``ours-class`` grades the whole class with one command,
``python -m grader autograde <every lesson> --force``: one queue over all the
lessons. Each of our runs starts without the lessons' stored reference results, so
each pays for grading the reference solutions as a first run after a change does.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from grader.classroom.demo import copy_course
from grader.grading.result import SCORED
from grader.course.cells import STUB, read_notebook
from grader.course.synthetic import solution_answers, with_answers

from .common import PYTHON, ROOT, Config, log, run_timed, summary, venv_env

# what the synthetic learners hand in: 6 in 10 correct, 3 partial (half the answers stubbed), 1 blank
KINDS = ("correct", "partial", "correct", "correct", "partial", "blank", "correct", "partial", "correct", "correct")
# flags that would turn the grader's protections off, if the sandbox work adds one
OFF_SWITCHES = ("--no-sandbox", "--no-isolation", "--unsafe", "--no-protections", "--insecure")


def available_lessons(course: Path, wanted: list[str]) -> list[Any]:
    from grader.course.layout import load

    lessons = [l for l in load(course).lessons
               if l.source_path(course).is_file() and l.release_path(course).is_file()]
    if wanted:
        chosen = [l for l in lessons if l.slug in wanted or l.slug.split("-")[0] in wanted]
        missing = set(wanted) - {l.slug for l in chosen} - {l.slug.split("-")[0] for l in chosen}
        if missing:
            raise SystemExit(f"bench: no lesson(s) {sorted(missing)} with a solution and a release in {course}")
        return chosen
    return lessons


def prepare_course(src: Path, dest: Path, lessons: list[Any]) -> Path:
    """A course folder with the lessons, its nbgrader config and a gradebook that knows them."""
    copy_course(src, dest, lessons)
    # one command for every lesson copied ('*' is a glob over solutions/)
    run_timed([PYTHON, "-m", "nbgrader", "generate_assignment", "*", "--force", f"--CourseDirectory.root={dest}"],
              cwd=dest, env=venv_env())
    return dest


def submission_nb(lesson: Any, course: Path, kind: str, index: int) -> Any:
    release = read_notebook(lesson.release_path(course))
    answers = solution_answers(read_notebook(lesson.source_path(course)))
    if kind == "blank":
        return release
    if kind == "partial":
        ids = sorted(answers)
        for gid in ids[index % 2::2] or ids[:1]:  # every other answer stubbed
            answers[gid] = STUB
    return with_answers(release, answers)


def add_class(course: Path, lessons: list[Any], learners: int, *, offset: int = 0) -> list[str]:
    students = []
    for i in range(offset, offset + learners):
        student = f"learner{i + 1:03d}"
        students.append(student)
        kind = KINDS[i % len(KINDS)]
        for lesson in lessons:
            folder = course / "submitted" / student / lesson.slug
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(submission_nb(lesson, course, kind, i), folder / lesson.notebook)
            (folder / "timestamp.txt").write_text("2026-11-20 12:00:00.000000 UTC", encoding="utf-8")
    return students


def off_switch() -> str | None:
    """How to turn the grader's protections off, if it can: a command-line flag, else a ``Limits`` field."""
    help_text = run_timed([PYTHON, "-m", "grader", "autograde", "--help"], env=venv_env(), check=False)["out"]
    if "--isolation" in help_text:
        return "--isolation=off"
    flag = next((flag for flag in OFF_SWITCHES if flag in help_text), None)
    if flag:
        return flag
    import dataclasses

    from grader.sandbox.protocol import Limits

    if any(f.name == "isolation" for f in dataclasses.fields(Limits)):
        return "api:isolation=off"
    return None


def grade_ours(course: Path, slug: str, workers: int, switch: str | None = None) -> dict[str, Any]:
    if switch and switch.startswith("api:"):
        name, value = switch[4:].split("=", 1)
        cmd = [PYTHON, "-m", "bench.autograde_api", str(course), slug, str(workers), json.dumps({name: value})]
        res = run_timed(cmd, cwd=course, env=venv_env(PYTHONPATH=str(ROOT)))
    else:
        cmd = [PYTHON, "-m", "grader", "--course", str(course), "autograde", slug, "--force", "--quiet",
               "--workers", str(workers), *([switch] if switch else [])]
        res = run_timed(cmd, cwd=course, env=venv_env())
    inner = re.search(r"([\d.]+) s with (\d+) worker", res["out"])
    res["inner"] = float(inner.group(1)) if inner else None
    return res


def grade_ours_class(course: Path, slugs: list[str], workers: int) -> dict[str, Any]:
    """The whole class in one command: one queue over every lesson."""
    cmd = [PYTHON, "-m", "grader", "--course", str(course), "autograde", *slugs, "--force", "--quiet",
           "--workers", str(workers)]
    return run_timed(cmd, cwd=course, env=venv_env())


def forget_references(course: Path) -> None:
    """Remove the stored reference results, so the next run grades the reference solutions again."""
    for path in (course / "grader-results").glob("*/.reference.json"):
        path.unlink()


def nbgrader_kernel_env() -> dict[str, str]:
    """What the notebooks see under nbgrader: the same latency scale and plotting backend as under our grader
    (the kernel inherits nbgrader's environment), so both run the same amount of simulated work."""
    from grader.grading.result import GRADING_LATENCY_SCALE

    return venv_env(COURSE_LATENCY_SCALE=repr(GRADING_LATENCY_SCALE), MPLBACKEND="Agg", PYTHONHASHSEED="0")


def grade_nbgrader(course: Path, slug: str) -> dict[str, Any]:
    cmd = [PYTHON, "-m", "nbgrader", "autograde", slug, "--force", "--create", f"--CourseDirectory.root={course}"]
    return run_timed(cmd, cwd=course, env=nbgrader_kernel_env())


def results_ours(course: Path, slug: str) -> dict[str, dict[str, Any]]:
    """student -> status, score, sandbox seconds and detail, from the grader's stored results."""
    out = {}
    for path in (course / "grader-results" / slug).glob("*.json"):
        if path.name.startswith("."):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        result = data["result"]
        out[data["student"]] = {"status": result["status"], "seconds": result["seconds"],
                                "score": sum(e["score"] for e in result["exercises"]),
                                "detail": result.get("detail", "")[:300]}
    return out


def scores_nbgrader(course: Path, slug: str, students: list[str]) -> dict[str, float]:
    from nbgrader.api import Gradebook, MissingEntry

    from grader.course.layout import course_id

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id(course)) as gb:
        for student in students:
            try:
                out[student] = gb.find_submission(slug, student).score
            except MissingEntry:
                pass
    return out


def throughput(cfg: Config, tmp: Path) -> dict[str, Any]:
    lessons = available_lessons(cfg.course, cfg.lessons)
    log(f"throughput: preparing {cfg.learners} learners x {len(lessons)} lessons")
    ours_dir = prepare_course(cfg.course, tmp / "ours", lessons)
    students = add_class(ours_dir, lessons, cfg.learners)
    nbg_dir = tmp / "nbgrader"
    shutil.copytree(ours_dir, nbg_dir)
    switch = off_switch()
    variants = ["ours"] + (["ours-off"] if switch else []) + (["nbgrader"] if cfg.nbgrader else []) + ["ours-class"]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}  # one entry per repeat: totals
    per_lesson: dict[str, dict[str, list[float]]] = {l.slug: {v: [] for v in variants if v != "ours-class"}
                                                      for l in lessons}
    graded: dict[str, dict[str, dict[str, Any]]] = {v: {} for v in variants}  # last run: lesson -> student -> result
    statuses: dict[str, dict[str, int]] = {v: {} for v in variants}
    problems: dict[str, list[str]] = {v: [] for v in variants}
    off_error = None
    for rep in range(cfg.grading_repeats):
        totals = {v: {"wall": 0.0, "cpu": 0.0} for v in variants}
        if rep % 2 == 1:  # the whole class in one command: before the lesson-by-lesson runs every other repeat
            _class_run(ours_dir, lessons, cfg.workers, totals, statuses, problems, rep, graded["ours-class"])
        for lesson in lessons:
            order = [v for v in variants if v != "ours-class"]
            order = order if rep % 2 == 0 else list(reversed(order))
            for v in order:
                if v == "ours-off" and off_error:
                    continue
                if v in ("ours", "ours-off"):
                    forget_references(ours_dir)
                    try:
                        res = grade_ours(ours_dir, lesson.slug, cfg.workers, switch if v == "ours-off" else None)
                    except RuntimeError as exc:
                        if v == "ours":
                            raise
                        off_error = str(exc)[-600:]  # the switch broke: report it, keep measuring the rest
                        log(f"throughput: protections-off variant dropped: {off_error[:200]}")
                        continue
                    got = results_ours(ours_dir, lesson.slug)
                    graded[v][lesson.slug] = got
                    for r in got.values():
                        statuses[v][r["status"]] = statuses[v].get(r["status"], 0) + 1
                        if r["status"] not in SCORED and len(problems[v]) < 6:
                            problems[v].append(f"{lesson.slug}: {r['status']}: {r['detail']}")
                else:
                    res = grade_nbgrader(nbg_dir, lesson.slug)
                totals[v]["wall"] += res["wall"]
                totals[v]["cpu"] += res["cpu"]
                per_lesson[lesson.slug][v].append(res["wall"] / len(students))
                log(f"throughput: repeat {rep + 1}, {lesson.slug}, {v}: {res['wall']:.1f} s")
        if rep % 2 == 0:
            _class_run(ours_dir, lessons, cfg.workers, totals, statuses, problems, rep, graded["ours-class"])
        for v in variants:
            runs[v].append(totals[v])
    if off_error:
        variants.remove("ours-off")
        for d in per_lesson.values():
            d.pop("ours-off", None)
    n = len(students) * len(lessons)
    out: dict[str, Any] = {"learners": len(students), "lessons": [l.slug for l in lessons], "submissions": n,
                           "workers": cfg.workers, "repeats": cfg.grading_repeats, "off_switch": switch,
                           "off_error": off_error,
                           "variants": {}, "per_lesson": {}}
    for v in variants:
        out["variants"][v] = {"wall_s": summary([r["wall"] for r in runs[v]]),
                              "cpu_s": summary([r["cpu"] for r in runs[v]]),
                              "per_submission_s": summary([r["wall"] / n for r in runs[v]]),
                              "cpu_per_submission_s": summary([r["cpu"] / n for r in runs[v]])}
    for slug, d in per_lesson.items():
        out["per_lesson"][slug] = {v: statistics.median(vals) for v, vals in d.items()}
    if "nbgrader" in variants:
        ratios = [nb["wall"] / ours["wall"] for nb, ours in zip(runs["nbgrader"], runs["ours"])]
        out["speedup"] = summary(ratios)
        out["speedup_class"] = summary([nb["wall"] / ours["wall"] for nb, ours in zip(runs["nbgrader"],
                                                                                     runs["ours-class"])])
        out["cpu_ratio"] = summary([nb["cpu"] / ours["cpu"] for nb, ours in zip(runs["nbgrader"], runs["ours"])])
        agree, total, diffs = 0, 0, []
        for lesson in lessons:
            a = {k: r["score"] for k, r in graded["ours"].get(lesson.slug, {}).items()}
            b = scores_nbgrader(nbg_dir, lesson.slug, students)
            for s in students:
                total += 1
                if s in a and s in b and abs(a[s] - b[s]) < 1e-6:
                    agree += 1
                elif len(diffs) < 8:
                    diffs.append(f"{lesson.slug}/{s}: ours {a.get(s)} nbgrader {b.get(s)}")
        out["score_agreement"] = {"agree": agree, "total": total, "examples": diffs}
        out["class_score_agreement"] = sum(
            1 for lesson in lessons for s, r in graded["ours-class"].get(lesson.slug, {}).items()
            if abs(r["score"] - graded["ours"].get(lesson.slug, {}).get(s, {}).get("score", -1)) < 1e-6)
    out["statuses"] = statuses
    out["problems"] = problems
    seconds = [r["seconds"] for l in graded["ours"].values() for r in l.values() if r["status"] == "graded"]
    out["sandbox_seconds"] = summary(seconds) if seconds else None
    return out


def _class_run(course: Path, lessons: list[Any], workers: int, totals: dict[str, dict[str, float]],
               statuses: dict[str, dict[str, int]], problems: dict[str, list[str]], rep: int,
               graded: dict[str, dict[str, Any]]) -> None:
    forget_references(course)
    res = grade_ours_class(course, [l.slug for l in lessons], workers)
    totals["ours-class"]["wall"] += res["wall"]
    totals["ours-class"]["cpu"] += res["cpu"]
    for lesson in lessons:
        graded[lesson.slug] = results_ours(course, lesson.slug)
        for r in graded[lesson.slug].values():
            statuses["ours-class"][r["status"]] = statuses["ours-class"].get(r["status"], 0) + 1
            if r["status"] not in SCORED and len(problems["ours-class"]) < 6:
                problems["ours-class"].append(f"{lesson.slug}: {r['status']}: {r['detail']}")
    log(f"throughput: repeat {rep + 1}, whole class in one command: {res['wall']:.1f} s")


def scaling(cfg: Config, tmp: Path) -> dict[str, Any]:
    lesson = available_lessons(cfg.course, [cfg.scaling_lesson])[0]
    base = prepare_course(cfg.course, tmp / "scaling-base", [lesson])
    rows = []
    for size in cfg.scaled_sizes():
        folder = tmp / f"scaling-{size}"
        shutil.copytree(base, folder)
        add_class(folder, [lesson], size)
        walls, cpus, inner = [], [], []
        reps = cfg.grading_repeats if size * cfg.grading_repeats <= 60 else 1
        for _ in range(reps):
            res = grade_ours(folder, lesson.slug, cfg.workers)
            walls.append(res["wall"])
            cpus.append(res["cpu"])
            if res["inner"] is not None:
                inner.append(res["inner"])
        got = results_ours(folder, lesson.slug)
        secs = [r["seconds"] for r in got.values() if r["status"] == "graded"]
        counts: dict[str, int] = {}
        for r in got.values():
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        rows.append({"statuses": counts, "learners": size, "wall_s": summary(walls), "cpu_s": summary(cpus),
                     "per_learner_s": summary([w / size for w in walls]),
                     "cpu_per_learner_s": summary([c / size for c in cpus]),
                     "grading_per_learner_s": summary([i / size for i in inner]) if inner else None,
                     "sandbox_s": summary(secs) if secs else None})
        log(f"scaling: {size} learners of {lesson.slug}: {statistics.median(walls):.1f} s")
        shutil.rmtree(folder, ignore_errors=True)
    return {"lesson": lesson.slug, "requested": cfg.scaling_sizes, "factor": cfg.scaling_factor,
            "workers": cfg.workers, "rows": rows}


def run(cfg: Config) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        out = {"throughput": throughput(cfg, Path(tmp))}
        out["scaling"] = scaling(cfg, Path(tmp))
    return out
