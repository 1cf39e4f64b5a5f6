"""The nbgrader side in JupyterLab: a learner fetches and submits from the Assignments panel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect

from course_lib.manifest import COURSE_ROOT, load_course

from .conftest import ARTIFACTS, start_lab, stop_lab

LESSON = load_course().lessons[0]


def instructor_course(tmp: Path) -> Path:
    """A course folder with the first lesson, as an instructor would have it."""
    course = tmp / "course"
    for part in ("nbgrader_config.py", "course_lib/course.toml", f"solutions/{LESSON.slug}", f"notebooks/{LESSON.slug}"):
        src, dst = COURSE_ROOT / part, course / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    return course


def grader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_ROOT": str(course)}
    proc = subprocess.run([sys.executable, "-m", "grader", *args], cwd=course, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"grader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_learner_fetches_and_submits_from_the_assignments_panel(page, tmp_path):
    lab = start_lab(tmp_path)
    try:
        course = instructor_course(tmp_path)
        grader(course, "release", LESSON.slug, "--exchange", str(lab.exchange))
        page.goto(lab.open_url("lab"))
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
        page.locator(".lm-Menu-item", has_text="Assignment List").click()
        released = page.locator("#released_assignments_list")
        expect(released).to_contain_text(LESSON.slug)
        released.locator("button", has_text="Fetch").click()
        fetched = page.locator("#fetched_assignments_list")
        expect(fetched).to_contain_text(LESSON.slug)
        fetched_copy = lab.workspace / "caching-course" / LESSON.slug / LESSON.notebook
        assert fetched_copy.is_file(), "fetch should put the lesson in the learner's folder"
        fetched.locator("button", has_text="Submit").first.click()
        submitted = page.locator("#submitted_assignments_list")
        expect(submitted).to_contain_text(LESSON.slug)
        inbound = list((lab.exchange / "caching-course" / "inbound").glob(f"*+{LESSON.slug}+*/{LESSON.notebook}"))
        assert len(inbound) == 1, f"expected one submission in the exchange, found {inbound}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "assignments-panel.png"))
    finally:
        stop_lab(lab)
