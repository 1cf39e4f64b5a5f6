"""A learner in JupyterLab: open a lesson, run it, see the chart; answer an exercise, check it, validate it."""

from __future__ import annotations

import re

import nbformat
import pytest
from playwright.sync_api import Page, expect

from course_lib.manifest import COURSE_ROOT, load_course
from grader.course.synthetic import solution_answers

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
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=60_000)
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


# --- the learner's loop inside JupyterLab (issue 15) ---------------------------------------------------

def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def error_banners(page: Page):
    """Every way JupyterLab shows an error on its own: dialogs, error toasts, the nbgrader panels' errors."""
    return page.locator(".jp-Dialog, .Toastify__toast--error, .jp-toast-error, .alert-danger, "
                        ":text('Error fetching courses'), :text('exchange directory does not exist')"
                        ).filter(visible=True)  # nbgrader keeps an empty, hidden alert in its panels


def test_fresh_lab_is_a_learners_lab_without_error_banners(page, lab):
    page.goto(lab.open_url("lab"))
    listing = page.locator(".jp-DirListing-content")
    expect(listing.get_by_text(LESSON.slug, exact=True)).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=60_000)
    page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
    menu = page.locator(".lm-Menu").last
    expect(menu.locator(".lm-Menu-item", has_text="Assignment List")).to_be_visible(timeout=30_000)  # an exchange
    for command in ("nbgrader:open-formgrader", "nbgrader:open-create-assignment"):  # absent, or hidden
        expect(menu.locator(f".lm-Menu-item[data-command='{command}']")).to_be_hidden()
    expect(page.locator(".jp-SideBar .lm-TabBar-tab[title*='Create Assignment' i]")).to_have_count(0)
    menu.locator(".lm-Menu-item", has_text="Assignment List").click()
    expect(page.locator("#released_assignments_list")).to_contain_text("There are no assignments to fetch",
                                                                       timeout=60_000)
    shot(page, "learner-fresh-lab")
    banners = error_banners(page)
    assert banners.count() == 0, [banners.nth(i).inner_text()[:300] for i in range(banners.count())]


def test_terminal_runs_the_course_command_from_the_workspace(page, lab):
    page.goto(lab.open_url("lab"))
    expect(page.locator(".jp-DirListing-content").get_by_text(LESSON.slug, exact=True)).to_be_visible(timeout=60_000)
    page.locator(".lm-MenuBar-item", has_text="File").click()
    page.locator(".lm-Menu-item", has_text="New").first.hover()
    page.locator(".lm-Menu-item[data-command='terminal:create-new']").click()
    terminal = page.locator(".jp-Terminal").first
    expect(terminal.locator(".xterm-accessibility")).to_be_attached(timeout=60_000)
    screen = terminal.locator(".xterm-accessibility")
    terminal.click()
    page.keyboard.type("pwd; command -v course; course progress\n")
    expect(screen).to_contain_text(str(lab.workspace), timeout=60_000)
    expect(screen).to_contain_text("lessons passed", timeout=60_000)
    page.keyboard.type(f"cd {LESSON.slug} && course check\n")  # the lesson of the folder the terminal is in
    expect(screen).to_contain_text(f"{LESSON.slug}: 0/{LESSON.points:g} points", timeout=180_000)
    expect(screen).to_contain_text("not done yet")
    shot(page, "learner-terminal-course-check")
    expect(screen).not_to_contain_text("No module named")


def validate_dialog(page: Page, expected: str, screenshot: str) -> str:
    """Press Validate, wait for its dialog to show ``expected``; the dialog's text (checked short), then close it."""
    page.locator(".jp-NotebookPanel .validate-button").first.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(expected, timeout=180_000)
    text = dialog.locator("#validation-message").inner_text()
    shot(page, screenshot)
    assert "Traceback" not in text and "checks.py" not in text and "Check(" not in text, text  # no check source
    for failed in text.split("The following cell failed:")[1:]:  # what one failed check shows
        assert len([line for line in failed.splitlines() if line.strip()]) < 10, failed
    dialog.locator("button.jp-mod-accept").click()
    expect(dialog).to_have_count(0)
    return text


def insert_cell_at_end(page: Page, code: str):
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    cells.last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    new = cells.last
    new.locator(".cm-content").click()
    page.keyboard.insert_text(code)
    return new


def save(page: Page) -> None:
    page.keyboard.press("Control+S")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=60_000)


def test_grading_from_the_notebook_wrong_then_right(page, lab):
    source = nbformat.read(LESSON.source_path(COURSE_ROOT), as_version=4)
    right = solution_answers(source)
    release = nbformat.read(LESSON.release_path(COURSE_ROOT), as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
    first = LESSON.exercises[0]
    open_notebook(page, lab)
    run_menu(page, "Run All Cells")
    wait_until_idle(page)
    answer = answer_cell(page, ids.index(first.id))

    def write_answer(text: str) -> None:
        answer.scroll_into_view_if_needed()
        answer.locator(".cm-content").click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(text)
        page.keyboard.press("Shift+Enter")  # run the answer; the check cell below is selected

    write_answer("def get_user_cached(db, cache, user_id):\n    cached = cache.get(user_id)\n    if cached:\n"
                 "        return cached\n    user = db.get_user(user_id)\n    cache[user_id] = user\n    return user\n")
    page.keyboard.press("Shift+Enter")  # run the check cell: the classic falsy-None bug fails it
    check = answer_cell(page, ids.index(first.tests_cell_id))
    failure = check.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    expect(failure).to_contain_text(f"✗ {first.id}: check failed", timeout=120_000)
    expect(failure).to_contain_text(f'hint("{first.id}")')
    text = failure.inner_text()
    assert len(text.strip().splitlines()) < 10, text
    assert "Traceback" not in text and "checks.py" not in text
    check.scroll_into_view_if_needed()
    shot(page, "learner-failed-check")

    grade = insert_cell_at_end(page, "from course_lib import check_all\ncheck_all()")
    save(page)
    text = validate_dialog(page, f"✗ {first.id}: check failed", "learner-validate-wrong")  # nbgrader's button
    assert f"{first.id}: its check cell ({first.points:g} points)" in text and f'hint("{first.id}")' in text
    grade.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    report = grade.locator(".course-report")
    expect(report).to_be_visible(timeout=240_000)
    row = report.locator("tr", has_text=first.id)
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("hint ")
    expect(report.locator("a", has_text="why_cache-feedback.html")).to_be_visible()
    grade.scroll_into_view_if_needed()
    shot(page, "learner-check-all-wrong")

    write_answer(right[first.id])
    page.keyboard.press("Shift+Enter")  # the check cell again: now visibly success, in a green box
    expect(check.locator(".course-ok")).to_contain_text(f"✓ {first.id}: all visible checks passed", timeout=120_000)
    expect(failure).to_have_count(0)
    save(page)
    grade.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    expect(report.locator("tr", has_text=first.id)).to_contain_text("✓ passed", timeout=240_000)
    expect(report).to_contain_text(f"{first.points:g}/{LESSON.points:g} points")
    grade.scroll_into_view_if_needed()
    shot(page, "learner-check-all-right")
    report.locator("a", has_text="why_cache-feedback.html").click()  # opens in JupyterLab, beside the notebook
    expect(page.locator(".lm-TabBar-tab", has_text="why_cache-feedback.html")).to_be_visible(timeout=60_000)
    shot(page, "learner-feedback-page")


# Lesson 05's demonstrations call the learner's classes directly; lesson 12's also `await` at the top level
# of cells and run the learner's coroutines on an event loop of their own, beside the kernel's.
RUN_ALL_LESSONS = [load_course().lesson("05"), load_course().lesson("12")]


@pytest.mark.parametrize("lesson", RUN_ALL_LESSONS, ids=lambda lesson: lesson.slug)
def test_run_all_on_a_fresh_lesson_reaches_the_last_cell(page, lab, lesson):
    open_notebook(page, lab, lesson)
    run_menu(page, "Run All Cells")
    wait_until_idle(page)
    code_cells = page.locator(".jp-NotebookPanel .jp-CodeCell")
    last = code_cells.last
    last.scroll_into_view_if_needed()
    expect(last.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=120_000)
    expect(page.locator(".jp-NotebookPanel .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
           ).to_have_count(0)
    shot(page, f"learner-run-all-fresh-last-cell-{lesson.slug[:2]}")
    todo = page.locator(".jp-NotebookPanel .course-todo")
    assert todo.count() >= len(lesson.exercises)
    todo.first.scroll_into_view_if_needed()
    expect(todo.first).to_contain_text("not done yet", timeout=30_000)
    shot(page, f"learner-run-all-fresh-not-done-yet-{lesson.slug[:2]}")
    # Validate still fails the unfinished exercises, each by its check's message: no source, no traceback
    text = validate_dialog(page, f"{lesson.exercises[0].id}: not done yet", f"learner-validate-fresh-{lesson.slug[:2]}")
    assert "Success" not in text
    for exercise in lesson.exercises:
        assert f"{exercise.id}: its check cell ({exercise.points:g} points)" in text
        assert f"✗ {exercise.id}: not done yet" in text


def test_every_lesson_of_the_manifest_opens_in_the_lab(browser, lab):
    """Each lesson the manifest lists is in the learner's workspace and opens with its kernel, title first.

    One lab for all of them (a lab per lesson would cost minutes); each lesson in a fresh browser context,
    opened by its path with the saved layout reset, so the heading read is the lesson's own."""
    for lesson in load_course().lessons:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        page = context.new_page()
        chooser = page.locator(".jp-Dialog", has_text="Select Kernel")
        page.add_locator_handler(chooser, lambda dialog: dialog.locator("button.jp-mod-accept").click())
        try:
            page.goto(f"{lab.url}/lab/tree/{lesson.slug}/{lesson.notebook}?reset&token={lab.token}")
            panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=120_000)
            heading = panel.locator(".jp-MarkdownCell h1").first
            expect(heading).to_contain_text(re.compile(rf"Lesson {int(lesson.slug[:2])}\b"), timeout=60_000)
            assert panel.locator(".jp-Cell").count() > 10, f"{lesson.slug} opened with almost no cells"
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) | Idle").first
                   ).to_be_visible(timeout=120_000)
            shot(page, f"learner-opens-{lesson.slug}")
        finally:
            context.close()
