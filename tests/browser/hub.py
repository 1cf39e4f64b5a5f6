"""A real JupyterHub for a test: system accounts with PAM passwords, nbgrader's shared exchange, and the hub
(PAM authenticator, LocalProcessSpawner, configurable-http-proxy) on loopback ports.

The hub runs in a private mount namespace in which every folder the spawned accounts need (this venv's
interpreter, the venv, the checkout its editable install points to) can be entered: a folder they cannot
enter (pyenv's interpreter under /root, mode 0700) is covered there by a tmpfs with only the needed
subfolders bound back in. Nothing changes outside the namespace; the single-user servers inherit it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_lib.manifest import COURSE_ROOT
from tests.support import free_port, hidden_ancestor, wait_for_http

__all__ = ["Account", "Hub", "accounts", "chown_tree", "proxy_command", "start_hub", "stop_hub", "COURSE_ID"]

COURSE_ID = "caching-course"
VENV_BIN = Path(sys.executable).parent
REQUIRED_TOOLS = ("useradd", "userdel", "chpasswd", "setpriv", "unshare", "nsenter", "mount")


@dataclass
class Account:
    name: str
    password: str
    home: Path


@dataclass
class Hub:
    url: str
    base: Path
    exchange: Path
    process: subprocess.Popen
    log: Path
    users: dict[str, Account]

    def as_user(self, user: str, *args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
        """Run ``args`` as ``user`` inside the hub's mount namespace (where this venv is reachable)."""
        account = self.users[user]
        env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(account.home), "USER": user, "LANG": "C.UTF-8"}
        return subprocess.run(["nsenter", f"--target={self.process.pid}", "--mount", f"--wd={cwd or account.home}",
                               "--", "setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *args],
                              env=env, capture_output=True, text=True, timeout=timeout)


def proxy_command() -> str:
    """configurable-http-proxy's path: skipped locally when npm's package is missing, a failure under CI."""
    found = shutil.which("configurable-http-proxy")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("configurable-http-proxy is not installed; .ci/run must npm install -g configurable-http-proxy")
        pytest.skip("configurable-http-proxy is not installed (npm install -g configurable-http-proxy@5.3.0)")
    return found


def _require_root_tools() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        reason = ("needs root: the test creates system accounts and starts JupyterHub as root"
                  if os.geteuid() != 0 else f"needs {', '.join(missing)} (passwd, util-linux)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def chown_tree(root: Path, user: str) -> None:
    """Give ``root`` and everything in it to ``user``."""
    uid, gid = _ids(user)
    for folder, dirs, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, uid, gid)


def _lab_settings(account: Account) -> None:
    """The account's Jupyter config: nbgrader's course and exchange; no news pop-up, every cell rendered."""
    jupyter = account.home / ".jupyter"
    exchange = account.home.parent / "exchange"
    files = {
        "nbgrader_config.py": f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
                              f"c.Exchange.root = {str(exchange)!r}\n",
        "jupyter_server_config.py": "c = get_config()\nc.LabApp.news_url = None\n"
                                    "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n",
        "labconfig/page_config.json": json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}),
        "lab/user-settings/@jupyterlab/notebook-extension/tracker.jupyterlab-settings": json.dumps(
            {"windowingMode": "none"}),
    }
    for name, text in files.items():
        (jupyter / name).parent.mkdir(parents=True, exist_ok=True)
        (jupyter / name).write_text(text)
    chown_tree(jupyter, account.name)


@pytest.fixture
def accounts():
    """A base folder (mode 0755) with the shared exchange, and a factory of system accounts (homes 0700,
    random passwords set with chpasswd); every account is removed afterwards, even on failure."""
    _require_root_tools()
    base = Path(os.path.realpath(tempfile.gettempdir())) / f"hub-{uuid.uuid4().hex[:8]}"
    if hidden_ancestor(base):
        pytest.fail(f"the accounts' homes go under {base.parent}, which other users cannot enter; set TMPDIR=/tmp")
    base.mkdir(mode=0o755)
    base.chmod(0o755)  # whatever the umask
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader's exchange root: every account creates its course's folders in it
    tag = uuid.uuid4().hex[:5]
    made: list[str] = []

    def make(role: str) -> Account:
        name = f"h{role}{tag}"
        home = base / name
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash", name],
                       check=True, capture_output=True)
        made.append(name)
        home.chmod(0o700)  # no account reads another's fetched lessons or feedback
        account = Account(name, secrets.token_urlsafe(12), home)
        subprocess.run(["chpasswd"], input=f"{name}:{account.password}\n", text=True, check=True, capture_output=True)
        _lab_settings(account)
        return account

    try:
        yield base, exchange, make
    finally:
        for name in made:
            _kill_processes_of(name)
            subprocess.run(["userdel", "--force", "--remove", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _kill_processes_of(user: str) -> None:
    """SIGKILL what is left of the single-user servers this test spawned as ``user`` (by pid)."""
    uid = _ids(user)[0]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass


def _namespace_mounts(paths: list[Path], stage_root: Path) -> str:
    """Shell commands that make each of ``paths`` enterable by any account, in the current mount namespace."""
    covered: dict[Path, set[Path]] = defaultdict(set)
    for path in paths:
        hidden = hidden_ancestor(path)
        if hidden:
            covered[hidden[0]].add(hidden[1])
    commands = []
    for n, (folder, children) in enumerate(sorted(covered.items())):
        q = shlex.quote
        stages = {child: stage_root / f"stage-{n}-{i}" for i, child in enumerate(sorted(children))}
        for child, stage in stages.items():
            stage.mkdir(parents=True)
            commands.append(f"mount --bind {q(str(child))} {q(str(stage))}")
        commands.append(f"mount -t tmpfs -o mode=0755 tmpfs {q(str(folder))}")
        for child, stage in stages.items():
            commands += [f"mkdir -p {q(str(child))}", f"mount --bind {q(str(stage))} {q(str(child))}"]
    return " && ".join(commands)


def _distinct_free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def _hub_config(base: Path, instructor: Account, users: list[Account], proxy: str) -> tuple[int, str]:
    """(the public port, the hub's config file)."""
    port, hub_port, api_port = _distinct_free_ports(3)
    return port, textwrap.dedent(f"""\
        c = get_config()
        c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
        c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
        c.ConfigurableHTTPProxy.command = [{proxy!r}]
        c.JupyterHub.db_url = "sqlite:///{base / 'jupyterhub.sqlite'}"
        c.JupyterHub.cookie_secret_file = "{base / 'jupyterhub_cookie_secret'}"
        c.JupyterHub.pid_file = "{base / 'jupyterhub.pid'}"
        c.ConfigurableHTTPProxy.pid_file = "{base / 'proxy.pid'}"
        # real credentials: the accounts' passwords, checked by PAM (pam_unix reads /etc/shadow as root)
        c.JupyterHub.authenticator_class = "pam"
        c.PAMAuthenticator.open_sessions = False
        c.Authenticator.allowed_users = {sorted(a.name for a in users)!r}
        c.Authenticator.admin_users = {{{instructor.name!r}}}
        # each single-user server runs as its account, with this venv's JupyterLab and nbgrader extensions
        c.JupyterHub.spawner_class = "localprocess"
        c.Spawner.cmd = [{str(VENV_BIN / 'jupyterhub-singleuser')!r}]
        c.Spawner.default_url = "/lab"
        c.Spawner.environment = {{"PATH": "{VENV_BIN}:/usr/bin:/bin"}}
        c.Spawner.start_timeout = 180
        c.Spawner.http_timeout = 180
        """)


def start_hub(base: Path, exchange: Path, instructor: Account, learners: list[Account]) -> Hub:
    """Start JupyterHub as root in its own mount namespace; return once its login page answers."""
    proxy = proxy_command()
    hub_dir = base / "hub"
    hub_dir.mkdir(mode=0o700)
    users = [instructor, *learners]
    config = hub_dir / "jupyterhub_config.py"
    port, text = _hub_config(hub_dir, instructor, users, proxy)
    config.write_text(text)
    needed = [Path(os.path.realpath(sys.executable)), Path(sys.prefix), COURSE_ROOT, Path(os.path.realpath(proxy))]
    mounts = _namespace_mounts(needed, hub_dir / "mounts")
    hub = shlex.join([str(VENV_BIN / "jupyterhub"), "-f", str(config)])
    script = f"{mounts} && exec {hub}" if mounts else f"exec {hub}"
    log = hub_dir / "jupyterhub.log"
    env = {**os.environ, "PATH": f"{VENV_BIN}:/usr/bin:/bin"}
    with open(log, "w") as out:
        process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                   cwd=hub_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Hub(f"http://127.0.0.1:{port}", base, exchange, process, log, {a.name: a for a in users})
    try:
        wait_for_http(f"{running.url}/hub/login", process, timeout=120, what="JupyterHub")
    except RuntimeError as exc:
        stop_hub(running)
        pytest.fail(f"{exc}; log:\n{log.read_text()[-4000:]}")
    return running


def stop_hub(hub: Hub) -> None:
    """SIGTERM: the hub stops the single-user servers it spawned and its proxy, then exits."""
    if hub.process.poll() is not None:
        return
    hub.process.send_signal(signal.SIGTERM)
    try:
        hub.process.wait(timeout=60)
        return
    except subprocess.TimeoutExpired:
        hub.process.kill()
        hub.process.wait()
    proxy_pid = hub.base / "hub" / "proxy.pid"  # the killed hub could not stop its proxy
    if proxy_pid.is_file():
        try:
            os.kill(int(proxy_pid.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
