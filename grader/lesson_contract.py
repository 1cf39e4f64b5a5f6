"""The contract every lesson's own tests follow (``tests/lessons/test_NN_slug.py``).

For each exercise: at least three buggy implementations (real bugs of the topic) that lose that
exercise's points while the other exercises keep theirs, and at least one correct implementation of
another design that gets full marks, each graded through the real grader. A lesson's test file states
only the implementations; ``lesson_tests`` turns them into pytest tests::

    globals().update(lesson_tests("11-write-behind", BUGS, OTHER_DESIGNS))

The lesson is found in the course at ``$COURSE_ROOT`` (``grader.course.layout``), so the same file works in
this checkout and in another course folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from course_lib.manifest import Lesson

from .course.synthetic import write_submission
from .grading.grade import grade_notebook
from .grading.result import NotebookResult
from .sandbox.protocol import Limits

__all__ = ["MIN_BUGS", "grade_answers", "exercise_statuses", "lesson_tests"]

MIN_BUGS = 3  # buggy implementations per exercise (docs/AUTHORING.md, "Tests for a lesson")
_LIMITS = Limits(cell_timeout=60, notebook_timeout=240)


def grade_answers(root: Path, lesson: Lesson, out_dir: Path, answers: Mapping[str, str] | None = None, *,
                  base: str = "solution", redis_url: str | None = None, limits: Limits = _LIMITS) -> NotebookResult:
    """Grade the lesson's release filled with the solution's answers (or the stubs, ``base='release'``)
    with ``answers`` on top, through the real grader."""
    submission = write_submission(lesson.source_path(root), lesson.release_path(root),
                                  out_dir / lesson.slug / lesson.notebook, answers, base=base)
    return grade_notebook(lesson.source_path(root), submission, redis_url=redis_url, limits=limits)


def exercise_statuses(result: NotebookResult) -> dict[str, str]:
    """{exercise id: status}, for assertions that say which exercise went wrong."""
    return {e.id: e.status for e in result.exercises}


def lesson_tests(lesson_name: str, bugs: Mapping[str, Mapping[str, str]],
                 designs: Mapping[str, Mapping[str, str]]) -> dict[str, Callable]:
    """pytest tests of the contract for one lesson: ``bugs`` and ``designs`` map an exercise id to
    ``{name: the answer cell's code}``."""
    import pytest

    from .course.layout import course_root, load

    def lesson() -> Lesson:
        return load().lesson(lesson_name)

    bug_cases = [pytest.param(ex, name, code, id=f"{ex}-{name}") for ex, named in bugs.items()
                 for name, code in named.items()]
    design_cases = [pytest.param(ex, name, code, id=f"{ex}-{name}") for ex, named in designs.items()
                    for name, code in named.items()]

    def test_every_exercise_has_its_bugs_and_another_design():
        missing = []
        for ex in lesson().exercises:
            if len(bugs.get(ex.id, {})) < MIN_BUGS:
                missing.append(f"{ex.id}: {len(bugs.get(ex.id, {}))} buggy implementation(s) in BUGS, "
                               f"at least {MIN_BUGS} expected")
            if not designs.get(ex.id):
                missing.append(f"{ex.id}: no correct implementation of another design in OTHER_DESIGNS")
        unknown = sorted((set(bugs) | set(designs)) - {ex.id for ex in lesson().exercises})
        missing += [f"{ex_id}: not an exercise of {lesson_name} in the manifest" for ex_id in unknown]
        assert not missing, "the lesson's tests are not complete:\n" + "\n".join(missing)

    @pytest.mark.parametrize("exercise, name, code", bug_cases)
    def test_buggy_implementation_loses_only_its_exercise(tmp_path, exercise, name, code):
        result = grade_answers(course_root(), lesson(), tmp_path, {exercise: code})
        statuses = exercise_statuses(result)
        assert statuses.get(exercise) != "passed", (
            f"{exercise} with the bug {name!r} passed: the hidden tests do not reject it ({statuses})")
        kept = {ex: s for ex, s in statuses.items() if ex != exercise and s != "passed"}
        assert not kept, f"{exercise} with the bug {name!r} also cost {kept}: each exercise is graded on its own"

    @pytest.mark.parametrize("exercise, name, code", design_cases)
    def test_other_correct_design_gets_full_marks(tmp_path, exercise, name, code):
        result = grade_answers(course_root(), lesson(), tmp_path, {exercise: code})
        assert result.score == result.max_score > 0, (
            f"{exercise} written as {name!r} got {result.score:g}/{result.max_score:g} "
            f"({exercise_statuses(result)}): the tests must accept any correct design")

    tests = {"test_every_exercise_has_its_bugs_and_another_design": test_every_exercise_has_its_bugs_and_another_design}
    if bug_cases:
        tests["test_buggy_implementation_loses_only_its_exercise"] = test_buggy_implementation_loses_only_its_exercise
    if design_cases:
        tests["test_other_correct_design_gets_full_marks"] = test_other_correct_design_gets_full_marks
    return tests
