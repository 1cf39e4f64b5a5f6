"""``import``: take submissions from a folder or a zip file (for courses without JupyterHub)."""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from ..classroom.autograde import STUDENT_ID
from ..classroom.released import mark_released
from ..course.layout import course_root, find_lesson
from ..errors import UsageError

NAME = "import"
HELP = ("import submissions of one lesson from a folder or .zip: <student>/.../<notebook>.ipynb or "
        "<student>.ipynb per learner; they land in submitted/<student>/<lesson>/ like collected ones")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lesson", help="lesson slug or number")
    parser.add_argument("path", type=Path, help="a folder, a .zip file, or one notebook (with --student)")
    parser.add_argument("--student", help="the student id, when PATH is a single notebook")


def _candidates(base: Path, lesson_notebook: str, student: str | None) -> dict[str, Path]:
    """{student: notebook} found under base."""
    if base.is_file():
        if not student:
            raise UsageError("importing a single notebook needs --student NAME")
        return {student: base}
    found: dict[str, Path] = {}
    for path in sorted(base.rglob("*.ipynb")):
        parts = path.relative_to(base).parts
        if any(p.startswith((".", "__MACOSX")) for p in parts) or ".ipynb_checkpoints" in parts:
            continue
        who = parts[0] if len(parts) > 1 else path.stem
        # prefer the lesson's notebook name when a learner's folder holds several notebooks
        if who not in found or path.name == lesson_notebook:
            found[who] = path
    return found


MAX_STUDENT_ID = 128  # nbgrader's gradebook column (Student.id is a String(128)); file names stop at 255 bytes


def id_problem(student: str) -> str | None:
    """Why ``student`` cannot be a student id, or None when it can."""
    if len(student) > MAX_STUDENT_ID:
        return f"it is {len(student)} characters long (at most {MAX_STUDENT_ID})"
    if not STUDENT_ID.match(student):
        return "use letters, digits, '_', '.', '@', '-'"
    return None


def _safe_extract(archive: Path, into: Path) -> list[str]:
    """Extract the archive; return the entries left out (with why), so one bad name never sinks the rest."""
    skipped = []
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            target = (into / member.filename).resolve()
            if not str(target).startswith(str(into.resolve())):
                raise UsageError(f"{archive}: refusing the entry {member.filename!r} (it points outside the archive)")
        for member in zf.infolist():
            parts = Path(member.filename).parts
            if any(len(part.encode()) > 255 for part in parts):
                skipped.append(member.filename)
                continue
            try:
                zf.extract(member, into)
            except OSError as exc:
                skipped.append(member.filename)
                print(f"  skipped the entry {member.filename[:60]!r}...: {exc.strerror or exc}")
    return skipped


def run(args: argparse.Namespace) -> int:
    root = course_root()
    lesson = find_lesson(args.lesson)
    if not args.path.exists():
        raise UsageError(f"{args.path}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="import-") as tmp:
        base, too_long = args.path, []
        if args.path.is_file() and args.path.suffix == ".zip":
            try:
                too_long = _safe_extract(args.path, Path(tmp))
            except zipfile.BadZipFile:
                raise UsageError(f"{args.path}: not a valid zip file") from None
            base = Path(tmp)
        found = _candidates(base, lesson.notebook, args.student)
        bad = sorted(s for s in found if id_problem(s))
        for student in bad:
            shown = student if len(student) <= 40 else student[:40] + "..."
            print(f"  skipped {shown!r}: not a usable student id ({id_problem(student)}); "
                  f"rename that learner's folder or notebook and import it again")
            found.pop(student)
        for name in {Path(n).parts[0] for n in too_long if Path(n).parts}:
            print(f"  skipped {name[:40]!r}...: a name in the archive is longer than 255 bytes, so it cannot be a "
                  f"file or a student id (at most {MAX_STUDENT_ID} characters); rename it and import it again")
            bad.append(name)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        for student, notebook in sorted(found.items()):
            folder = root / "submitted" / student / lesson.slug
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            shutil.copyfile(notebook, folder / lesson.notebook)
            (folder / "timestamp.txt").write_text(stamp, encoding="utf-8")
            (folder / "submission_secret.txt").write_text(secrets.token_hex(32), encoding="utf-8")
            print(f"  {student}: {notebook.name} -> submitted/{student}/{lesson.slug}/{lesson.notebook}")
    if found:
        mark_released(root, lesson.slug, "import")
    print(f"imported {len(found)} submission(s) of {lesson.slug}" + (f", skipped {len(bad)}" if bad else "")
          + f"; next: python -m grader autograde {lesson.slug}")
    return 0 if found else 1
