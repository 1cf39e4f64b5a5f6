"""A learner in JupyterLab: open a lesson, run it, see the chart; answer an exercise, check it, validate it."""

from __future__ import annotations

import re

import nbformat
from playwright.sync_api import Page, expect

from course_lib.manifest import COURSE_ROOT, load_course
from grader.synthetic import solution_answers

from .conftest import ARTIFACTS

LESSON = load_course().lessons[0]


def open_notebook(page: Page, lab, lesson=LESSON) -> None:
    # JupyterLab sometimes asks which kernel to use while the kernel list is still loading (more often
    # on a busy machine): whenever that dialog shows up, keep the notebook's own kernel.
    chooser = page.locator(".jp-Dialog", has_text="Select Kernel")
    page.add_locator_handler(chooser, lambda dialog: dialog.locator("button.jp-mod-accept").click())
    # On a busy machine the save can race JupyterLab's own autosave: keep what is in the browser.
    changed = page.locator(".jp-Dialog", has_text="File Changed")
    page.add_locator_handler(changed, lambda dialog: dialog.locator("button", has_text="Overwrite").click())
    page.goto(lab.open_url("lab"))
    listing = page.locator(".jp-DirListing-content")
    listing.get_by_text(lesson.slug, exact=True).dblclick()
    listing.get_by_text(lesson.notebook, exact=True).dblclick()
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible()
    expect(page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) | Idle").first).to_be_visible(
        timeout=120_000)


def run_menu(page: Page, item: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has_text=item).first.click()


def wait_until_idle(page: Page) -> None:
    indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").first
    expect(indicator).to_have_attribute("data-status", "idle", timeout=120_000)


def answer_cell(page: Page, index: int):
    return page.locator(".jp-NotebookPanel .jp-Cell").nth(index)


def test_learner_runs_lesson_one_and_sees_a_chart(page, lab):
    open_notebook(page, lab)
    run_menu(page, "Run All Cells")
    image = page.locator(".jp-NotebookPanel .jp-OutputArea-output img").first
    expect(image).to_be_visible(timeout=120_000)
    wait_until_idle(page)
    assert image.evaluate("img => img.naturalWidth") > 100, "the chart image did not load"
    image.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lesson-01-chart.png"))


def test_learner_answers_checks_and_validates(page, lab):
    source = nbformat.read(LESSON.source_path(COURSE_ROOT), as_version=4)
    answers = solution_answers(source)
    release = nbformat.read(LESSON.release_path(COURSE_ROOT), as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
    open_notebook(page, lab)
    first = LESSON.exercises[0]
    for exercise in LESSON.exercises:
        cell = answer_cell(page, ids.index(exercise.id))
        cell.scroll_into_view_if_needed()
        editor = cell.locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(answers[exercise.id])
        expect(editor).to_contain_text(answers[exercise.id].strip().splitlines()[-1].strip())
    run_menu(page, "Run All Cells")
    check_cell = answer_cell(page, ids.index(first.tests_cell_id))
    expect(check_cell.locator(".jp-OutputArea-output")).to_contain_text(
        f"[{first.id}] All visible checks passed", timeout=120_000)
    wait_until_idle(page)
    page.keyboard.press("Control+S")
    expect(page.locator(".jp-NotebookPanel-toolbar, .jp-Toolbar").first).to_be_visible()
    expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=60_000)  # saved: the tab is not dirty
    page.locator(".jp-NotebookPanel .validate-button").first.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Success", timeout=180_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lesson-01-validated.png"))
