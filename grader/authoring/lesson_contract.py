"""The contract every lesson's own tests follow: a class whose slots a lesson's test file fills (like cachetools'
``CacheTestMixin``), and which turns them into the generic pytest tests.

For each exercise: at least three buggy implementations (real bugs of the topic) that lose that exercise's
points while the other exercises keep theirs, and at least one correct implementation of another design that
gets full marks, on the embedded fakeredis and on a real Redis, each graded through the real grader. A
lesson's test file (``tests/lessons/test_NN_slug.py``) states them as data, then only its own tests::

    class TestWriteBehind(LessonContract):
        LESSON = "11-write-behind"
        BUGS = {"write-behind": {"lost-on-error": LOST_ON_ERROR,                  # name -> the answer cell
                                 "no-coalescing": Bug(NO_COALESCING, says="one write per key")}}
        OTHER_DESIGNS = {"write-behind": {"swap-dicts": SWAP_DICTS}}
        GRADE_TOGETHER = True   # independent exercises: run k grades the k-th bug of every exercise at once

The generated test ids carry the lesson's slug (``pytest -k 11-write-behind``). The lesson is found in the
course at ``$COURSE_ROOT`` (``grader.course.layout``), so the same file works in this checkout and in another course
folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Mapping

from course_lib.manifest import Lesson

from ..course.synthetic import write_submission
from ..grading.grade import grade_notebook
from ..grading.result import NotebookResult
from ..sandbox.protocol import Limits

__all__ = ["MIN_BUGS", "Bug", "LessonContract", "grade_answers", "exercise_summary", "solution_of", "variant"]

MIN_BUGS = 3  # buggy implementations per exercise (docs/AUTHORING.md, "Tests for a lesson")
_LIMITS = Limits(cell_timeout=60, notebook_timeout=240)


@dataclass(frozen=True)
class Bug:
    """A buggy answer and what the learner must be told about it.

    ``says``: a fragment of the exercise's failure message (or several, any one will do), so that a bug
    caught by accident (a crash elsewhere) does not count. ``starts``: the start of that message
    (``"AssertionError"``: caught by the hidden tests, the visible checks raise CheckFailed). ``may_cost``:
    exercises built on this one, whose points this bug may also take (their status is not checked).
    """

    code: str
    says: str | tuple[str, ...] = ()
    starts: str = ""
    may_cost: tuple[str, ...] = ()

    def __post_init__(self):
        if isinstance(self.says, str):
            object.__setattr__(self, "says", (self.says,) if self.says else ())


def grade_answers(root: Path, lesson: Lesson, out_dir: Path, answers: Mapping[str, str] | None = None, *,
                  base: str = "solution", redis_url: str | None = None, limits: Limits = _LIMITS) -> NotebookResult:
    """Grade the lesson's release filled with the solution's answers (or the stubs, ``base='release'``)
    with ``answers`` on top, through the real grader."""
    submission = write_submission(lesson.source_path(root), lesson.release_path(root),
                                  out_dir / lesson.slug / lesson.notebook, answers, base=base)
    return grade_notebook(lesson.source_path(root), submission, redis_url=redis_url, limits=limits)


def exercise_summary(result: NotebookResult) -> str:
    """The result's status and each exercise's status and message: the text of a failed assertion."""
    lines = [f"status={result.status} {result.detail}".rstrip()]
    lines += [f"{e.id}: {e.status} {e.score:g}/{e.points:g} {e.message[:400]}" for e in result.exercises]
    return "\n".join(lines)


def solution_of(lesson_name: str) -> dict[str, str]:
    """{exercise id: the solution's answer cell} of a lesson of the course at ``$COURSE_ROOT``."""
    from ..course.layout import course_root, load
    from ..course.cells import read_notebook
    from ..course.synthetic import solution_answers

    return solution_answers(read_notebook(load().lesson(lesson_name).source_path(course_root())))


def variant(base: str, *edits: tuple[str, str]) -> str:
    """``base`` (a solution's answer) with each (old, new) edit applied: a bug that differs from a correct
    answer by exactly one edit. Every ``old`` must occur in it."""
    for old, new in edits:
        if old not in base:
            raise ValueError(f"edit target not found in the answer: {old!r}")
        base = base.replace(old, new)
    return base


def _as_bug(name: str, code: str | Bug) -> Bug:
    if isinstance(code, Bug):
        return code
    if not isinstance(code, str):
        raise TypeError(f"bug {name!r}: give the answer cell's code or a Bug(code, says=...), not a {type(code).__name__}")
    return Bug(code)


class LessonContract:
    """The generic tests of one lesson; a subclass named ``Test...`` fills the slots.

    Slots: ``LESSON`` (number or slug); ``BUGS`` and ``OTHER_DESIGNS``, both {exercise id: {name: answer}}
    (a bug's answer is its code or a ``Bug``); ``GRADE_TOGETHER``: grade the k-th bug of every exercise in
    one run, for exercises graded independently of each other (fewer grading runs; the default grades each
    bug alone); ``REAL_REDIS``: also grade the other designs on a real Redis (the ``redis_url`` fixture;
    False for a course folder without it). The k-th design of every exercise is graded in one run (an
    exercise without a k-th keeps the solution's answer). Hooks ``check_bug_run`` and ``check_design_run``
    add a lesson's own assertions to every run.
    """

    LESSON: str = ""
    BUGS: Mapping[str, Mapping[str, str | Bug]] = {}
    OTHER_DESIGNS: Mapping[str, Mapping[str, str]] = {}
    GRADE_TOGETHER: bool = False
    REAL_REDIS: bool = True

    # -- the data, as grading runs -------------------------------------------------------------------------

    @classmethod
    def lesson(cls) -> Lesson:
        from ..course.layout import load

        return load().lesson(cls.LESSON)

    @classmethod
    def bug_runs(cls) -> list[tuple[str, dict[str, tuple[str, Bug]]]]:
        """(test id, {exercise: (bug name, bug)}) for each grading run of the bugs."""
        slug = cls.lesson().slug
        named = {ex: [(name, _as_bug(name, code)) for name, code in bugs.items()] for ex, bugs in cls.BUGS.items()}
        if not cls.GRADE_TOGETHER:
            return [(f"{slug}:{ex}:{name}", {ex: (name, bug)}) for ex, bugs in named.items() for name, bug in bugs]
        runs = []
        for kth in zip_longest(*named.values()):
            run = {ex: entry for ex, entry in zip(named, kth) if entry is not None}
            clash = [(name, ex) for name, bug in run.values() for ex in bug.may_cost if ex in run]
            if clash:
                raise ValueError(f"{slug}: the bug {clash[0][0]!r} may cost {clash[0][1]}, which has a bug of its own "
                                 "in the same run: reorder BUGS so that they fall in different runs")
            runs.append((f"{slug}:" + "+".join(name for name, _ in run.values()), run))
        return runs

    @classmethod
    def design_runs(cls) -> list[tuple[str, dict[str, str]]]:
        """(test id, {exercise: answer}) for each grading run of the other designs."""
        slug = cls.lesson().slug
        runs = []
        for kth in zip_longest(*(list(designs.items()) for designs in cls.OTHER_DESIGNS.values())):
            run = {ex: entry for ex, entry in zip(cls.OTHER_DESIGNS, kth) if entry is not None}
            runs.append((f"{slug}:" + "+".join(name for name, _ in run.values()), {ex: code for ex, (_, code) in run.items()}))
        return runs

    def pytest_generate_tests(self, metafunc) -> None:
        import pytest

        if "bug_run" in metafunc.fixturenames:
            runs = self.bug_runs()
            metafunc.parametrize("bug_run", [run for _, run in runs], ids=[test_id for test_id, _ in runs])
        if "design_run" in metafunc.fixturenames:
            runs = self.design_runs()
            metafunc.parametrize("design_run", [run for _, run in runs], ids=[test_id for test_id, _ in runs])
            backends = [pytest.param("fakeredis", id="fakeredis")]
            if self.REAL_REDIS:
                backends.append(pytest.param("real-redis", id="real-redis", marks=pytest.mark.redis_server))
            metafunc.parametrize("backend", backends)
        if "lesson_slug" in metafunc.fixturenames:
            slug = self.lesson().slug
            metafunc.parametrize("lesson_slug", [slug], ids=[slug])

    def grade(self, tmp_path: Path, answers: Mapping[str, str], redis_url: str | None = None) -> NotebookResult:
        """The solution with ``answers`` in place of its own, graded through the real grader."""
        from ..course.layout import course_root

        return grade_answers(course_root(), self.lesson(), tmp_path, answers, redis_url=redis_url)

    # -- hooks for a lesson's own assertions ----------------------------------------------------------------

    def check_bug_run(self, result: NotebookResult, run: Mapping[str, tuple[str, Bug]]) -> None:
        """Called after the generic checks of each bug run."""

    def check_design_run(self, result: NotebookResult) -> None:
        """Called after the generic checks of each design run."""

    # -- the generic tests ----------------------------------------------------------------------------------

    def test_every_exercise_has_its_bugs_and_another_design(self, lesson_slug):
        missing = []
        exercises = [ex.id for ex in self.lesson().exercises]
        for ex in exercises:
            if len(self.BUGS.get(ex, {})) < MIN_BUGS:
                missing.append(f"{ex}: {len(self.BUGS.get(ex, {}))} buggy implementation(s) in BUGS, "
                               f"at least {MIN_BUGS} expected")
            if not self.OTHER_DESIGNS.get(ex):
                missing.append(f"{ex}: no correct implementation of another design in OTHER_DESIGNS")
        unknown = sorted((set(self.BUGS) | set(self.OTHER_DESIGNS)) - set(exercises))
        missing += [f"{ex}: not an exercise of {lesson_slug} in the manifest" for ex in unknown]
        assert not missing, "the lesson's tests are not complete:\n" + "\n".join(missing)

    def test_each_bug_loses_only_its_exercise(self, tmp_path, bug_run):
        result = self.grade(tmp_path, {ex: bug.code for ex, (_, bug) in bug_run.items()})
        summary = exercise_summary(result)
        assert result.status == "graded", summary
        assert [e.id for e in result.exercises] == [ex.id for ex in self.lesson().exercises], summary
        unchecked = {ex for _, bug in bug_run.values() for ex in bug.may_cost}
        for exercise in result.exercises:
            if exercise.id in bug_run:
                name, bug = bug_run[exercise.id]
                assert exercise.status == "failed" and exercise.score == 0, (
                    f"{exercise.id} with the bug {name!r} was not caught:\n{summary}")
                assert not bug.says or any(text in exercise.message for text in bug.says), (
                    f"{exercise.id} with the bug {name!r} failed without saying {bug.says}:\n{summary}")
                assert exercise.message.startswith(bug.starts), (
                    f"{exercise.id} with the bug {name!r}: the message does not start with {bug.starts!r}:\n{summary}")
            elif exercise.id not in unchecked:
                assert exercise.status == "passed" and exercise.score == exercise.points, (
                    f"{exercise.id} (the solution) lost its points to another exercise's bug:\n{summary}")
        self.check_bug_run(result, bug_run)

    def test_other_design_gets_full_marks(self, tmp_path, request, design_run, backend):
        redis_url = request.getfixturevalue("redis_url") if backend == "real-redis" else None
        result = self.grade(tmp_path, design_run, redis_url=redis_url)
        summary = exercise_summary(result)
        assert result.status == "graded", summary
        assert all(e.status == "passed" for e in result.exercises), summary
        assert result.score == result.max_score > 0, f"the tests must accept any correct design:\n{summary}"
        self.check_design_run(result)
