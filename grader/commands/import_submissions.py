"""``import``: take submissions from a folder or a zip file (for courses without JupyterHub)."""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from ..autograde import STUDENT_ID
from ..cli import UsageError
from ..course import course_root, find_lesson

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


def _safe_extract(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            target = (into / member.filename).resolve()
            if not str(target).startswith(str(into.resolve())):
                raise UsageError(f"{archive}: refusing the entry {member.filename!r} (it points outside the archive)")
        zf.extractall(into)


def run(args: argparse.Namespace) -> int:
    root = course_root()
    lesson = find_lesson(args.lesson)
    if not args.path.exists():
        raise UsageError(f"{args.path}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="import-") as tmp:
        base = args.path
        if args.path.is_file() and args.path.suffix == ".zip":
            try:
                _safe_extract(args.path, Path(tmp))
            except zipfile.BadZipFile:
                raise UsageError(f"{args.path}: not a valid zip file") from None
            base = Path(tmp)
        found = _candidates(base, lesson.notebook, args.student)
        bad = sorted(s for s in found if not STUDENT_ID.match(s))
        for student in bad:
            print(f"  skipped {found.pop(student)}: {student!r} is not a usable student id "
                  f"(letters, digits, '_', '.', '@', '-')")
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
    print(f"imported {len(found)} submission(s) of {lesson.slug}" + (f", skipped {len(bad)}" if bad else "")
          + f"; next: python -m grader autograde {lesson.slug}")
    return 0 if found else 1
