"""Generate the learner versions (``notebooks/``) from ``solutions/`` with nbgrader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from course_lib.manifest import Lesson

from ..errors import NbgraderFailed

__all__ = ["generate_release"]


def _nbgrader_env() -> dict[str, str]:
    # nbgrader runs the `alembic` command it installs next to the interpreter.
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def generate_release(root: Path, lesson: Lesson, out_dir: Path | None = None) -> Path:
    """Run ``nbgrader generate_assignment`` for one lesson; return the generated notebook's path.

    ``out_dir`` defaults to ``root/notebooks``. Generation goes to a scratch
    folder first, so a failure never leaves a half-written release behind.
    """
    out_dir = out_dir or root / "notebooks"
    scratch = out_dir / f".generating-{lesson.slug}"
    shutil.rmtree(scratch, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "nbgrader", "generate_assignment", lesson.slug, "--no-db", "--force",
        f"--CourseDirectory.root={root}", f"--CourseDirectory.release_directory={scratch}",
    ]
    proc = subprocess.run(cmd, cwd=root, env=_nbgrader_env(), capture_output=True, text=True)
    produced = scratch / lesson.slug / lesson.notebook
    if proc.returncode != 0 or not produced.is_file():
        shutil.rmtree(scratch, ignore_errors=True)
        raise NbgraderFailed(f"nbgrader could not generate {lesson.slug}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    target = out_dir / lesson.slug
    backup = out_dir / f".previous-{lesson.slug}"
    shutil.rmtree(backup, ignore_errors=True)
    if target.exists():
        target.rename(backup)
    (scratch / lesson.slug).rename(target)
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(backup, ignore_errors=True)
    return target / lesson.notebook
