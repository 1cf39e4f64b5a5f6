"""`make lab`'s command serves JupyterLab on the learner's workspace with nbgrader's extensions enabled."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

from course_lib.manifest import COURSE_ROOT
from grader.workspace import seed_workspace
from tests.support import free_port, stop_server, wait_for_http

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_seeding_never_overwrites_a_learners_work(tmp_path):
    release = tmp_path / "notebooks"
    (release / "01-a").mkdir(parents=True)
    (release / "01-a" / "a.ipynb").write_text("release v1")
    workspace = tmp_path / "workspace"
    assert [p.name for p in seed_workspace(release, workspace).copied] == ["a.ipynb"]
    (workspace / "01-a" / "a.ipynb").write_text("my answers")
    (release / "01-a" / "a.ipynb").write_text("release v2")
    (release / "02-b").mkdir()
    (release / "02-b" / "b.ipynb").write_text("new lesson")
    report = seed_workspace(release, workspace)
    assert (workspace / "01-a" / "a.ipynb").read_text() == "my answers"
    assert [p.name for p in report.kept] == ["a.ipynb"] and [p.name for p in report.copied] == ["b.ipynb"]


def test_lab_serves_the_workspace_with_nbgrader_enabled(tmp_path):
    port, token = free_port(), "course-test-token"
    workspace = tmp_path / "workspace"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "lab", "--workspace", str(workspace), "--port", str(port), "--no-browser",
         "--", f"--IdentityProvider.token={token}"],
        cwd=COURSE_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, what="JupyterLab")
        except RuntimeError as exc:
            pytest.fail(f"{exc}\n{proc.stdout.read() if proc.poll() is not None else ''}")
        status, page = _get(f"http://127.0.0.1:{port}/lab?token={token}")
        assert status == 200
        config = json.loads(re.search(r'id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1))
        names = {ext["name"] for ext in config["federated_extensions"]}
        assert "@jupyter/nbgrader" in names
        disabled = config.get("disabledExtensions", [])
        assert not any(str(d).startswith("@jupyter/nbgrader") for d in disabled)
        status, contents = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
        listed = {item["name"] for item in json.loads(contents)["content"]}
        released = {p.name for p in (COURSE_ROOT / "notebooks").iterdir() if p.is_dir() and not p.name.startswith(".")}
        assert released <= listed, "the workspace should hold a copy of every released lesson"
        status, body = _get(f"http://127.0.0.1:{port}/formgrader?token={token}")
        assert status == 200 and "formgrader" in body.lower()
    finally:
        stop_server(proc)
