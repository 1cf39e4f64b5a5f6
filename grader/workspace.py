"""The learner's workspace: a git-ignored copy of notebooks/ that nothing of ours overwrites."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SeedReport", "seed_workspace", "DEFAULT_WORKSPACE"]

DEFAULT_WORKSPACE = "workspace"


@dataclass
class SeedReport:
    copied: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # learner's copy differs from the current release
    up_to_date: list[Path] = field(default_factory=list)


def seed_workspace(release_dir: Path, workspace: Path) -> SeedReport:
    """Copy every released notebook that the workspace does not have yet.

    A notebook already in the workspace is never replaced, even when the
    release changed: the learner's work wins, and the report lists it so the
    learner can compare with the new release in ``notebooks/``.
    """
    report = SeedReport()
    for released in sorted(release_dir.glob("*/*.ipynb")):
        if released.parent.name.startswith("."):
            continue
        target = workspace / released.relative_to(release_dir)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(released, target)
            report.copied.append(target)
        elif target.read_bytes() == released.read_bytes():
            report.up_to_date.append(target)
        else:
            report.kept.append(target)
    return report
