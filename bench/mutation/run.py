"""Grade mutants through the real grader (``grade_notebook``, sandbox and judge included), in parallel.

A mutant is **killed** when its exercise does not get its points (failed, timed out, crashed), and
**survives** when the exercise passes. A run holding several mutants (one per independent exercise) is
trusted as it is unless one of them timed out, crashed or did not run: then only its passes are kept, and
the other mutants are graded again, each on its own, where any lost point is its own doing.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from grader.grading.grade import grade_notebook
from grader.grading.result import SCORED
from grader.sandbox.protocol import Limits
from grader.course.synthetic import write_submission

from .mutate import Mutant
from .plan import Cache, LessonPlan

__all__ = ["grade_batch", "run_lesson", "reference_problems", "MUTANT_LIMITS"]

MUTANT_LIMITS = Limits(cell_timeout=30, notebook_timeout=300)  # a deadlocked mutant costs 30 s, not 60
_SETTLED = ("passed", "failed")


def grade_batch(source: str, release: str, answers: dict[str, str], redis_backend: str) -> dict[str, Any]:
    """Grade the solution with ``answers`` replacing some answer cells; the status of every exercise."""
    limits = Limits(cell_timeout=MUTANT_LIMITS.cell_timeout, notebook_timeout=MUTANT_LIMITS.notebook_timeout,
                    redis_backend=redis_backend)
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        submission = write_submission(Path(source), Path(release), Path(tmp) / Path(source).name, answers)
        t0 = time.perf_counter()
        result = grade_notebook(source, submission, limits=limits)
    return {"status": result.status, "seconds": time.perf_counter() - t0,
            "exercises": {e.id: (e.status, e.message) for e in result.exercises}}


def _batches(plan: LessonPlan, pending: dict[str, list[Mutant]]) -> list[dict[str, Mutant]]:
    batches = []
    for group in plan.groups:
        rounds = max((len(pending.get(ex, [])) for ex in group), default=0)
        for k in range(rounds):
            batch = {ex: pending[ex][k] for ex in group if k < len(pending.get(ex, []))}
            if batch:
                batches.append(batch)
    return batches


def reference_problems(plan: LessonPlan, cache: Cache, redis_backend: str = "auto") -> list[str]:
    """The exercises whose unmutated reference, as the mutator writes it (``ast.unparse``), loses points:
    a mutant of those would be 'killed' for nothing, so they are not mutated."""
    references = [e.reference for e in plan.exercises]
    pending = [m for m, e in zip(references, plan.exercises) if cache.get(m, e.tests_hash) is None]
    if pending:
        result = grade_batch(str(plan.source), str(plan.release), {m.exercise: m.code for m in pending},
                             redis_backend)
        for m in pending:
            status, message = result["exercises"].get(m.exercise, ("not_run", result["status"]))
            cache.put(m, plan.exercise(m.exercise).tests_hash, plan.slug,
                      "survived" if status == "passed" else "killed", status, message)
    return [e.id for e in plan.exercises if cache.get(e.reference, e.tests_hash)["outcome"] != "survived"]


def run_lesson(plan: LessonPlan, cache: Cache, *, jobs: int = 1, redis_backend: str = "auto",
               log: Callable[[str], None] = print) -> None:
    """Grade every chosen mutant of ``plan`` that the cache does not hold yet (resumable)."""
    broken = reference_problems(plan, cache, redis_backend)
    if broken:
        log(f"{plan.slug}: the unparsed reference of {broken} does not get full marks; those are not mutated")
    pending = {e.id: [m for m in e.chosen if cache.get(m, e.tests_hash) is None] for e in plan.exercises
               if e.id not in broken}
    total = sum(len(v) for v in pending.values())
    if not total:
        log(f"{plan.slug}: every chosen mutant is already graded")
        return
    log(f"{plan.slug}: {total} mutant(s) to grade, exercises grouped {plan.groups}, {jobs} job(s)")
    queue = _batches(plan, pending)
    done = 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        running: dict[Any, dict[str, Mutant]] = {}
        while queue or running:
            while queue and len(running) < max(1, jobs):
                batch = queue.pop(0)
                answers = {ex: m.code for ex, m in batch.items()}
                running[pool.submit(grade_batch, str(plan.source), str(plan.release), answers, redis_backend)] = batch
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                batch = running.pop(future)
                result = future.result()
                outcomes = {ex: result["exercises"].get(ex, ("not_run", result["status"])) for ex in batch}
                # a mutant that hung or crashed its notebook may have failed the others' tests too: only a pass
                # is trusted then, and the rest are graded again, each on its own
                disturbed = result["status"] not in SCORED or any(
                    status not in _SETTLED for status, _ in outcomes.values())
                for ex, mutant in batch.items():
                    status, message = outcomes[ex]
                    if len(batch) > 1 and disturbed and status != "passed":
                        queue.append({ex: mutant})
                        continue
                    outcome = "survived" if status == "passed" else "killed"
                    cache.put(mutant, plan.exercise(ex).tests_hash, plan.slug, outcome, status, message)
                    done += 1
                    if outcome == "survived":
                        log(f"  survived {mutant.key} {ex} line {mutant.line} {mutant.operator}: {mutant.description}")
                log(f"{plan.slug}: {done}/{total} graded ({result['seconds']:.1f} s for {len(batch)} mutant(s))")
