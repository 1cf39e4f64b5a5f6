"""Which lessons are released to the class, and which learners' released feedback is stale.

``.grader/released-lessons.json`` ({slug: {"at": ISO time, "how": "exchange" | "notebooks" | "import"}})
is written by ``release`` and ``import``; the instructor commands (collect, autograde, feedback, report,
export) act on these lessons unless lessons are named, so an unreleased lesson never reaches nbgrader's
gradebook and totals are over what the class was given.

``.grader/feedback-released.json`` ({slug: {student: digest}}) records what each learner's released
feedback page said (a digest of scores, comments, penalty and status); a learner whose grades differ
from that digest has stale feedback until ``feedback --release`` runs again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic

__all__ = ["released_slugs", "mark_released", "feedback_digests", "record_feedback_release"]

RELEASED = Path(".grader") / "released-lessons.json"
FEEDBACK = Path(".grader") / "feedback-released.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def released_slugs(root: Path) -> set[str]:
    return set(_load(root / RELEASED))


def mark_released(root: Path, slug: str, how: str) -> None:
    record = _load(root / RELEASED)
    record.setdefault(slug, {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "how": how})
    write_text_atomic(root / RELEASED, json.dumps(record, indent=1))


def feedback_digests(root: Path) -> dict[str, dict[str, str]]:
    return _load(root / FEEDBACK)


def record_feedback_release(root: Path, slug: str, digests: dict[str, str]) -> None:
    record = _load(root / FEEDBACK)
    record.setdefault(slug, {}).update(digests)
    write_text_atomic(root / FEEDBACK, json.dumps(record, indent=1, sort_keys=True))
