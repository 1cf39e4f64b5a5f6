"""`make lab`'s command serves JupyterLab on the learner's workspace: a learner's lab, terminals that can grade."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from course_lib.manifest import COURSE_ROOT, load_course
from grader.lab.workspace import seed_workspace
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


def test_newer_release_only_when_the_release_changed(tmp_path):
    release, workspace = tmp_path / "notebooks", tmp_path / "workspace"
    (release / "01-a").mkdir(parents=True)
    (release / "01-a" / "a.ipynb").write_text("release v1")
    seed_workspace(release, workspace)
    (workspace / "01-a" / "a.ipynb").write_text("my answers")
    again = seed_workspace(release, workspace)  # a second `make lab`, nothing released
    assert again.kept == [] and [p.name for p in again.up_to_date] == ["a.ipynb"]
    (release / "01-a" / "a.ipynb").write_text("release v2")
    assert [p.name for p in seed_workspace(release, workspace).kept] == ["a.ipynb"]
    assert [p.name for p in seed_workspace(release, workspace).kept] == ["a.ipynb"]  # said until taken
    assert (workspace / "01-a" / "a.ipynb").read_text() == "my answers"


def test_terminal_shell_puts_the_course_first_after_the_login_profile(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # a login profile that rebuilds PATH from scratch, as Debian's /etc/profile and conda lines do
    (home / ".profile").write_text('PATH="/usr/bin:/bin"\nexport PATH\n')
    (home / ".bash_profile").write_text('. ~/.profile\n')
    venv_bin = str(Path(sys.executable).parent)
    for shell in ("/bin/bash", "/bin/sh", "/bin/dash"):
        if not Path(shell).exists():
            continue
        env = {"HOME": str(home), "SHELL": shell, "PATH": "/usr/bin:/bin", "COURSE_SHELL_DIR": str(tmp_path / "rc")}
        out = subprocess.run([sys.executable, "-m", "grader.lab.shell", "--print-path"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=tmp_path)
        assert out.stdout.strip().split(":")[0] == venv_bin, (shell, out.stdout, out.stderr)


def test_lab_serves_the_workspace_as_a_learners_lab(tmp_path):
    port, token = free_port(), "course-test-token"
    workspace = tmp_path / "workspace"
    (tmp_path / "jupyter-config").mkdir()
    # an exchange that does not exist: the Assignments panel must be absent, not show errors
    (tmp_path / "jupyter-config" / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(tmp_path / 'no-exchange')!r}\n")
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
        disabled = set(config.get("disabledExtensions", []))
        # a learner's lab: no instructor tools, and no Assignments panel without an exchange; Validate stays
        assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list"} <= disabled
        assert "@jupyter/nbgrader:validate-assignment" not in disabled
        assert not (tmp_path / "jupyter-config" / "labconfig").exists()  # the user's own config is untouched
        status, contents = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
        listed = {item["name"] for item in json.loads(contents)["content"]}
        released = {p.name for p in (COURSE_ROOT / "notebooks").iterdir() if p.is_dir() and not p.name.startswith(".")}
        assert released <= listed, "the workspace should hold a copy of every released lesson"
        with pytest.raises(urllib.error.HTTPError) as missing:
            _get(f"http://127.0.0.1:{port}/formgrader?token={token}")
        assert missing.value.code == 404
        status, terminals = _get(f"http://127.0.0.1:{port}/api/terminals?token={token}")
        assert status == 200
        # Validate (nbgrader's button posts here): a fresh lesson fails, each check by its message alone
        lesson = load_course().lessons[0]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/assignments/validate", method="POST",
            data=json.dumps({"path": f"{lesson.slug}/{lesson.notebook}"}).encode(),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            reply = json.loads(response.read())
        assert reply["success"], reply
        failed = reply["value"]["failed"]
        assert [f["source"] for f in failed] == [f"{e.id}: its check cell ({e.points:g} points)" for e in lesson.exercises]
        for exercise, cell in zip(lesson.exercises, failed):
            assert cell["raw_error"].startswith(f"✗ {exercise.id}: not done yet"), cell["raw_error"]
            assert len(cell["raw_error"].splitlines()) <= 6 and "Traceback" not in cell["raw_error"]
    finally:
        stop_server(proc)
