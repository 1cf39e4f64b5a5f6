"""`new-lesson`: a lesson scaffolded in a scratch course is gradable at once and agrees with its manifest.

One command writes the source notebook, the manifest entry, the test file and the release, each
exercise's id and points given once; dev-check grades it (the solution full marks, the stub 0) and
reports the placeholders until the author has replaced them; the test file's contract runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.manifest import load_course
from grader.authoring.check import lesson_problems, release_matches_source
from grader.course.cells import grade_id, is_answer, is_tests, nbgrader_meta
from grader.authoring.scaffold import PLACEHOLDER
from tests.grader.classroom.test_grader_pipeline import _env, grader, make_course

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[3]
SLUG = "03-scaffolded"


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "--course", str(root), *args], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=300)


def replace_placeholders(path: Path) -> None:
    """What the author does: write the text each TODO(scaffold) asks for."""
    path.write_text(path.read_text(encoding="utf-8").replace(PLACEHOLDER, "Written by the author"), encoding="utf-8")


def test_new_lesson_writes_a_gradable_lesson_that_dev_check_grades(tmp_path):
    root = make_course(tmp_path)
    manifest = root / "course_lib" / "course.toml"
    before = manifest.read_text()
    out = grader(root, "new-lesson", SLUG, "--title", "Scaffolded", "--exercise", "first-read:4",
                 "--exercise", "second-read:2").stdout
    source = root / "solutions" / SLUG / "scaffolded.ipynb"
    tests = root / "tests" / "lessons" / "test_03_scaffolded.py"
    release = root / "notebooks" / SLUG / "scaffolded.ipynb"
    for path in (source, manifest, tests, release):
        assert f"wrote {path.relative_to(root)}" in out, out
    assert manifest.read_text().startswith(before.rstrip("\n")), "the manifest's earlier lessons were changed"

    lesson = load_course(manifest).lesson(SLUG)
    assert [(e.id, e.points) for e in lesson.exercises] == [("first-read", 4), ("second-read", 2)]
    nb = nbformat.read(source, as_version=4)
    assert [grade_id(c) for c in nb.cells if is_answer(c)] == ["first-read", "second-read"]
    assert {grade_id(c): nbgrader_meta(c)["points"] for c in nb.cells if is_tests(c)} == {
        "first-read-tests": 4, "second-read-tests": 2}
    assert lesson_problems(root, lesson) == [] and release_matches_source(root, lesson)

    # placeholders left: dev-check grades the lesson and fails naming each file with text to write
    proc = run(root, "dev-check", "3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "graded: the solution 6/6 [graded], the stub 0/6 [graded]" in proc.stdout, proc.stdout
    assert f"scaffolded.ipynb: {PLACEHOLDER} left in cell(s) intro, first-read-md" in proc.stdout, proc.stdout
    assert f"course.toml: {PLACEHOLDER} left in exercise first-read summary" in proc.stdout, proc.stdout
    assert f"test_03_scaffolded.py: {PLACEHOLDER} left" in proc.stdout, proc.stdout

    # the test file's contract: the scaffold's one bug loses its exercise only; three bugs per exercise are asked for
    contract = subprocess.run([sys.executable, "-m", "pytest", "-c", str(CHECKOUT / "pyproject.toml"), "--rootdir",
                               str(root), "-p", "no:cacheprovider", "-q", str(tests)], cwd=root,
                              env={**_env(), "COURSE_ROOT": str(root)}, capture_output=True, text=True, timeout=300)
    assert "1 failed, 1 passed" in contract.stdout, contract.stdout + contract.stderr
    assert "first-read: 1 buggy implementation(s) in BUGS, at least 3 expected" in contract.stdout, contract.stdout
    assert "second-read: no correct implementation of another design" in contract.stdout, contract.stdout

    # the author writes the text: after `generate`, dev-check is clean and has graded both
    for path in (source, manifest, tests):
        replace_placeholders(path)
    proc = run(root, "dev-check", "3")
    assert proc.returncode == 1 and "is not what solutions/03-scaffolded generates" in proc.stdout, proc.stdout
    grader(root, "generate", "3")
    out = grader(root, "dev-check", "3").stdout
    assert "ok   03-scaffolded (graded: the solution 6/6 [graded], the stub 0/6 [graded])" in out, out


def test_new_lesson_refuses_before_writing_anything(tmp_path):
    root = make_course(tmp_path)
    manifest = root / "course_lib" / "course.toml"
    before = manifest.read_text()
    for args, message in (
        (("02-again", "--exercise", "x:1"), "lesson number 02 is taken (02-fixture-more)"),
        (("03-reused", "--exercise", "add-one:1"), "exercise id(s) ['add-one'] already belong to another lesson"),
        (("03-badly", "--exercise", "no-points"), "--exercise 'no-points': expected ID:POINTS"),
        (("3-short", "--exercise", "x:1"), "a slug is two digits, a dash and lowercase words"),
        (("03-twice", "--exercise", "x:1", "--exercise", "x:2"), "exercise ids must differ"),
    ):
        proc = run(root, "new-lesson", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    (root / "tests" / "lessons").mkdir(parents=True)
    (root / "tests" / "lessons" / "test_03_kept.py").write_text("# the author's own tests\n")
    proc = run(root, "new-lesson", "03-kept", "--exercise", "kept:1")
    assert proc.returncode == 2 and "test_03_kept.py already exist(s); nothing was written" in proc.stderr, proc.stderr
    assert (root / "tests" / "lessons" / "test_03_kept.py").read_text() == "# the author's own tests\n"
    assert manifest.read_text() == before and not (root / "solutions" / "03-kept").exists()
