"""nbgrader's exchange for a class: release a lesson, collect its submissions, release its feedback.

The ``release``, ``collect`` and ``feedback --release`` commands and the ``demo`` call these functions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from course_lib.manifest import Lesson

from ..atomic import write_text_atomic
from ..course.nbgrader import exchange_options, generate, run_nbgrader
from .released import mark_released, record_feedback_release

__all__ = ["Released", "Collected", "release_lesson", "collect_lesson", "release_feedback", "GENERATED"]

GENERATED = Path(".grader") / "released.json"  # {slug: sha256 of the notebooks/ file the grader last generated}


@dataclass(frozen=True)
class Released:
    notebook: Path  # notebooks/<slug>/<notebook>, regenerated
    backup: Path | None  # where a hand-edited notebooks/<slug> was copied first
    to_exchange: bool


@dataclass(frozen=True)
class Collected:
    total: int  # submissions in submitted/ for the lesson
    new: list[str]
    updated: list[str]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def release_lesson(root: Path, lesson: Lesson, *, exchange: Path | None = None, to_exchange: bool = True,
                   force: bool = False) -> Released:
    """Regenerate ``notebooks/<slug>`` (recording the lesson in the gradebook) and release it to the exchange.

    A ``notebooks/<slug>`` edited by hand since the grader generated it is copied to
    ``.grader/backups/<slug>-<time>`` first: it is never lost.
    """
    record_path = root / GENERATED
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    backup = None
    target = root / "notebooks" / lesson.slug
    with tempfile.TemporaryDirectory(prefix="release-", dir=root) as scratch:
        fresh = generate(root, lesson, Path(scratch), gradebook=True).parent
        current = target / lesson.notebook
        if current.is_file() and _sha(current) not in (_sha(fresh / lesson.notebook), record.get(lesson.slug)):
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            backup = root / ".grader" / "backups" / f"{lesson.slug}-{stamp}"
            shutil.copytree(target, backup)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(fresh, target)
    record[lesson.slug] = _sha(target / lesson.notebook)
    write_text_atomic(record_path, json.dumps(record, indent=1))
    if to_exchange:
        run_nbgrader(root, "release_assignment", lesson.slug, *exchange_options(exchange), *(["--force"] if force else []))
    mark_released(root, lesson.slug, "exchange" if to_exchange else "notebooks")
    return Released(target / lesson.notebook, backup, to_exchange)


def _submitted(root: Path, lesson: Lesson) -> dict[str, float]:
    return {p.parent.parent.name: p.stat().st_mtime for p in (root / "submitted").glob(f"*/{lesson.slug}/timestamp.txt")}


def collect_lesson(root: Path, lesson: Lesson, *, exchange: Path | None = None, check_owner: bool = False) -> Collected:
    """Copy the learners' latest submissions of the lesson from the exchange into ``submitted/`` (newer replace older)."""
    before = _submitted(root, lesson)
    run_nbgrader(root, "collect", lesson.slug, "--update", *exchange_options(exchange),
                 f"--ExchangeCollect.check_owner={check_owner}")
    after = _submitted(root, lesson)
    return Collected(len(after), sorted(s for s in after if s not in before),
                     sorted(s for s in after if s in before and after[s] != before[s]))


def release_feedback(root: Path, lesson: Lesson, digests: dict[str, str], *, exchange: Path | None = None,
                     students: list[str] | None = None) -> None:
    """``nbgrader release_feedback`` for the lesson (only ``students`` when named), and record what was released."""
    if students and len(students) > 1:
        for student in students:
            run_nbgrader(root, "release_feedback", lesson.slug, f"--student={student}", *exchange_options(exchange))
    else:
        run_nbgrader(root, "release_feedback", lesson.slug, *[f"--student={s}" for s in students or []],
                     *exchange_options(exchange))
    record_feedback_release(root, lesson.slug, digests)
