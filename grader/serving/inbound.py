"""The exchange's inbound folder: which submissions are complete, and their copy into ``submitted/``.

nbgrader's ``submit`` writes ``<exchange>/<course>/inbound/<student>+<lesson>+<timestamp>+<random>/``:
the learner's files first, then ``timestamp.txt``, then ``submission_secret.txt``. A folder counts
once both exist (a submission still being copied is left for the next scan). ``collect`` would copy
the latest one into ``submitted/<student>/<lesson>/``; ``copy_to_submitted`` does the same for one
submission, atomically, and never replaces a newer one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..classroom.autograde import STUDENT_ID

__all__ = ["InboundSubmission", "inbound_folder", "scan_inbound", "copy_to_submitted", "submitted_timestamp"]

COMPLETE = ("timestamp.txt", "submission_secret.txt")  # nbgrader writes these last, in this order


@dataclass(frozen=True)
class InboundSubmission:
    key: str  # the folder's name: unique per submission
    student: str
    lesson: str
    timestamp: str
    folder: Path

    @property
    def when(self) -> datetime:
        from nbgrader.utils import parse_utc

        return parse_utc(self.timestamp)


def inbound_folder(exchange: Path, course: str) -> Path:
    return exchange / course / "inbound"


def _owner(path: Path) -> str:
    import pwd

    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def scan_inbound(exchange: Path, course: str, lessons: set[str], *,
                 check_owner: bool = False) -> tuple[list[InboundSubmission], dict[str, str]]:
    """(complete submissions of these lessons, oldest first; {folder name: why it is not one of them}).

    With ``check_owner`` (a JupyterHub, where each learner submits as their own user) a folder whose owner
    is not the student its name gives is refused: anyone who can write to inbound/ could name another learner.
    """
    folder = inbound_folder(exchange, course)
    found: list[InboundSubmission] = []
    other: dict[str, str] = {}
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return [], []
    for name in names:
        parts = name.rsplit("+", 3)
        path = folder / name
        if name.startswith(".") or not all((path / f).is_file() for f in COMPLETE):
            continue
        if len(parts) < 3 or parts[1] not in lessons or not STUDENT_ID.match(parts[0]):
            other[name] = "not a submission of a lesson of this course"
            continue
        if check_owner and _owner(path) != parts[0]:
            other[name] = f"owned by {_owner(path)}, not by the student {parts[0]} its name gives"
            continue
        try:
            timestamp = (path / "timestamp.txt").read_text(encoding="utf-8").strip()
            item = InboundSubmission(name, parts[0], parts[1], timestamp, path)
            item.when  # noqa: B018 - a timestamp nbgrader cannot parse makes it not a submission
        except (OSError, ValueError, OverflowError):
            other[name] = "its timestamp.txt is not a time nbgrader can read"
            continue
        found.append(item)
    found.sort(key=lambda item: (item.when, item.key))
    return found, other


def submitted_timestamp(root: Path, student: str, lesson: str) -> datetime | None:
    from nbgrader.utils import parse_utc

    try:
        return parse_utc((root / "submitted" / student / lesson / "timestamp.txt").read_text(encoding="utf-8").strip())
    except (OSError, ValueError, OverflowError):
        return None


def copy_to_submitted(root: Path, item: InboundSubmission) -> bool:
    """Make ``submitted/<student>/<lesson>/`` this submission (as ``nbgrader collect --update`` would); False,
    and nothing changed, when the folder already holds a newer one. The copy is staged beside it and renamed in; a kill in
    between leaves the old folder or none, and the service copies it again on its next start."""
    existing = submitted_timestamp(root, item.student, item.lesson)
    if existing is not None and existing > item.when:
        return False
    target = root / "submitted" / item.student / item.lesson
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{item.lesson}.", dir=target.parent))
    try:
        shutil.copytree(item.folder, stage / "new")
        if target.exists():
            os.replace(target, stage / "old")  # the old copy is still in the exchange's inbound
        os.replace(stage / "new", target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return True
