"""The guides are self-contained: every file they name is in the repository, every command they run exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from grader.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_every_markdown_file_a_guide_names_exists(guide):
    named = set(re.findall(r"[A-Za-z0-9_./-]+\.md\b", guide.read_text(encoding="utf-8")))
    missing = sorted(n for n in named if not (ROOT / n).is_file() and not (guide.parent / n).is_file())
    assert not missing, f"{guide.relative_to(ROOT)} names {missing}, which are not in the repository"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_every_grader_command_a_guide_runs_exists(guide):
    commands = {importlib.import_module(f"grader.commands.{module}").NAME for module in COMMANDS}
    used = set(re.findall(r"(?:python -m grader|\$G)(?: --course \S+)? ([a-z][a-z_-]*)", guide.read_text(encoding="utf-8")))
    assert used - commands == set(), (f"{guide.relative_to(ROOT)} runs grader command(s) {sorted(used - commands)}; "
                                      f"the commands are {sorted(commands)}")
