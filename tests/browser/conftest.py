"""A JupyterLab started the way `make lab` starts it, and Debian's Chromium driven by Playwright.

Every wait is on a UI state (a selector, a text, a response), never a fixed sleep.
Screenshots go to build/test-artifacts/ (git-ignored) so CI keeps them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_lib.manifest import COURSE_ROOT
from tests.support import free_port, stop_server, wait_for_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = COURSE_ROOT / "build" / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]




@dataclass
class Lab:
    url: str
    token: str
    workspace: Path
    home: Path
    exchange: Path
    process: subprocess.Popen

    def open_url(self, path: str = "lab") -> str:
        return f"{self.url}/{path}?token={self.token}"


def start_lab(tmp: Path, *, course_root: Path = COURSE_ROOT, extra_env: dict[str, str] | None = None) -> Lab:
    """Start `python -m grader lab` (what `make lab` runs) on a free port with a temporary home."""
    port, token = free_port(), "browser-test-token"
    home, workspace, exchange = tmp / "home", tmp / "workspace", tmp / "exchange"
    config_dir = home / ".jupyter"
    config_dir.mkdir(parents=True)
    exchange.mkdir(mode=0o777)
    # nbgrader's Assignments panel reads the exchange settings from the Jupyter config folder.
    (config_dir / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'caching-course'\nc.Exchange.root = {str(exchange)!r}\n"
        # fetched lessons go to <workspace>/caching-course/<lesson>, beside the seeded copies
        "c.Exchange.path_includes_course = True\n"
    )
    # No "get Jupyter news?" pop-up over the page under test.
    (config_dir / "labconfig").mkdir()
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # Render every cell (no windowing), so the n-th cell in the page is the n-th cell of the notebook.
    settings = home / "lab-settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    # The terminal draws on a canvas; its screen-reader mode also keeps the text in the page, to wait on.
    (settings / "@jupyterlab" / "terminal-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "terminal-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"screenReaderMode": True}))
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(config_dir),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "COURSE_LATENCY_SCALE": "0.01", **(extra_env or {})}
    env.pop("REDIS_URL", None)
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "lab", "--workspace", str(workspace), "--port", str(port), "--no-browser",
         "--", f"--IdentityProvider.token={token}", "--ServerApp.disable_check_xsrf=False",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=course_root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    lab = Lab(f"http://127.0.0.1:{port}", token, workspace, home, exchange, proc)
    try:
        wait_for_http(f"{lab.url}/api/status?token={token}", proc, what="JupyterLab")
    except RuntimeError as exc:
        stop_lab(lab)
        pytest.fail(f"{exc}; log:\n{(tmp / 'jupyterlab.log').read_text()[-3000:]}")
    return lab


def stop_lab(lab: Lab) -> None:
    stop_server(lab.process)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must apt-get install chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=False)
    context.close()


@pytest.fixture
def lab(tmp_path):
    server = start_lab(tmp_path)
    yield server
    stop_lab(server)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
