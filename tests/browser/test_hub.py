"""A class on a real JupyterHub: two learners log in, fetch lesson 01, submit a wrong and a right answer;
grading on submit; each opens their own feedback and cannot read the other's; the instructor's formgrader
lists both submissions with their scores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page, expect

from course_lib.manifest import COURSE_ROOT, load_course
from grader.course.synthetic import solution_answers

from .hub import COURSE_ID, Account, Hub, accounts, chown_tree, start_hub, stop_hub  # noqa: F401 - accounts: fixture
from .test_assignments import instructor_course

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LESSON = load_course().lessons[0]
WRONG_FIRST = "def get_user_cached(db, cache, user_id):\n    return db.get_user(user_id)\n"


def grade_on_submit(hub: Hub, course: Path, instructor: Account, expected: set[str]) -> None:
    """The grading service, as root beside the hub (docs/INSTRUCTORS.md, section 9): it grades every
    submission in the exchange's inbound folder, checking that each folder is owned by the account it
    names, records it and releases the feedback; ``--exit-when-idle`` stops it once both are done. The
    course folder is handed back to the instructor after (the service writes it as root)."""
    proc = subprocess.run([sys.executable, "-m", "grader", "--course", str(course), "serve", "--exchange",
                           str(hub.exchange), "--release-feedback", "--check-owner", "--exit-when-idle"],
                          cwd=course, env={**os.environ, "COURSE_ROOT": str(course)}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"grader serve failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if f" {LESSON.slug} graded " in line]  # one per submission
    assert {line.split()[1] for line in lines} == expected and len(lines) == len(expected), proc.stdout
    assert all(line.endswith(" feedback released") for line in lines), proc.stdout
    chown_tree(course, instructor.name)


@contextmanager
def screenshots_on_failure(pages: dict[str, Page], folder: Path):
    """On any failure inside, a screenshot of every open page into ``folder`` (the test's tmp dir)."""
    try:
        yield
    except BaseException:
        for name, page in pages.items():
            try:
                page.screenshot(path=str(folder / f"hub-{name}-failure.png"))
            except Exception:  # noqa: BLE001 - a closed page has nothing to show
                pass
        raise


def log_in(page: Page, hub: Hub, account: Account) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.locator("#username_input").fill(account.name)
    page.locator("#password_input").fill(account.password)
    page.locator("#login_submit").click()
    expect(page).to_have_url(f"{hub.url}/user/{account.name}/lab", timeout=180_000)
    expect(page.locator(".jp-DirListing-content")).to_be_visible(timeout=180_000)


def assignments_panel(page: Page):
    page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
    page.locator(".lm-Menu-item", has_text="Assignment List").click()
    return page.locator("#released_assignments_list"), page.locator("#fetched_assignments_list"), \
        page.locator("#submitted_assignments_list")


def answer_and_submit(page: Page, answers: dict[str, str]) -> None:
    """Fetch the lesson, write ``answers`` into its answer cells, save, and Submit from the Assignments panel."""
    chooser = page.locator(".jp-Dialog", has_text="Select Kernel")
    page.add_locator_handler(chooser, lambda dialog: dialog.locator("button.jp-mod-accept").click())
    changed = page.locator(".jp-Dialog", has_text="File Changed")  # a save racing the autosave: keep the browser's
    page.add_locator_handler(changed, lambda dialog: dialog.locator("button", has_text="Overwrite").click())
    released, fetched, submitted = assignments_panel(page)
    expect(released).to_contain_text(LESSON.slug, timeout=60_000)
    released.locator("button", has_text="Fetch").click()
    expect(fetched).to_contain_text(LESSON.slug, timeout=60_000)
    listing = page.locator(".jp-DirListing-content")
    listing.get_by_text(LESSON.slug, exact=True).dblclick()
    listing.get_by_text(LESSON.notebook, exact=True).dblclick()
    release = nbformat.read(LESSON.release_path(COURSE_ROOT), as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expect(cells.first).to_be_visible(timeout=60_000)
    for grade_id, text in answers.items():
        cell = cells.nth(ids.index(grade_id))
        cell.scroll_into_view_if_needed()
        editor = cell.locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(text)
        expect(editor).to_contain_text(text.strip().splitlines()[-1].strip())
    save(page)
    page.locator(".lm-TabBar-tab", has_text="Assignments").first.click()
    fetched.locator("button", has_text="Submit").first.click()
    expect(submitted).to_contain_text(LESSON.slug, timeout=60_000)


def save(page: Page, *, seconds: float = 120) -> None:
    """Save the notebook with its toolbar button until the tab is no longer dirty (a click that lands while
    JupyterLab is busy on a loaded machine can be lost: click again, up to ``seconds``)."""
    deadline = time.monotonic() + seconds
    dirty = page.locator(".jp-mod-dirty")
    while True:
        page.locator(".jp-NotebookPanel-toolbar [data-command='docmanager:save']").first.click()
        try:
            expect(dirty).to_have_count(0, timeout=15_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def open_feedback(page: Page, account: Account, folder: Path) -> str:
    """Fetch Feedback in the Assignments panel, follow "(view feedback)", open the page (screenshot in
    ``folder``); its text."""
    page.reload()
    expect(page.locator(".jp-DirListing-content")).to_be_visible(timeout=60_000)
    _, _, submitted = assignments_panel(page)
    submitted.locator("button", has_text="Fetch Feedback").click(timeout=60_000)
    view = submitted.get_by_text("(view feedback)")
    view.click(timeout=60_000)
    page.locator(".jp-DirListing-content").get_by_text(LESSON.notebook.replace(".ipynb", ".html"),
                                                      exact=True).dblclick()
    frame = page.frame_locator(".jp-HTMLViewer iframe").first
    expect(frame.locator("h1")).to_contain_text(f"feedback for {account.name}", timeout=60_000)
    page.screenshot(path=str(folder / f"hub-feedback-{account.name}.png"))
    return frame.locator("body").inner_text()


def test_a_class_on_jupyterhub_with_grade_on_submit(browser, accounts, tmp_path):
    base, exchange, make = accounts
    ann, ben = make("a"), make("b")
    instructor = make("i")
    course = instructor_course(instructor.home)  # ~/course: the formgrader needs it under the server's root
    # the instructor's nbgrader reads the course's own settings (solutions/ as source, notebooks/ as release)
    (instructor.home / ".jupyter" / "nbgrader_config.py").write_text(
        (course / "nbgrader_config.py").read_text()
        + f"\nc.CourseDirectory.root = {str(course)!r}\nc.Exchange.root = {str(exchange)!r}\n")
    chown_tree(instructor.home, instructor.name)

    hub = start_hub(base, exchange, instructor, [ann, ben])
    pages: dict[str, Page] = {}
    try:
        with screenshots_on_failure(pages, tmp_path):
            # the environment the spawned accounts get: this venv, the course package, nbgrader
            probe = hub.as_user(ann.name, sys.executable, "-c", "import course_lib, grader, nbgrader, jupyterhub")
            assert probe.returncode == 0, f"{ann.name} cannot import the course's packages:\n{probe.stderr}"
            release = hub.as_user(instructor.name, sys.executable, "-m", "grader", "--course", str(course),
                                  "release", LESSON.slug, "--exchange", str(exchange), cwd=course)
            assert release.returncode == 0, release.stdout + release.stderr

            solution = solution_answers(nbformat.read(LESSON.source_path(COURSE_ROOT), as_version=4))
            right = {e.id: solution[e.id] for e in LESSON.exercises}
            submissions = {ann.name: right, ben.name: {LESSON.exercises[0].id: WRONG_FIRST}}
            scores = {ann.name: LESSON.points, ben.name: 0.0}
            for account in (ann, ben):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.set_default_timeout(60_000)
                pages[account.name] = context.new_page()
                log_in(pages[account.name], hub, account)
                answer_and_submit(pages[account.name], submissions[account.name])

            grade_on_submit(hub, course, instructor, {ann.name, ben.name})

            for account in (ann, ben):
                text = open_feedback(pages[account.name], account, tmp_path)
                assert f"Score: {scores[account.name]:g} / {LESSON.points:g}" in text, text[:500]
                other = ben if account is ann else ann
                assert other.name not in text
            for account, other in ((ann, ben), (ben, ann)):
                own = list((account.home / LESSON.slug / "feedback").glob("*/*.html"))
                assert len(own) == 1, own
                mine = hub.as_user(account.name, "cat", str(own[0]))
                assert mine.returncode == 0 and f"feedback for {account.name}" in mine.stdout, mine.stderr
                theirs = list((other.home / LESSON.slug / "feedback").glob("*/*.html"))
                assert len(theirs) == 1, theirs
                peek = hub.as_user(account.name, "cat", str(theirs[0]))
                assert peek.returncode != 0 and "Permission denied" in peek.stderr, peek.stdout[:300]
                listing = hub.as_user(account.name, "ls", str(exchange / COURSE_ID / "feedback"))
                assert listing.returncode != 0 and "Permission denied" in listing.stderr, listing.stdout

            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(60_000)
            pages[instructor.name] = page = context.new_page()
            log_in(page, hub, instructor)
            page.goto(f"{hub.url}/user/{instructor.name}/formgrader/manage_submissions/{LESSON.slug}")
            for account in (ann, ben):
                row = page.locator("tr", has_text=account.name)
                expect(row).to_contain_text(f"{scores[account.name]:g} / {LESSON.points:g}", timeout=60_000)
            page.screenshot(path=str(tmp_path / "hub-formgrader.png"))
    finally:
        for page in pages.values():
            page.context.close()
        stop_hub(hub)
