"""bench.mutation: the mutator changes only solution regions, one thing at a time; the plan batches only
independent exercises; the cache is keyed by mutant and test cell; one lesson's mutants grade end to end."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench.mutation.mutate import mutants_of, reference_of, solution_regions
from bench.mutation.plan import Cache, _groups, _sample, equivalents, plan_lesson
from bench.mutation.report import exercise_rows, write_report
from course_lib.manifest import COURSE_ROOT, load_course

CELL = '''import threading


class Counter:
    """Counts."""

    def __init__(self):
        ### BEGIN SOLUTION
        self._lock = threading.Lock()
        self.n = int("0", base=10)
        ### END SOLUTION

    def add(self, k=1):
        """Add k."""
        ### BEGIN SOLUTION
        with self._lock:
            if k < 0 and not self.n:
                raise ValueError(k)
            try:
                self.n += k
            finally:
                pass
        ### END SOLUTION
'''


def test_solution_regions_match_what_the_grader_fills_in():
    code, inside = solution_regions(CELL)
    assert "### " not in code
    lines = code.splitlines()
    assert {lines[i - 1].strip() for i in inside} >= {"self._lock = threading.Lock()", "with self._lock:"}
    assert not any(lines[i - 1].strip().startswith(("def ", "class ", '"""')) for i in inside)


def test_every_operator_makes_one_change_inside_the_regions_only():
    found = mutants_of("counter", CELL)
    operators = {m.operator for m in found}
    assert operators >= {"remove-with", "remove-try", "drop-statement", "flip-compare", "compare-boundary",
                         "swap-boolean", "remove-not", "swap-arithmetic", "swap-constant", "change-argument"}
    original = ast.unparse(ast.parse(solution_regions(CELL)[0]))
    for m in found:
        assert m.code != original + "\n"
        ast.parse(m.code)  # every mutant is valid Python
        assert '"""Counts."""' in m.code and '"""Add k."""' in m.code  # docstrings and signatures untouched
        assert "def add(self, k=1):" in m.code and "import threading" in m.code
    assert len({m.code for m in found}) == len(found) and len({m.key for m in found}) == len(found)
    unlocked = next(m for m in found if m.operator == "remove-with")
    assert "with self._lock" not in unlocked.code and "self.n += k" in unlocked.code
    assert reference_of("counter", CELL).code == original + "\n"


def test_groups_keep_dependent_exercises_apart():
    assert _groups(["a", "b", "c"], {"a": set(), "b": {"a"}, "c": set()}) == [["a", "c"], ["b"]]


def test_sample_is_seeded_and_spreads_over_operators():
    found = mutants_of("counter", CELL)
    first, again = _sample(found, 5, "counter"), _sample(found, 5, "counter")
    assert first == again and len(first) == 5 and len({m.operator for m in first}) == 5
    assert _sample(found, None, "counter") == found


def test_capstone_exercises_that_extend_one_class_never_share_a_run():
    plan = plan_lesson(load_course().lesson("10"), COURSE_ROOT, cap=1)
    assert all(len(group) == 1 for group in plan.groups), plan.groups


def test_cache_holds_a_result_only_while_the_test_cell_is_unchanged(tmp_path):
    cache = Cache(tmp_path / "results.json")
    mutant = mutants_of("counter", CELL)[0]
    cache.put(mutant, "tests-v1", "99-demo", "killed", "failed", "AssertionError: ...")
    reloaded = Cache(tmp_path / "results.json")
    assert reloaded.get(mutant, "tests-v1")["outcome"] == "killed"
    assert reloaded.get(mutant, "tests-v2") is None


def test_report_counts_equivalents_apart_and_says_what_is_not_measured(tmp_path):
    plan = plan_lesson(load_course().lesson("01"), COURSE_ROOT, cap=3)
    cache = Cache(tmp_path / "results.json")
    ex = plan.exercises[0]
    outcomes = ["killed", "survived", "survived"]
    for m, outcome in zip(ex.chosen, outcomes):
        cache.put(m, ex.tests_hash, plan.slug, outcome, "passed" if outcome == "survived" else "failed", "")
    equivalent = {ex.chosen[2].key: "demo reason"}
    row = exercise_rows([plan], cache, equivalent)[0]
    assert (row["graded"], row["killed"], len(row["surviving"]), len(row["equivalent"])) == (3, 1, 1, 1)
    assert row["score"] == 0.5
    text = write_report([plan], cache, equivalent, "python -m bench.mutation", tmp_path / "MUTATION.md")
    assert "demo reason" in text and ex.chosen[1].key in text and "not measured (0/3 graded)" in text


def test_checked_in_equivalents_name_a_reason():
    assert all(reason.strip() for reason in equivalents().values())


def test_an_unknown_kind_of_recorded_survivor_is_refused(tmp_path):
    listed = tmp_path / "equivalent.toml"
    listed.write_text('[[mutant]]\nkey = "abc"\nkind = "probably fine"\nreason = "looks harmless"\n')
    with pytest.raises(ValueError, match="kind among"):
        equivalents(listed)
    listed.write_text('[[mutant]]\nkey = "abc"\nkind = "taught, not graded"\nreason = "the lesson says so"\n')
    assert equivalents(listed) == {"abc": "taught, not graded: the lesson says so"}


@pytest.mark.slow
def test_mutants_of_one_exercise_are_graded_through_the_grader(tmp_path):
    from bench.mutation.run import run_lesson

    plan = plan_lesson(load_course().lesson("01"), COURSE_ROOT, cap=2, only={"cache-aside-read"})
    cache = Cache(tmp_path / "results.json")
    log: list[str] = []
    run_lesson(plan, cache, jobs=1, log=log.append)
    ex = plan.exercises[0]
    assert cache.get(ex.reference, ex.tests_hash)["outcome"] == "survived", log  # the unparsed reference passes
    assert all(cache.get(m, ex.tests_hash) is not None for m in ex.chosen), log
    run_lesson(plan, cache, jobs=1, log=log.append)
    assert log[-1].endswith("already graded"), log
