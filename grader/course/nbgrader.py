"""The instructor's side of nbgrader: run its commands on a course folder, open its gradebook.

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

__all__ = ["run_nbgrader", "nbgrader_env", "db_url", "ensure_assignment", "exchange_options"]


def nbgrader_env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def exchange_options(exchange: Path | None) -> list[str]:
    return [f"--Exchange.root={Path(exchange).resolve()}"] if exchange else []


def run_nbgrader(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in the course folder; raise NbgraderFailed with its log when it fails."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [line for line in log if "| ERROR]" in line or "| CRITICAL]" in line or "Error:" in line]
        shown = "\n".join((errors or log)[-12:])
        raise NbgraderFailed(f"`nbgrader {' '.join(args[:2])}` failed:\n{shown}")
    return proc


def db_url(root: Path) -> str:
    """nbgrader's default gradebook for the course folder."""
    return f"sqlite:///{root / 'gradebook.db'}"


def ensure_assignment(root: Path, lesson: Lesson, *, force: bool = False) -> None:
    """Make sure the gradebook knows the lesson: its notebook, grade cells and answer cells.

    ``nbgrader generate_assignment`` (with the database) records them; the
    generated copy goes to a scratch folder, so ``notebooks/`` is not touched.
    """
    from nbgrader.api import Gradebook, MissingEntry

    if not force:
        try:
            with Gradebook(db_url(root), course_id(root)) as gb:
                notebook = gb.find_notebook(Path(lesson.notebook).stem, lesson.slug)
                cells = {c.name for c in notebook.grade_cells}
                if all(e.tests_cell_id in cells for e in lesson.exercises):
                    return
        except MissingEntry:
            pass
    scratch = Path(tempfile.mkdtemp(prefix="gen-", dir=root))
    try:
        run_nbgrader(root, "generate_assignment", lesson.slug, "--force",
                     f"--CourseDirectory.release_directory={scratch}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
