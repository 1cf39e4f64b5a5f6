"""Released feedback through a real exchange, with two real system accounts (needs root for useradd).

Each learner fetches, submits and fetches feedback as their own uid; each must be able to open their
own feedback page (nbgrader copies the page's mode into the exchange, as its own generate_feedback
writes them world-readable), and neither can list the exchange's feedback folder to find the other's
page (nbgrader's hashed, personalised feedback names).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest

from tests.grader.classroom.test_grader_pipeline import COURSE_ID, LESSON, NOTEBOOK, WRONG_ADD_ONE, answered, grader, make_course
from tests.support import hidden_ancestor

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the test creates two system accounts "
                                                           "with useradd and runs nbgrader as each of them"),
              pytest.mark.skipif(not shutil.which("useradd") or not shutil.which("setpriv") or not shutil.which("unshare"),
                                 reason="needs useradd, setpriv and unshare (util-linux, passwd)")]


def as_user(user: str, home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``args`` as ``user``; the interpreter stays reachable when it lives under a private folder
    (a tmpfs over that folder, in a private mount namespace, with only the interpreter's tree bound in)."""
    interpreter = Path(os.path.realpath(sys.executable))
    command = f"exec setpriv --reuid={user} --regid={user} --init-groups -- {shlex.join(args)}"
    hidden = hidden_ancestor(interpreter)
    if hidden:
        folder, child = hidden
        stage = Path(tempfile.mkdtemp(prefix="stage-"))
        command = (f"mount --bind {shlex.quote(str(child))} {shlex.quote(str(stage))} && "
                   f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(folder))} && "
                   f"mkdir -p {shlex.quote(str(child))} && mount --bind {shlex.quote(str(stage))} "
                   f"{shlex.quote(str(child))} && cd {shlex.quote(str(cwd))} && {command}")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture
def two_accounts():
    base = Path(tempfile.mkdtemp(prefix="multiuser-"))
    base.chmod(0o755)
    tag = uuid.uuid4().hex[:6]
    users = [f"cl20a{tag}", f"cl20b{tag}"]
    made = []
    try:
        for user in users:
            home = base / user
            subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", user],
                           check=True, capture_output=True)
            made.append(user)
        yield base, users
    finally:
        for user in made:
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_each_learner_fetches_only_their_own_feedback(tmp_path, two_accounts):
    base, (ann, ben) = two_accounts
    root = make_course(tmp_path)
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    ex = [f"--Exchange.root={exchange}", f"--course={COURSE_ID}"]
    grader(root, "release", LESSON, "--exchange", str(exchange))
    release = nbformat.read(root / "notebooks" / LESSON / NOTEBOOK, as_version=4)
    nbgrader = [sys.executable, "-m", "nbgrader"]
    for user, answers in ((ann, {}), (ben, {"add-one": WRONG_ADD_ONE})):
        home = base / user
        proc = as_user(user, home, *nbgrader, "fetch_assignment", LESSON, *ex, cwd=home)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        path = home / LESSON / NOTEBOOK
        nbformat.write(answered(root, release, answers), path)
        os.chown(path, path.parent.stat().st_uid, path.parent.stat().st_gid)
        proc = as_user(user, home, *nbgrader, "submit", LESSON, *ex, cwd=home)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    grader(root, "collect", LESSON, "--exchange", str(exchange))
    grader(root, "autograde", LESSON, "--workers", "2", "--quiet")
    grader(root, "feedback", LESSON, "--release", "--exchange", str(exchange))

    scores = {ann: "Score: 5 / 5", ben: "Score: 3 / 5"}
    for user in (ann, ben):
        home = base / user
        proc = as_user(user, home, *nbgrader, "fetch_feedback", LESSON, *ex, cwd=home)
        assert proc.returncode == 0 and "Permission denied" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        pages = list((home / LESSON / "feedback").glob("*/basics.html"))
        assert len(pages) == 1, (user, pages)
        # the page is readable by its learner's own account, and is theirs
        proc = as_user(user, home, "cat", str(pages[0]), cwd=home)
        assert proc.returncode == 0 and scores[user] in proc.stdout and f"feedback for {user}" in proc.stdout
        other = ben if user == ann else ann
        assert f"feedback for {other}" not in proc.stdout
        # the exchange's feedback folder cannot be listed, so no learner finds another's page
        proc = as_user(user, home, "ls", str(exchange / COURSE_ID / "feedback"), cwd=home)
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, proc.stdout
