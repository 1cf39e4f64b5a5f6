"""Escapes from the learner's sandbox into what grades it: the judge, the grading Redis, the grader itself.

Every attack is an answer cell of a real lesson, graded through the real grader, with a
canary in the grader's own environment and a TCP listener on the host's loopback. Each
ends with the fair score and a status that says what happened, the canary in nothing the
grader reports, and no connection to the listener. See docs/SECURITY.md ("the judge and
the grading Redis are sandboxed too").
"""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from course_lib.manifest import COURSE_ROOT, load_course
from grader.grading.grade import grade_notebook
from grader.sandbox.isolation import tools
from grader.course.cells import grade_id
from grader.sandbox.protocol import Limits
from grader.course.synthetic import write_submission

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (tools()["bwrap"] and tools()["root"]),
                                 reason="the sandboxes need bubblewrap and root (apt-get install bubblewrap)")]

CANARY = "instructor-secret-5c1e"
LIMITS = Limits(cell_timeout=20, notebook_timeout=120)
NON_ANSWER = "def get_user_cached(db, cache, user_id):\n    return None\n"
BACKENDS = [pytest.param("fakeredis", id="fakeredis"),
            pytest.param("redis-server", id="redis-server",
                         marks=pytest.mark.skipif(not tools()["redis_server"], reason="redis-server not installed"))]


@pytest.fixture
def listener():
    """A TCP server on the host's loopback that records every connection it gets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    seen: list[str] = []

    def accept():
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            seen.append(f"{peer}")
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], seen
    server.close()


@pytest.fixture
def attack(tmp_path, monkeypatch, listener):
    """Grade lesson 01 (or ``lesson``) with ``answer`` in place of one exercise and ``after`` cells added."""
    monkeypatch.setenv("INSTRUCTOR_TOKEN", CANARY)  # what a real instructor's shell may hold
    port, seen = listener

    def grade(answer: str, *, lesson: str = "01", exercise: str = "cache-aside-read", after: str = "",
              backend: str = "auto"):
        found = load_course().lesson(lesson)
        code = answer.replace("{PORT}", str(port))
        path = write_submission(found.source_path(COURSE_ROOT), found.release_path(COURSE_ROOT),
                                tmp_path / found.slug / found.notebook, {exercise: code})
        if after:
            nb = nbformat.read(path, as_version=4)
            at = next(i for i, c in enumerate(nb.cells) if grade_id(c) == f"{exercise}-tests")
            nb.cells.insert(at + 1, new_code_cell(after.replace("{PORT}", str(port))))
            nbformat.write(nb, path)
        limits = Limits(cell_timeout=LIMITS.cell_timeout, notebook_timeout=LIMITS.notebook_timeout,
                        redis_backend=backend)
        result = grade_notebook(found.source_path(COURSE_ROOT), path, limits=limits)
        reported = json.dumps(result.to_dict())
        assert CANARY not in reported, "the instructor's environment leaked into the result"
        assert seen == [], f"a grading process reached the host's loopback: {seen}"
        judge = result.processes.get("judge", {})
        assert judge.get("uid") not in (None, 0) and judge["uid"] != result.processes["learner"]["uid"], judge
        assert set(judge.get("sees_of_course_folder", [])) <= {".venv", "course_lib", "grader"}, judge
        return result

    return grade


def _scores(result) -> dict[str, tuple[str, float]]:
    return {e.id: (e.status, e.score) for e in result.exercises}


def _printed(result, kind: str = "learner") -> str:
    return "".join(o.get("text", "") for c in result.cells if c["kind"] == kind and c["record"]
                   for o in c["record"].get("outputs", []))


def _fair(result) -> None:
    """The non-answer scores nothing; the other exercise, untouched, keeps its points."""
    scores = _scores(result)
    assert scores["cache-aside-read"] in (("failed", 0.0), ("crashed", 0.0)), (scores, result.notes, result.detail)
    assert scores["hit-ratio-math"] == ("passed", 5.0), (scores, result.notes, result.detail)


# The attack of issue #13: Lua's `python` global in the judge's fakeredis replaced Judge.tests (15/15).
EXPLOIT = NON_ANSWER + '''
import os, redis
_r = redis.Redis.from_url(os.environ["REDIS_URL"])
_payload = ("import sys, os, socket\\n"
            "sys.modules['__main__'].Judge.tests = lambda self, source, timeout: {'status': 'ok', 'seconds': 0}\\n"
            "socket.create_connection(('127.0.0.1', {PORT}), timeout=1)\\n")
for _script in ["return tostring(python.eval(ARGV[1]))", "return python.builtins.exec(ARGV[1])",
                "return python.import_module('os').system('true')"]:
    try:
        print("lua:", _r.eval(_script, 0, "exec(compile(%r, 'x', 'exec')) or 'ok'" % _payload))
    except Exception as exc:
        print("lua refused:", type(exc).__name__)
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_lua_cannot_reach_python_in_the_grading_redis(attack, backend):
    result = attack(EXPLOIT, backend=backend)
    _fair(result)
    assert result.status == "graded" and result.processes["redis"]["backend"] == backend
    assert _printed(result, "answer").count("lua refused") == 3


ESCAPES = {
    "load/require/io/os/debug": "for name in ['load', 'loadstring', 'require', 'io', 'os', 'debug', 'dofile', "
                                "'package', 'python']:\n    try:\n        print(name, _r.eval(f'return type({name})', 0))\n"
                                "    except Exception as exc:\n        print(name, 'absent', type(exc).__name__)\n",
    "FUNCTION LOAD": "_lib = \"#!lua name=esc\\nredis.register_function('f', function() return type(python) end)\"\n"
                     "try:\n    _r.function_load(_lib, replace=True)\n    print('function', _r.fcall('f', 0))\n"
                     "except Exception as exc:\n    print('function refused', type(exc).__name__)\n",
    "SCRIPT LOAD": "_sha = _r.script_load('return type(io)')\nprint('script', _r.evalsha(_sha, 0))\n",
    "admin commands": "for cmd in [('CONFIG', 'SET', 'dir', '/'), ('SHUTDOWN',), ('DEBUG', 'SLEEP', '0'), "
                      "('MODULE', 'LIST'), ('ACL', 'LIST'), ('MONITOR',), ('REPLICAOF', '127.0.0.1', '{PORT}'), "
                      "('MIGRATE', '127.0.0.1', '{PORT}', 'k', '0', '100')]:\n"
                      "    try:\n        _r.execute_command(*cmd)\n        print('admin ran', cmd[0])\n"
                      "    except Exception as exc:\n        print('admin refused', cmd[0], type(exc).__name__)\n",
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("escape", list(ESCAPES), ids=list(ESCAPES))
def test_scripts_and_admin_commands_reach_nothing(attack, backend, escape):
    answer = NON_ANSWER + "import os, redis\n_r = redis.Redis.from_url(os.environ['REDIS_URL'], " \
                          "decode_responses=True)\n" + ESCAPES[escape]
    result = attack(answer, backend=backend)
    _fair(result)
    printed = _printed(result, "answer")
    assert "admin ran" not in printed and "function table" not in printed and "script table" not in printed
    if escape.startswith("load"):  # real Redis keeps its own sandboxed loaders; fakeredis has none
        present = {line.split()[0] for line in printed.splitlines() if line.split()[1:2] == ["function"]}
        assert present == (set() if backend == "fakeredis" else {"load", "loadstring"}), printed
    if escape == "admin commands" and backend == "redis-server":
        assert printed.count("admin refused") == 8, printed


def test_proc_signals_and_the_environment_show_nothing_of_the_grader(attack):
    probe = NON_ANSWER + '''
import os, signal
_found = []
for _pid in os.listdir("/proc"):
    if _pid.isdigit():
        try:
            _found.append(open(f"/proc/{_pid}/environ", "rb").read())
        except OSError:
            pass
print("pids", sorted(p for p in os.listdir("/proc") if p.isdigit()))
print("environ", b"INSTRUCTOR" in b"".join(_found), "INSTRUCTOR_TOKEN" in os.environ)
for _pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    try:
        os.kill(int(_pid), signal.SIGKILL)
    except OSError as exc:
        print("kill", _pid, type(exc).__name__)
'''
    result = attack(probe)
    _fair(result)
    assert "environ False False" in _printed(result, "answer"), _printed(result, "answer")


FORGERIES = {
    "a forged result record": "os.write(_fd, b'{\"index\": 3, \"status\": \"ok\", \"mac\": \"00\"}\\n')",
    "a replayed channel reply": "os.write(_fd, struct.pack('>I', 20) + b'{\"re\": 1, \"ok\": 15}  ')",
    "a crafted reference": "os.write(_fd, struct.pack('>I', 30) + b'{\"re\": 1, \"ok\": {\"y\": 1}}     ')",
    "a pickle payload": "_p = pickle.dumps(os.system)\nos.write(_fd, struct.pack('>I', len(_p)) + _p)",
    "a marshal payload": "_p = marshal.dumps(compile('1', 'x', 'eval'))\nos.write(_fd, struct.pack('>I', len(_p)) + _p)",
}


@pytest.mark.parametrize("forgery", list(FORGERIES), ids=list(FORGERIES))
def test_forged_and_replayed_messages_cost_only_their_own_exercise(attack, forgery):
    """Written to every descriptor the learner's process holds: the result pipe and the judge's channel."""
    answer = NON_ANSWER + "import os, struct, pickle, marshal\nfor _fd in range(3, 64):\n    try:\n" + \
        "".join(f"        {line}\n" for line in FORGERIES[forgery].splitlines()) + "    except OSError:\n        pass\n"
    result = attack(answer)
    _fair(result)
    assert result.status == "graded", (result.status, _scores(result))
    if _scores(result)["cache-aside-read"][0] == "crashed":  # the forgery reached a channel: it is named
        assert any("cache-aside-read" in note for note in result.notes), result.notes


# Every public method a Redis client offers, tried from the learner's side on the tests' own client (lesson 07
# hands it to the learner's decorator). The allowed data commands may run; nothing that opens a connection or
# administers the server may.
CLIENT_PROBES = ["c.connection_pool", "c.from_url('redis://127.0.0.1:{PORT}')", "c.config_set('dir', '/')",
                 "c.config_get('*')", "c.shutdown()", "c.flushall()", "c.client_list()", "c.client_kill('x')",
                 "c.module_load('/x.so')", "c.acl_users()", "c.monitor()", "c.pubsub()", "c.info()",
                 "c.get_connection_kwargs()", "c.set_response_callback('GET', print)", "c.close()",
                 "c.execute_command('CONFIG', 'GET', 'dir')", "c.execute_command('CLIENT', 'LIST')",
                 "c.replicaof('127.0.0.1', {PORT})", "c.save()", "c.slaveof()", "c.debug_object('k')",
                 "c._lock", "setattr(c, 'connection_pool', None)"]


def test_the_tests_redis_client_offers_only_its_data_commands(attack):
    found = load_course().lesson("07")
    solution = next(c for c in nbformat.read(found.source_path(COURSE_ROOT), as_version=4).cells
                    if grade_id(c) == "redis-cache").source
    solution = re.sub(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", "", solution, flags=re.M)
    probes = "\n".join(f"        _try({p!r})" for p in CLIENT_PROBES)
    answer = solution + f'''

import functools as _functools
PROBES = []
def _try(code):
    try:
        eval(code, {{"c": _client}})
        PROBES.append((code, "ran"))
    except Exception as exc:
        PROBES.append((code, type(exc).__name__))
_original = redis_cache
@_functools.wraps(_original)
def redis_cache(client, **kwargs):
    global _client
    _client = client
    if not PROBES:
{probes}
    return _original(client, **kwargs)
'''
    result = attack(answer, lesson="07", exercise="redis-cache", after="print('PROBES', PROBES)")
    printed = _printed(result)
    assert "PROBES" in printed, (result.detail, printed)
    outcomes = dict(eval(printed.split("PROBES", 1)[1]))  # noqa: S307 - what our own cell printed
    allowed = {code: what for code, what in outcomes.items() if what not in ("PermissionError", "AttributeError")}
    assert allowed == {}, allowed
    assert len(outcomes) == len(CLIENT_PROBES)
    assert all(e.status == "passed" for e in result.exercises), _scores(result)


def test_isolation_lists_every_grading_process():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "grader.sandbox.isolation"], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[3], check=True).stdout
    for role in ("learner's interpreter", "the judge", "the grading Redis server"):
        assert f"sandbox protections of {role}" in out or role in out, out
    assert out.count("no network") >= 3 and "NOT ACTIVE" not in out, out

