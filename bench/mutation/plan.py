"""What to grade: each exercise's mutants, which exercises may share one grading run, and the results cache.

Mutants of exercises that cannot see each other's names are graded together, one per exercise in one
notebook (an exercise's result depends only on its own answer then), so a lesson of five independent
exercises needs a fifth of the runs. An exercise whose test or answer uses another exercise's names (or a
course cell that uses them) is never batched with it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.grading.assemble import bound_names
from grader.course.cells import cell_text, grade_id, is_answer, is_tests, read_notebook

from .mutate import Mutant, mutants_of, reference_of

__all__ = ["ExercisePlan", "LessonPlan", "plan_lesson", "Cache", "equivalents", "EQUIVALENT_PATH", "CACHE_PATH"]

HERE = Path(__file__).resolve().parent
CACHE_PATH = HERE / "results.json"
EQUIVALENT_PATH = HERE / "equivalent.toml"


@dataclass
class ExercisePlan:
    id: str
    tests_hash: str  # a mutant's cached result holds while the exercise's test cell is unchanged
    mutants: list[Mutant]  # every distinct mutant
    chosen: list[Mutant]  # the ones graded (all of them, or a sample when a cap is given)
    reference: Mutant  # the answer unmutated, written as the mutants are (it must get full marks)


@dataclass
class LessonPlan:
    slug: str
    source: Path
    release: Path
    exercises: list[ExercisePlan]
    groups: list[list[str]] = field(default_factory=list)  # exercises whose mutants share a run

    def exercise(self, exercise_id: str) -> ExercisePlan:
        return next(e for e in self.exercises if e.id == exercise_id)


def _loaded(source: str, *, free: bool = False) -> set[str]:
    """Names a cell reads, and the strings it mentions (``check.defined("SimpleCache")`` reads a name too).

    ``free``: only names it never binds itself (assignments, loop variables, parameters, definitions).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    nodes = list(ast.walk(tree))
    read = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if not free:
        return read | {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    own = {n.id for n in nodes if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    own |= {n.arg for n in nodes if isinstance(n, ast.arg)}
    own |= {n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return read - own


def _judge_names(cell: Any) -> set[str]:
    """Names a course cell binds in the judge too: all of the setup cell's, and others' imports, functions
    and classes (a demonstration's other statements run only in the learner's kernel)."""
    if grade_id(cell) == "setup":
        return bound_names(cell_text(cell))
    try:
        body = ast.parse(cell_text(cell)).body
    except SyntaxError:
        return set()
    kept = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
    return bound_names(ast.unparse(ast.Module(body=kept, type_ignores=[])))


def _depends(cells: list[Any]) -> dict[str, set[str]]:
    """For each exercise, the other exercises whose names its test cell or answer reaches: a name (or the
    string of a name) their answers bind, or a free name a demonstration binds from their answers."""
    answers = {grade_id(c): cell_text(c) for c in cells if is_answer(c)}
    tests = {grade_id(c)[: -len("-tests")]: cell_text(c) for c in cells if is_tests(c)}
    course = [c for c in cells if c.cell_type == "code" and not is_answer(c) and not is_tests(c)]
    judge = set().union(*(_judge_names(c) for c in course))
    names = {ex: bound_names(code) for ex, code in answers.items()}
    carried = {ex: set().union(*(bound_names(cell_text(c)) for c in course if _loaded(cell_text(c)) & names[ex]))
               - judge - names[ex] for ex in answers}
    depends = {}
    for ex in answers:
        direct = _loaded(tests.get(ex, "")) | _loaded(answers[ex])
        free = _loaded(tests.get(ex, ""), free=True) | _loaded(answers[ex], free=True)
        depends[ex] = {o for o in answers if o != ex and (direct & names[o] or free & carried[o])}
    return depends


def _groups(order: list[str], depends: dict[str, set[str]]) -> list[list[str]]:
    groups: list[list[str]] = []
    for ex in order:
        for group in groups:
            if not any(ex in depends[g] or g in depends[ex] for g in group):
                group.append(ex)
                break
        else:
            groups.append([ex])
    return groups


def _sample(mutants: list[Mutant], cap: int | None, seed: str) -> list[Mutant]:
    """All mutants, or ``cap`` of them spread over the operators (seeded, so every run picks the same)."""
    if cap is None or len(mutants) <= cap:
        return list(mutants)
    rng = random.Random(seed)
    by_op: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_op.setdefault(m.operator, []).append(m)
    for group in by_op.values():
        rng.shuffle(group)
    chosen: list[Mutant] = []
    while len(chosen) < cap:
        for group in by_op.values():
            if group and len(chosen) < cap:
                chosen.append(group.pop())
    return sorted(chosen, key=lambda m: m.line)


def plan_lesson(lesson: Any, root: Path, *, cap: int | None = None, only: set[str] | None = None) -> LessonPlan:
    """The mutants of every exercise of ``lesson`` (or of the exercises in ``only``)."""
    source = lesson.source_path(root)
    nb = read_notebook(source)
    tests = {grade_id(c): cell_text(c) for c in nb.cells if is_tests(c)}
    exercises = []
    for cell in nb.cells:
        ex = grade_id(cell)
        if not is_answer(cell) or (only and ex not in only):
            continue
        found = mutants_of(ex, cell_text(cell))
        digest = hashlib.sha256(tests.get(f"{ex}-tests", "").encode()).hexdigest()[:16]
        exercises.append(ExercisePlan(ex, digest, found, _sample(found, cap, ex), reference_of(ex, cell_text(cell))))
    plan = LessonPlan(lesson.slug, source, lesson.release_path(root), exercises)
    plan.groups = _groups([e.id for e in exercises], _depends(nb.cells))
    return plan


class Cache:
    """Graded mutants by key, in a JSON file written after every result (so a stopped run resumes)."""

    def __init__(self, path: Path = CACHE_PATH) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, mutant: Mutant, tests_hash: str) -> dict[str, Any] | None:
        entry = self.entries.get(mutant.key)
        return entry if entry and entry.get("tests") == tests_hash else None

    def put(self, mutant: Mutant, tests_hash: str, lesson: str, outcome: str, status: str, message: str) -> None:
        self.entries[mutant.key] = {"lesson": lesson, "exercise": mutant.exercise, "operator": mutant.operator,
                                    "line": mutant.line, "description": mutant.description, "tests": tests_hash,
                                    "outcome": outcome, "status": status, "message": message[:300]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


KINDS = ("equivalent", "outside the interface", "taught, not graded")


def equivalents(path: Path = EQUIVALENT_PATH) -> dict[str, str]:
    """{mutant key: "<kind>: why"} from the checked-in list; kind is one of KINDS (default "equivalent")."""
    if not path.is_file():
        return {}
    rows = tomllib.loads(path.read_text()).get("mutant", [])
    for row in rows:
        if row.get("kind", "equivalent") not in KINDS or not row.get("reason") or not row.get("key"):
            raise ValueError(f"{path}: the entry {row!r} needs a key, a reason and a kind among {KINDS}")
    return {row["key"]: f"{row.get('kind', 'equivalent')}: {row['reason']}" for row in rows}
