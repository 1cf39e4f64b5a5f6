"""The learner's loop inside JupyterLab: grade from the notebook, readable checks, Run All that carries on.

- ``check_all()`` grades the *saved* notebook with the hidden tests by running
  ``python -m grader check`` (the same engine, the same result, the same saved
  progress) and shows per exercise: passed or failed, the message, the hint that
  matches the failure, and a link to the feedback page with the learner's charts.
- ``reset_exercise("id")`` puts one exercise's answer cell back to its stub in the
  saved notebook (every other cell untouched, a backup kept).
- ``show_box(text)``: a coloured box in a notebook, one plain line anywhere else.
- ``install()`` (called when ``course_lib`` is imported): in a learner's own Jupyter
  kernel, a check cell whose exercise is still the stub says "not done yet" instead of
  stopping Run All. Nowhere else: nbgrader's kernels (Validate, autograde) carry
  ``NBGRADER_EXECUTION``, and the course grader runs test cells outside IPython, so an
  unfinished exercise still scores 0 there.
"""

from __future__ import annotations

import ast
import html
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["check_all", "progress", "reset_exercise", "show_box", "install", "in_learner_kernel", "notebook_path"]

NOTEBOOK_ENV = "JPY_SESSION_NAME"  # set by jupyter_server for each notebook's kernel: the notebook's path
_installed = False


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return None


def _in_jupyter_kernel() -> bool:
    """A Jupyter kernel (ipykernel), not a plain IPython shell such as the grader's runner."""
    shell = _shell()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def in_learner_kernel() -> bool:
    """The learner's own kernel: a Jupyter kernel that nbgrader is not executing (Validate, autograde)."""
    return _in_jupyter_kernel() and not os.environ.get("NBGRADER_EXECUTION")


def show_box(text: str, *, ok: bool, title: str = "") -> None:
    """Show ``text`` as a green (``ok``) or amber box in a notebook; print it anywhere else."""
    if not _in_jupyter_kernel():
        print(text)
        return
    from IPython.display import display

    colour, back = ("#1a7f37", "#e6f4ea") if ok else ("#9a6700", "#fff8c5")
    body = html.escape(text)
    head = f"<b>{html.escape(title)}</b><br>" if title else ""
    display({"text/plain": text,
             "text/html": f"<div class='course-box course-{'ok' if ok else 'todo'}' style='border-left:4px solid "
                          f"{colour};background:{back};padding:.4em .8em;margin:.2em 0;font-family:var(--jp-ui-font-family,"
                          f"sans-serif)'>{head}{body}</div>"}, raw=True)


# --- Run All carries on past an unfinished exercise ---------------------------------------------------

def _calls_check(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == "Check") or (
                    isinstance(func, ast.Attribute) and func.attr == "Check"):
                return True
    return False


class _NotDoneYetCarriesOn(ast.NodeTransformer):
    """Wraps a cell in ``try: ... except (NotDoneYet, NotImplementedError)``, in the learner's kernel only.

    The handler shows "not done yet" (which exercise, or which unfinished function the cell called)
    and the cell ends without an error, so Run All goes on to the demonstrations and charts below.
    A cell's last expression is still displayed as its result (through ``sys.displayhook``, as
    IPython would). Cells with ``from __future__`` imports are left as they are.
    """

    def visit_Module(self, node: ast.Module) -> ast.Module:
        if not node.body or any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in node.body):
            return node
        body = list(node.body)
        if isinstance(body[-1], ast.Expr):
            show = ast.parse("__import__('sys').displayhook(None)").body[0]
            show.value.args = [body[-1].value]
            body[-1] = show
        handler = ast.parse(
            "try:\n    pass\n"
            "except (__import__('course_lib.checks', fromlist=['NotDoneYet']).NotDoneYet, NotImplementedError) as _exc:\n"
            "    __import__('course_lib.notebook', fromlist=['not_done_yet']).not_done_yet(_exc, "
            + repr(_calls_check(node)) + ")\n"
            "    del _exc\n").body[0]
        handler.body = body
        node.body = [handler]
        return ast.fix_missing_locations(node)


def _stub_name(exc: BaseException) -> str:
    """The function whose ``raise NotImplementedError()`` this is (the traceback's last frame)."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return ""
    code = last.tb_frame.f_code
    return getattr(code, "co_qualname", code.co_name)


def not_done_yet(exc: BaseException, check_cell: bool = True) -> None:
    """What a cell shows, in the learner's kernel, when an exercise it needs is still the stub."""
    from .checks import CheckFailed

    if check_cell:
        exercise = getattr(exc, "exercise_id", "") if isinstance(exc, CheckFailed) else _last_check_id()
        text = (f"[{exercise or 'exercise'}] Not done yet: the answer cell still raises NotImplementedError. "
                f"Write your answer in the cell above, run it, then run this check again. "
                f"(Validate and grading score it 0 until then; Run All carries on.)")
        show_box(text, ok=False, title=f"… {exercise + ': ' if exercise else ''}not done yet")
        return
    stub = _stub_name(exc)
    text = (f"This cell uses {stub + '()' if stub else 'an exercise'}, which is not done yet (it still raises "
            f"NotImplementedError), so it stopped there. Finish that exercise, then run this cell again.")
    show_box(text, ok=False, title="… not done yet: this cell needs an exercise")


def _last_check_id() -> str:
    from . import checks

    return getattr(checks, "last_exercise_id", "")


def install() -> None:
    """In the learner's own kernel, let Run All carry on past unfinished exercises (idempotent)."""
    global _installed
    if _installed or not in_learner_kernel():
        return
    shell = _shell()
    if not any(isinstance(t, _NotDoneYetCarriesOn) for t in shell.ast_transformers):
        shell.ast_transformers.append(_NotDoneYetCarriesOn())
    _installed = True
    try:
        text = lesson_banner(notebook_path())
    except (RuntimeError, OSError, LookupError, ValueError):
        return  # not a lesson of this course, or no notebook path: nothing to say
    show_box(text, ok=True)


def lesson_banner(notebook: Path) -> str:
    """One line for the top of a lesson: its expected time, your last check, what to do next.

    Shown once per kernel, when the lesson's setup cell imports course_lib in the learner's kernel.
    """
    lesson = _lesson_for(notebook)
    parts = [f"Lesson {lesson.number}: {lesson.title}"]
    if lesson.expected_time:
        parts.append(f"{lesson.expected_time}")
    workspace = os.environ.get("COURSE_WORKSPACE")
    entry = {}
    if workspace:
        try:
            state = json.loads((Path(workspace) / ".grader" / "progress.json").read_text(encoding="utf-8"))
            mine = (Path(workspace) / lesson.slug / lesson.notebook).resolve() == notebook.resolve()
            entry = state.get("lessons", {}).get(lesson.slug, {}) if mine else {}
        except (OSError, ValueError, AttributeError):
            entry = {}
    total = len(lesson.exercises)
    if entry:
        passed = sum(status == "passed" for status in entry.get("exercises", {}).values())
        parts.append(f"last check: {passed}/{total} exercises, {entry.get('score', 0):g}/{lesson.points:g} points")
    else:
        parts.append(f"{total} exercises, {lesson.points:g} points, not checked yet")
    return " · ".join(parts) + ". Save, then check_all() grades it with the hidden tests; progress() shows the course."


# --- which notebook is this? ---------------------------------------------------------------------------

def notebook_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The notebook this kernel runs (jupyter_server tells the kernel in ``JPY_SESSION_NAME``), or ``path``."""
    if path is not None:
        found = Path(path).expanduser()
        if not found.is_absolute():
            found = Path.cwd() / found
    else:
        session = os.environ.get(NOTEBOOK_ENV, "")
        if not session.endswith(".ipynb"):
            raise RuntimeError("cannot tell which notebook this kernel runs (JupyterLab sets JPY_SESSION_NAME; "
                               "it is not set here). Pass the path: check_all('why_cache.ipynb')")
        found = Path(session)
        if not found.is_absolute():
            found = Path.cwd() / found.name
    if not found.is_file():
        raise FileNotFoundError(f"{found}: no such notebook. Save it first (Ctrl+S), or pass its path.")
    return found.resolve()


def _lesson_for(notebook: Path):
    from .manifest import load_course

    course = load_course()
    for lesson in course.lessons:
        if notebook.parent.name == lesson.slug:
            return lesson
    for lesson in course.lessons:
        if notebook.name == lesson.notebook:
            return lesson
    names = ", ".join(l.notebook for l in course.lessons)
    raise LookupError(f"{notebook.name} is not a lesson of this course (its lessons are {names})")


# --- grade from the notebook ------------------------------------------------------------------------------

def grade_saved(notebook: Path, *, timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m grader check LESSON --notebook NOTEBOOK --json``; its JSON report."""
    from .manifest import COURSE_ROOT

    lesson = _lesson_for(notebook)
    cmd = [sys.executable, "-m", "grader", "check", lesson.slug, "--notebook", str(notebook), "--json"]
    env = dict(os.environ)
    env.pop("NBGRADER_EXECUTION", None)
    done = subprocess.run(cmd, cwd=os.environ.get("COURSE_ROOT") or COURSE_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"`{' '.join(cmd[1:])}` failed (exit {done.returncode}):\n"
                       f"{(done.stderr or done.stdout).strip()[-1500:]}")


class CheckReport(dict):
    """The JSON report of ``grader check``, shown as a table in a notebook."""

    def _repr_html_(self) -> str:
        rows = []
        for ex in self["exercises"]:
            ok = ex["status"] == "passed"
            mark = "<span style='color:#1a7f37'>✓ passed</span>" if ok else \
                f"<span style='color:#b42318'>✗ {html.escape(ex['status_text'])}</span>"
            detail = "" if ok else html.escape(ex.get("message", ""))
            if not ok and ex.get("hint"):
                detail += (f"<br><i>hint {ex['hint_level']}:</i> {html.escape(ex['hint'])} "
                           f"<code>hint({ex['id']!r})</code> for more")
            rows.append(f"<tr class='course-ex course-{'passed' if ok else 'failed'}'><td><code>{html.escape(ex['id'])}"
                        f"</code></td><td>{mark}</td><td>{ex['score']:g}/{ex['points']:g}</td>"
                        f"<td style='text-align:left'>{detail}</td></tr>")
        page = self.get("feedback_page", "")
        link = ""
        if page:
            rel = os.path.relpath(page, Path(self["notebook"]).parent)
            link = f"<p>Feedback with your charts: <a href='{html.escape(rel)}'>{html.escape(rel)}</a></p>"
        notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in self.get("notes", []))
        colour = "#1a7f37" if self["passed"] else "#b42318"
        return (f"<div class='course-report'><p style='color:{colour}'><b>{'✓' if self['passed'] else '✗'} "
                f"{html.escape(self['lesson'])}: "
                f"{self['score']:g}/{self['max_score']:g} points</b> ({html.escape(self['status_text'])}; graded "
                f"the file saved at {html.escape(self['saved_at'])})</p>{notes}"
                f"<table><tr><th>exercise</th><th>result</th><th>points</th><th>what failed</th></tr>"
                f"{''.join(rows)}</table>{link}</div>")

    def __repr__(self) -> str:
        return self["text"]


def check_all(notebook: str | os.PathLike[str] | None = None) -> CheckReport:
    """Grade this notebook's saved file with the hidden tests, exactly as ``python -m grader check`` does.

    Save first (Ctrl+S): what is graded is the file on disk, not the cells in the browser.
    """
    path = notebook_path(notebook)
    saved = datetime.fromtimestamp(path.stat().st_mtime).strftime("%H:%M:%S")
    if _in_jupyter_kernel():
        show_box(f"Grading {path.name} as saved at {saved} with the hidden tests ...", ok=True)
    report = CheckReport(grade_saved(path))
    report["saved_at"] = saved
    return report


class _Text(str):
    def __repr__(self) -> str:
        return str(self)


def progress() -> str:
    """Where you are in the course (lessons passed, points, next exercise): ``python -m grader progress``."""
    from .manifest import COURSE_ROOT

    done = subprocess.run([sys.executable, "-m", "grader", "progress"], cwd=os.environ.get("COURSE_ROOT") or COURSE_ROOT,
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"`grader progress` failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return _Text(done.stdout.rstrip())


# --- reset one exercise -------------------------------------------------------------------------------------

def reset_exercise(exercise_id: str, notebook: str | os.PathLike[str] | None = None) -> Path:
    """Put exercise ``exercise_id``'s answer cell back to the stub of the released lesson, in the saved file.

    Every other cell stays as it is; the notebook as it was is kept as ``<name>.ipynb.bak-<time>``
    next to it. Reload the notebook afterwards (File > Reload Notebook from Disk). Returns the backup.
    """
    import shutil

    import nbformat

    from .manifest import COURSE_ROOT

    if not isinstance(exercise_id, str) or not exercise_id:
        raise TypeError('reset_exercise needs the exercise id, e.g. reset_exercise("cache-aside-read")')
    path = notebook_path(notebook)
    lesson = _lesson_for(path)
    ids = [e.id for e in lesson.exercises]
    if exercise_id not in ids:
        raise KeyError(f"lesson {lesson.slug} has no exercise {exercise_id!r}; its exercises are: {', '.join(ids)}")
    release = nbformat.read(lesson.release_path(Path(os.environ.get("COURSE_ROOT") or COURSE_ROOT)), as_version=4)
    stub = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise_id)
    mine = nbformat.read(path, as_version=4)
    target = [c for c in mine.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise_id]
    if not target:
        raise LookupError(f"{path.name} has no answer cell {exercise_id!r} any more: copy it from "
                          f"{lesson.release_path(COURSE_ROOT)}")
    backup = path.with_name(f"{path.name}.bak-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    shutil.copy2(path, backup)
    target[0].source = stub.source
    target[0].outputs = []
    target[0].execution_count = None
    nbformat.write(mine, path)
    show_box(f"{exercise_id} is its stub again in {path.name} (your notebook as it was: {backup.name}). "
             f"Reload it: File > Reload Notebook from Disk.", ok=True)
    return backup
