"""An instructor opens nbgrader's formgrader in JupyterLab and sees the autograded submissions with their scores."""

from __future__ import annotations

import os
import subprocess
import sys

from playwright.sync_api import expect

from course_lib.manifest import load_course
from grader.course.synthetic import write_submission

from tests.support import free_port, stop_server, wait_for_http

from .conftest import ARTIFACTS
from .test_assignments import grader, instructor_course

LESSON = load_course().lessons[0]


def test_formgrader_shows_autograded_scores(page, tmp_path):
    course = instructor_course(tmp_path)
    grader(course, "release", LESSON.slug, "--no-exchange")
    source, release = course / "solutions" / LESSON.slug / LESSON.notebook, course / "notebooks" / LESSON.slug / LESSON.notebook
    first = LESSON.exercises[0]
    wrong_first = {first.id: "def get_user_cached(db, cache, user_id):\n    return db.get_user(user_id)\n"}
    learners = {"ada": ({}, "solution"), "bob": (wrong_first, "solution"), "cy": ({}, "release")}
    for student, (answers, base) in learners.items():
        folder = course / "submitted" / student / LESSON.slug
        write_submission(source, release, folder / LESSON.notebook, answers, base=base)
        (folder / "timestamp.txt").write_text("2026-11-26 08:00:00.000000 UTC")
    grader(course, "autograde", LESSON.slug, "--workers", "2", "--quiet")
    expected = {"ada": LESSON.points, "bob": LESSON.points - first.points, "cy": 0.0}

    port, token = free_port(), "formgrader-token"
    home = tmp_path / "instructor-home"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "COURSE_ROOT": str(course)}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}"],
                            cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, what="the instructor's JupyterLab")
        page.goto(f"http://127.0.0.1:{port}/lab?token={token}")
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
        page.locator(".lm-Menu-item[data-command='nbgrader:open-formgrader']").click()
        formgrader = page.frame_locator("iframe").first
        formgrader.get_by_role("link", name="Manage Students").first.click()
        table = formgrader.locator("table")
        for student, score in expected.items():
            row = table.locator("tr", has_text=student)
            expect(row).to_contain_text(f"{score:g} / {LESSON.points:g}", timeout=60_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "formgrader-scores.png"))
    finally:
        stop_server(proc)


def test_formgrader_buttons_run_the_course_grader(page, tmp_path):
    """Autograde and Generate Feedback, clicked in nbgrader's formgrader, run `python -m grader` (sandboxed,
    our feedback without test code), not plain nbgrader: the failure comment survives and the page hides the tests."""
    import json

    from nbgrader.api import Gradebook

    course = instructor_course(tmp_path)
    grader(course, "release", LESSON.slug, "--no-exchange")
    source, release = course / "solutions" / LESSON.slug / LESSON.notebook, course / "notebooks" / LESSON.slug / LESSON.notebook
    first = LESSON.exercises[0]
    wrong_first = {first.id: "def get_user_cached(db, cache, user_id):\n    return db.get_user(user_id)\n"}
    folder = course / "submitted" / "bob" / LESSON.slug
    write_submission(source, release, folder / LESSON.notebook, wrong_first, base="solution")
    (folder / "timestamp.txt").write_text("2026-11-26 08:00:00.000000 UTC")
    grader(course, "autograde", LESSON.slug, "--workers", "1", "--quiet")
    result_file = course / "grader-results" / LESSON.slug / "bob.json"
    graded_at = json.loads(result_file.read_text())["graded_at"]
    nb_id = LESSON.notebook.rsplit(".", 1)[0]

    def bob_comment() -> str:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "caching-course") as gb:
            return gb.find_comment(first.id, nb_id, LESSON.slug, "bob").auto_comment or ""

    comment = bob_comment()
    assert comment, "the grader left no failure comment to protect"

    port, token = free_port(), "formgrader-token"
    home = tmp_path / "instructor-home"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "COURSE_ROOT": str(course)}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}"],
                            cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, what="the instructor's JupyterLab")
        page.goto(f"http://127.0.0.1:{port}/lab?token={token}")
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
        page.locator(".lm-Menu-item[data-command='nbgrader:open-formgrader']").click()
        fg = page.frame_locator("iframe").first
        fg.locator("tr", has_text=LESSON.slug).locator(f"a[href$='manage_submissions/{LESSON.slug}']").click()
        row = fg.locator("tr", has_text="bob")
        expect(row).to_contain_text(f"{LESSON.points - first.points:g} / {LESSON.points:g}", timeout=60_000)
        row.locator(".glyphicon-flash").click()  # Autograde
        dialog = fg.locator("#success-modal")
        expect(dialog).to_contain_text(f"python -m grader --course {course} autograde {LESSON.slug} --student bob",
                                       timeout=120_000)
        expect(dialog).to_contain_text("graded now 1")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "formgrader-autograde-runs-grader.png"))
        dialog.locator("button.btn-primary").click()
        expect(dialog).to_have_count(0, timeout=30_000)
        assert json.loads(result_file.read_text())["graded_at"] != graded_at, "the button did not regrade bob"
        assert bob_comment() == comment, "the failure comment was replaced (plain nbgrader autograde ran)"

        row = fg.locator("tr", has_text="bob")
        row.locator(".glyphicon-comment").click()  # Generate Feedback
        dialog = fg.locator("#success-modal")
        expect(dialog).to_contain_text(f"feedback {LESSON.slug} --student bob", timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "formgrader-feedback-runs-grader.png"))
        feedback = (course / "feedback" / "bob" / LESSON.slug / f"{nb_id}.html").read_text()
        assert "Test code is not shown" in feedback and "BEGIN HIDDEN TESTS" not in feedback
    finally:
        stop_server(proc)
