"""Every lesson in the manifest, checked the same way through the grader.

- the manifest, source and release agree (ids, points, no outputs, no leaks);
- notebooks/ is exactly what nbgrader generates from solutions/;
- the solution gets full marks, on fakeredis and on a real Redis server;
- the release as shipped passes no exercise, and fails on the stub, not on
  something broken before it (nbgrader `validate --invert` semantics).
"""

from __future__ import annotations

import pytest

from course_lib.manifest import COURSE_ROOT, load_course
from grader.authoring.check import lesson_problems, release_matches_source
from grader.course.cells import cell_text, read_notebook
from grader.sandbox.protocol import Limits
from grader.sandbox.parent import uses_redis

LESSONS = [pytest.param(l.slug, id=l.slug) for l in load_course().lessons]
REDIS_LESSONS = [pytest.param(l.slug, id=l.slug) for l in load_course().lessons
                 if uses_redis([cell_text(c) for c in read_notebook(l.source_path(COURSE_ROOT)).cells
                                if c.cell_type == "code"])]
pytestmark = pytest.mark.slow


def _failures(result) -> str:
    lines = [f"status={result.status} detail={result.detail!r} notes={result.notes}"]
    lines += [f"  {e.id}: {e.status} {e.message}" for e in result.exercises if e.status != "passed"]
    for cell in result.cells:
        record = cell["record"] or {}
        if record.get("status") not in (None, "ok"):
            lines.append(f"  cell {cell['grade_id']} ({cell['kind']}): {record.get('ename')}: "
                         f"{record.get('evalue', '')[:300]}\n{record.get('traceback', '')[-1500:]}")
    return "\n".join(lines)


@pytest.mark.parametrize("slug", LESSONS)
def test_lesson_is_consistent(slug):
    assert lesson_problems(COURSE_ROOT, load_course().lesson(slug)) == []


@pytest.mark.parametrize("slug", LESSONS)
def test_release_is_what_solutions_generate(slug):
    assert release_matches_source(COURSE_ROOT, load_course().lesson(slug)), (
        f"notebooks/{slug} differs from what solutions/{slug} generates: run `make generate` and commit"
    )


def test_generate_leaves_hypothesis_database_out_of_the_release(tmp_path):
    """`nbgrader validate` leaves `.hypothesis/` next to a source notebook; the release must not ship it."""
    import shutil

    from grader.course.nbgrader import generate

    lesson = load_course().lessons[0]
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    shutil.copyfile(COURSE_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(COURSE_ROOT / "solutions" / lesson.slug, root / "solutions" / lesson.slug)
    stray = root / "solutions" / lesson.slug / ".hypothesis" / "examples"
    stray.mkdir(parents=True)
    (stray / "entry").write_text("x")
    produced = generate(root, lesson, tmp_path / "release")
    shipped = sorted(p.relative_to(produced.parent).as_posix() for p in produced.parent.rglob("*"))
    assert produced.is_file() and not any(".hypothesis" in p for p in shipped), (
        f"generate({lesson.slug}) with solutions/{lesson.slug}/.hypothesis/ present shipped {shipped}; "
        "expected the notebook without .hypothesis (CourseDirectory.ignore in nbgrader_config.py)")


@pytest.mark.parametrize("slug", LESSONS)
def test_solution_gets_full_marks_on_fakeredis(slug, grade_lesson):
    """The grading Redis as a learner's machine without redis-server has it: fakeredis in its own sandbox."""
    result = grade_lesson(slug, limits=Limits(cell_timeout=60, notebook_timeout=240, redis_backend="fakeredis"))
    assert result.status == "graded" and result.score == result.max_score > 0, _failures(result)
    assert all(c["record"] and c["record"]["status"] == "ok" for c in result.cells), _failures(result)
    if "redis" in result.processes:
        assert result.processes["redis"]["backend"] == "fakeredis"


@pytest.mark.redis_server
@pytest.mark.parametrize("slug", REDIS_LESSONS)
def test_solution_gets_full_marks_on_its_own_redis_server(slug, grade_lesson):
    """The default grading Redis where redis-server is installed: one sandboxed server per submission."""
    result = grade_lesson(slug, limits=Limits(cell_timeout=60, notebook_timeout=240, redis_backend="redis-server"))
    assert result.status == "graded" and result.score == result.max_score > 0, _failures(result)
    assert result.processes["redis"]["backend"] == "redis-server"


@pytest.mark.redis_server
@pytest.mark.parametrize("slug", LESSONS)
def test_solution_gets_full_marks_on_real_redis(slug, grade_lesson, redis_url):
    result = grade_lesson(slug, redis_url=redis_url)
    assert result.status == "graded" and result.score == result.max_score > 0, _failures(result)


@pytest.mark.parametrize("slug", LESSONS)
def test_release_fails_every_exercise_on_the_stub(slug, grade_lesson):
    result = grade_lesson(slug, base="release")
    assert result.status == "graded", _failures(result)
    assert result.score == 0, _failures(result)
    for exercise in result.exercises:
        assert exercise.status == "failed" and "stub" in exercise.message, (
            f"{exercise.id} should fail on the stub with a message saying so, got {exercise.status}: {exercise.message}"
        )
    first_answer = next(i for i, c in enumerate(result.cells) if c["kind"] == "answer")
    for cell in result.cells[:first_answer]:
        assert cell["record"]["status"] == "ok", f"course cell {cell['grade_id']} fails before any exercise: {cell['record']}"
