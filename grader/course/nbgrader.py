"""The one nbgrader adapter: run its commands on a course folder, generate a lesson, open its gradebook.

Every nbgrader command runs as a subprocess in the course folder (so it reads
the course's ``nbgrader_config.py``) with the virtual environment's ``bin/``
first on ``PATH`` (nbgrader runs ``alembic`` to create its gradebook).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course_lib.manifest import Lesson

from ..errors import NbgraderFailed
from .layout import course_id

__all__ = ["run_nbgrader", "nbgrader_env", "db_url", "generate", "ensure_assignment", "exchange_options"]


def nbgrader_env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def exchange_options(exchange: Path | None) -> list[str]:
    return [f"--Exchange.root={Path(exchange).resolve()}"] if exchange else []


def run_nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in the course folder; raise NbgraderFailed with its log when it fails."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [line for line in log if "| ERROR]" in line or "| CRITICAL]" in line or "Error:" in line]
        shown = "\n".join((errors or log)[-12:])
        raise NbgraderFailed(f"`nbgrader {' '.join(args[:2])}` failed:\n{shown}")
    return proc


def db_url(root: Path) -> str:
    """nbgrader's default gradebook for the course folder."""
    return f"sqlite:///{root / 'gradebook.db'}"


def generate(root: Path, lesson: Lesson, into: Path | None = None, *, gradebook: bool = False) -> Path:
    """``nbgrader generate_assignment`` for one lesson into ``into/<slug>/``; return the generated notebook.

    ``into`` defaults to ``root/notebooks``. With ``gradebook``, nbgrader also records the lesson (its
    notebook, grade cells and answer cells) in the course's gradebook. The lesson is generated into a
    scratch folder beside its target first, so a failure leaves the target as it was.
    """
    into = into or root / "notebooks"
    into.mkdir(parents=True, exist_ok=True)
    scratch = into / f".generating-{lesson.slug}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        run_nbgrader(root, "generate_assignment", lesson.slug, "--force", *([] if gradebook else ["--no-db"]),
                     f"--CourseDirectory.release_directory={scratch}")
        produced = scratch / lesson.slug / lesson.notebook
        if not produced.is_file():
            raise NbgraderFailed(f"nbgrader generated no {lesson.notebook} for {lesson.slug}: is "
                                 f"solutions/{lesson.slug}/{lesson.notebook} there, named as in course.toml?")
        target, previous = into / lesson.slug, into / f".previous-{lesson.slug}"
        shutil.rmtree(previous, ignore_errors=True)
        if target.exists():
            target.rename(previous)
        produced.parent.rename(target)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target / lesson.notebook


def ensure_assignment(root: Path, lesson: Lesson) -> None:
    """Make sure the gradebook knows the lesson: its notebook, grade cells and answer cells.

    ``generate`` with the gradebook records them; the generated copy goes to a
    scratch folder, so ``notebooks/`` is not touched.
    """
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(db_url(root), course_id(root)) as gb:
            notebook = gb.find_notebook(Path(lesson.notebook).stem, lesson.slug)
            cells = {c.name for c in notebook.grade_cells}
            if all(e.tests_cell_id in cells for e in lesson.exercises):
                return
    except MissingEntry:
        pass
    with tempfile.TemporaryDirectory(prefix="gen-", dir=root) as scratch:
        generate(root, lesson, Path(scratch), gradebook=True)
