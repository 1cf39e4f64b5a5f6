"""Shared fixtures: a real redis-server on a loopback port, and grading a lesson through the grader."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from course_lib.manifest import COURSE_ROOT, load_course
from grader.grading.result import NotebookResult
from grader.authoring.lesson_contract import grade_answers
from grader.sandbox.protocol import Limits
from tests.support import free_port

ROOT = COURSE_ROOT


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """URL of a real redis-server started for this test session (skipped locally if none is installed;
    CI installs it, and there a missing binary is a failure)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run must apt-get install redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--databases", "16"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)  # polling for a server to come up, not waiting on a TTL
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["fakeredis", "real-redis"])
def redis_client(request):
    """A clean Redis client on each backend: the embedded fakeredis server, then a real server."""
    from course_lib.redis_conn import get_redis

    if request.param == "fakeredis":
        client = get_redis("")
    else:
        client = get_redis(request.getfixturevalue("redis_url"))
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def grade_lesson(tmp_path):
    """Grade a lesson through the real grader.

    ``grade_lesson("04", {"simple-cache": code})`` fills the release with the
    solution's answers, replaces the given ones, grades it and returns the
    NotebookResult. ``base="release"`` starts from the stubs instead.
    """

    def grade(lesson: str, answers: dict[str, str] | None = None, *, base: str = "solution",
              redis_url: str | None = None, limits: Limits = Limits(cell_timeout=60, notebook_timeout=240)) -> NotebookResult:
        return grade_answers(ROOT, load_course().lesson(lesson), tmp_path, answers, base=base, redis_url=redis_url,
                             limits=limits)

    return grade

