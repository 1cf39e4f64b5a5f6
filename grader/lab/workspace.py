"""The learner's workspace: a git-ignored copy of notebooks/ that nothing of ours overwrites."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text_atomic

__all__ = ["SeedReport", "seed_workspace", "DEFAULT_WORKSPACE", "WORKSPACE_ENV", "SEEDED_FILE", "workspace_from"]

DEFAULT_WORKSPACE = "workspace"
WORKSPACE_ENV = "COURSE_WORKSPACE"  # `lab` sets it for its terminals and kernels
SEEDED_FILE = Path(".grader") / "seeded.json"  # {"<slug>/<notebook>": sha256 of the release it was copied from}


@dataclass
class SeedReport:
    copied: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # the release changed since the learner's copy was made
    up_to_date: list[Path] = field(default_factory=list)  # the learner's copy came from the current release


def workspace_from(option: Path | None, root: Path) -> Path:
    """``--workspace``, else ``$COURSE_WORKSPACE``, else ``<course>/workspace``."""
    return Path(option or os.environ.get(WORKSPACE_ENV) or root / DEFAULT_WORKSPACE).resolve()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_seeded(workspace: Path) -> dict[str, str]:
    try:
        data = json.loads((workspace / SEEDED_FILE).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def seed_workspace(release_dir: Path, workspace: Path) -> SeedReport:
    """Copy every released notebook that the workspace does not have yet.

    A notebook already in the workspace is never replaced, even when the
    release changed: the learner's work wins. Which release each copy was made
    from is kept in ``.grader/seeded.json``, so the report lists a lesson as
    ``kept`` (a newer release exists) only when the release changed since the
    copy was made, not because the learner worked in it. A copy made before
    that record existed counts as made from the current release.
    """
    report = SeedReport()
    seeded = _load_seeded(workspace)
    changed = False
    for released in sorted(release_dir.glob("*/*.ipynb")):
        if released.parent.name.startswith("."):
            continue
        key = released.relative_to(release_dir).as_posix()
        target = workspace / released.relative_to(release_dir)
        digest = _sha(released)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(released, target)
            report.copied.append(target)
        elif key not in seeded or seeded[key] == digest or target.read_bytes() == released.read_bytes():
            report.up_to_date.append(target)
        else:
            report.kept.append(target)
            continue  # remember the release the copy came from until the learner takes the update
        if seeded.get(key) != digest:
            seeded[key], changed = digest, True
    if changed:
        write_text_atomic(workspace / SEEDED_FILE, json.dumps(seeded, indent=1, sort_keys=True))
    return report
