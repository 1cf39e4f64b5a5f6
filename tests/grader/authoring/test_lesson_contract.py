"""The lesson test contract's own rules, without grading: how BUGS and OTHER_DESIGNS become grading runs."""

from __future__ import annotations

import pytest

from grader.authoring.lesson_contract import Bug, LessonContract, variant

READ, MATH = "cache-aside-read", "hit-ratio-math"  # the exercises of lesson 01 in the manifest


class _Lesson01(LessonContract):
    LESSON = "01"
    BUGS = {READ: {"r1": "R1", "r2": Bug("R2", says="the message")}, MATH: {"m1": "M1", "m2": "M2", "m3": "M3"}}
    OTHER_DESIGNS = {READ: {"d1": "D1"}, MATH: {"e1": "E1", "e2": "E2"}}


def test_each_bug_is_graded_alone_by_default():
    runs = _Lesson01.bug_runs()
    assert [test_id for test_id, _ in runs] == ["01-why-cache:cache-aside-read:r1", "01-why-cache:cache-aside-read:r2",
                                                "01-why-cache:hit-ratio-math:m1", "01-why-cache:hit-ratio-math:m2",
                                                "01-why-cache:hit-ratio-math:m3"]
    assert runs[1][1] == {READ: ("r2", Bug("R2", says=("the message",)))}


def test_grade_together_puts_the_kth_bug_of_every_exercise_in_run_k():
    class Together(_Lesson01):
        GRADE_TOGETHER = True

    runs = Together.bug_runs()
    assert [test_id for test_id, _ in runs] == ["01-why-cache:r1+m1", "01-why-cache:r2+m2", "01-why-cache:m3"]
    assert {ex: bug.code for ex, (_, bug) in runs[2][1].items()} == {MATH: "M3"}


def test_the_kth_design_of_every_exercise_is_graded_in_one_run():
    assert _Lesson01.design_runs() == [("01-why-cache:d1+e1", {READ: "D1", MATH: "E1"}),
                                       ("01-why-cache:e2", {MATH: "E2"})]


def test_a_bug_that_may_cost_another_exercise_cannot_share_its_run_with_a_bug_of_it():
    class Clash(_Lesson01):
        GRADE_TOGETHER = True
        BUGS = {READ: {"r1": Bug("R1", may_cost=(MATH,))}, MATH: {"m1": "M1"}}

    with pytest.raises(ValueError, match="'r1' may cost hit-ratio-math, which has a bug of its own in the same run"):
        Clash.bug_runs()


def test_a_bug_is_code_or_a_bug():
    class Old(_Lesson01):
        BUGS = {READ: {"r1": ("R1", "the message")}}

    with pytest.raises(TypeError, match="bug 'r1': give the answer cell's code or a Bug"):
        Old.bug_runs()


def test_the_completeness_test_names_each_exercise_short_of_bugs_or_designs():
    class Short(_Lesson01):
        OTHER_DESIGNS = {MATH: {"e1": "E1"}, "no-such-exercise": {"x": "X"}}

    with pytest.raises(AssertionError) as failure:
        Short().test_every_exercise_has_its_bugs_and_another_design("01-why-cache")
    assert str(failure.value).splitlines()[1:] == [
        "cache-aside-read: 2 buggy implementation(s) in BUGS, at least 3 expected",
        "cache-aside-read: no correct implementation of another design in OTHER_DESIGNS",
        "no-such-exercise: not an exercise of 01-why-cache in the manifest"]


def test_variant_applies_each_edit_and_refuses_a_missing_target():
    assert variant("a = 1\nb = 2\n", ("a = 1", "a = 10"), ("b", "c")) == "a = 10\nc = 2\n"
    with pytest.raises(ValueError, match="edit target not found in the answer: 'z'"):
        variant("a = 1\n", ("z", "y"))
