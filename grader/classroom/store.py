"""Per-submission results on disk: one JSON file per learner and lesson, written atomically.

``<course>/grader-results/<lesson>/<student>.json`` holds the NotebookResult,
the submission's fingerprint and timestamp. A file is written to a temporary
name, flushed to disk and renamed, so a killed run leaves either the whole
result or none; a rerun skips every submission whose fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..grading.result import NotebookResult

__all__ = ["RESULTS_DIR", "results_dir", "result_path", "load_record", "load_lesson_records",
           "fingerprint", "REFERENCE"]

RESULTS_DIR = "grader-results"
REFERENCE = ".reference"  # the solution's own result, for class reports


def results_dir(root: Path, slug: str) -> Path:
    return root / RESULTS_DIR / slug


def result_path(root: Path, slug: str, student: str) -> Path:
    return results_dir(root, slug) / f"{student}.json"


def fingerprint(*paths: Path, extra: str = "") -> str:
    """Hash of the files' bytes (a missing file counts as empty) and ``extra``."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def load_record(path: Path) -> dict[str, Any] | None:
    """A stored record ({'student', 'lesson', 'fingerprint', 'timestamp', 'result'}), or None if absent/broken."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["result"] = NotebookResult.from_dict(record["result"])
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_lesson_records(root: Path, slug: str) -> dict[str, dict[str, Any]]:
    """{student: record} for every stored result of a lesson (the reference excluded)."""
    found = {}
    folder = results_dir(root, slug)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue
        record = load_record(path)
        if record is not None:
            found[path.stem] = record
    return found
