"""Hostile submissions against the grading engine: each attack ends in a recorded status with a fair score.

The fixture is a two-exercise notebook (``double`` 2 points, ``halve`` 3 points) whose
``double`` tests hold hidden tests with a marker string and a hidden helper. An attack
that tries to win points gives a *wrong* ``double`` (``return 0``): it must not score.
An attack that tries to read or leak gives a correct one: the marker must appear nowhere
in what the grader reports. See docs/SECURITY.md for the threat model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.grading.grade import grade_notebook
from grader.sandbox.isolation import active_protections, tools
from grader.sandbox.protocol import Limits
from tests.support import nbgrader_meta

ROOT = Path(__file__).resolve().parents[3]
FAST = Limits(cell_timeout=4, notebook_timeout=40)
MARKER = "hidden-marker-7f3a"
WRONG = "def double(x):\n    return 0\n"
RIGHT = "def double(x):\n    return 2 * x\n"

pytestmark = pytest.mark.skipif(not tools()["bwrap"], reason="bubblewrap is not installed (apt-get install bubblewrap)")




HIDDEN = (f"### BEGIN HIDDEN TESTS\n_MARKER = '{MARKER}'\n"
          "def _hidden_check(f):\n    assert f(-3) == -6, 'Called double(-3). Expected -6.'\n    return _MARKER\n"
          "_hidden_check(double)\n### END HIDDEN TESTS")


def _source():
    return new_notebook(cells=[
        new_markdown_cell("# Doubling", metadata=nbgrader_meta(grade_id="intro")),
        new_code_cell("from course_lib import Check, charts, LatencyStats", metadata=nbgrader_meta(grade_id="setup")),
        new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                      metadata=nbgrader_meta(grade_id="double", solution=True, locked=False)),
        new_code_cell("check = Check('double', globals())\nf = check.defined('double', kind='function')\n"
                      "check.equal('double(2)', check.call('double(2)', f, 2), 4)\ncheck.passed()\n" + HIDDEN,
                      metadata=nbgrader_meta(grade_id="double-tests", grade=True, points=2)),
        new_code_cell("def halve(x):\n    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION",
                      metadata=nbgrader_meta(grade_id="halve", solution=True, locked=False)),
        new_code_cell("check = Check('halve', globals())\ncheck.equal('halve(4)', check.call('halve(4)', halve, 4), 2)",
                      metadata=nbgrader_meta(grade_id="halve-tests", grade=True, points=3)),
    ])


@pytest.fixture
def course(tmp_path):
    source = _source()
    path = tmp_path / "source.ipynb"
    nbformat.write(source, path)

    def submit(answer=RIGHT, *, after_tests=None, edit=None, limits=FAST, redis_url=None, source_edit=None):
        if source_edit:
            changed = copy.deepcopy(source)
            source_edit(changed)
            nbformat.write(changed, path)
        nb = copy.deepcopy(source)
        nb.cells[3].source = nb.cells[3].source.split("### BEGIN HIDDEN TESTS")[0]
        nb.cells[2].source = answer.replace("{SOURCE}", str(path))
        if after_tests:
            nb.cells.insert(4, new_code_cell(after_tests.replace("{SOURCE}", str(path))))
        if edit:
            edit(nb)
        out = tmp_path / "submission.ipynb"
        nbformat.write(nb, out)
        return grade_notebook(path, out, limits=limits, redis_url=redis_url)

    return submit


def _scores(result):
    return {e.id: (e.status, e.score) for e in result.exercises}


def _text(result) -> str:
    return json.dumps(result.to_dict(), default=str)


def _outputs(result, kind="learner") -> str:
    return json.dumps([c["record"] for c in result.cells if c["kind"] == kind], default=str)


def _no_leak(result):
    text = _text(result)
    assert MARKER not in text and "_hidden_check" not in text and "BEGIN HIDDEN" not in text


# ---- grade forgery: a wrong double must not score, halve keeps its 3 points ------------------------------------

FORGERY = {
    "edit the test cell": dict(answer=WRONG, edit=lambda nb: setattr(nb.cells[3], "source", "pass")),
    "delete the test cell": dict(answer=WRONG, edit=lambda nb: nb.cells.pop(3)),
    "retype the test cell as a learner cell": dict(
        answer=WRONG, edit=lambda nb: (nb.cells[3].metadata.pop("nbgrader"), setattr(nb.cells[3], "source", "pass"))),
    "rebind Check to a no-op class": dict(answer=WRONG + (
        "class Check:\n    def __init__(self, *a): pass\n    def __getattr__(self, name):\n"
        "        return lambda *a, **k: (a[1] if len(a) > 1 else None)\n")),
    "monkeypatch course_lib's Check": dict(answer=WRONG + (
        "import course_lib.checks as _c\n_c.Check.fail = lambda *a, **k: None\n")),
    "object that equals everything": dict(answer=(
        "class Yes:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
        "    __hash__ = object.__hash__\ndef double(x):\n    return Yes()\n")),
    "int subclass that equals everything": dict(answer=(
        "class Yes(int):\n    def __eq__(self, other): return True\n    __hash__ = int.__hash__\n"
        "def double(x):\n    return Yes(0)\n")),
    "IPython AST transformer removing asserts": dict(answer=WRONG + (
        "import ast\nclass _Strip(ast.NodeTransformer):\n    def visit_Assert(self, node): return ast.Pass()\n"
        "get_ipython().ast_transformers.append(_Strip())\n")),
    "IPython input transformer emptying cells": dict(answer=WRONG + (
        "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"), self_harm=True),
    "SystemExit raised inside the tests": dict(answer="def double(x):\n    raise SystemExit(0)\n"),
    "swallow the test's exceptions with sys.excepthook": dict(answer=WRONG + (
        "import sys\nsys.excepthook = lambda *a: None\nget_ipython().set_custom_exc((BaseException,), "
        "lambda *a, **k: None)\n")),
    "walk frames with sys._getframe": dict(answer=(
        "import sys\ndef double(x):\n    f = sys._getframe(1)\n    f.f_globals['_hidden_check'] = lambda f: None\n"
        "    return 0\n")),
    "walk frames through a traceback": dict(answer=(
        "def double(x):\n    try:\n        raise ValueError\n    except ValueError as e:\n"
        "        frame = e.__traceback__.tb_frame.f_back\n        frame.f_globals['_MARKER'] = 'x'\n    return 0\n")),
    "find the runner's secrets with gc": dict(answer=WRONG + "import gc\n_objs = gc.get_objects()\n"),
    "trace the tests with sys.settrace": dict(answer=WRONG + "import sys\nsys.settrace(lambda *a: None)\n"),
    "add an audit hook": dict(answer=WRONG + "import sys\nsys.addaudithook(lambda e, a: None)\n"),
    "read memory with ctypes": dict(answer=WRONG + "import ctypes\nctypes.string_at(id(1), 8)\n"),
    "forge a code object": dict(answer=WRONG + "(lambda: 0).__code__.replace(co_consts=(1,))\n"),
}


@pytest.mark.parametrize("attack", list(FORGERY), ids=list(FORGERY))
def test_forgery_does_not_score(course, attack):
    case = dict(FORGERY[attack])
    self_harm = case.pop("self_harm", False)  # the attack also breaks the learner's own later cells
    result = course(**case)
    scores = _scores(result)
    assert scores["double"][1] == 0.0, (attack, scores, result.notes)
    assert scores["halve"] == (("failed", 0.0) if self_harm else ("passed", 3.0)), (attack, scores, result.detail)
    assert result.status in ("graded", "tampered")


def test_replaced_test_helpers_change_nothing_for_tests_in_the_judge(course):
    result = course(RIGHT + "import builtins\nbuiltins.repr = lambda o: 'forged'\n"
                    "import course_lib.checks as _c\n_c.Check.equal = lambda *a, **k: None\n")
    assert result.status == "graded" and _scores(result) == {"double": ("passed", 2.0), "halve": ("passed", 3.0)}


def test_replaced_test_helpers_are_restored_and_flagged_for_tests_in_the_kernel(course):
    def in_kernel(nb):
        nb.metadata["grader"] = {"tests": "kernel"}

    result = course(RIGHT + "import builtins\nbuiltins.repr = lambda o: 'forged'\n", source_edit=in_kernel)
    assert result.status == "tampered" and _scores(result)["double"] == ("passed", 2.0)
    assert any("builtins.repr" in n for n in result.notes)


def test_a_course_lib_module_loaded_on_first_use_is_watched_too_for_tests_in_the_kernel(course):
    """course_lib imports its Redis modules when first used: the runner still imports and snapshots them all."""
    def in_kernel(nb):
        nb.metadata["grader"] = {"tests": "kernel"}

    result = course(RIGHT + "import course_lib.clock as _clock\n_clock.FakeClock.advance = lambda *a, **k: None\n",
                    source_edit=in_kernel)
    assert result.status == "tampered" and _scores(result)["double"] == ("passed", 2.0)
    assert any("FakeClock.advance" in n for n in result.notes), result.notes


@pytest.mark.parametrize("answer, detail", [
    ("import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'{\"index\": 2, \"status\": \"ok\", "
     "\"outputs\": []}\\n')\n    except OSError:\n        pass\n" + WRONG, "forged"),
    ("import os\nos._exit(0)\n", "exited with code 0"),
    ("import os, signal\nos.killpg(0, signal.SIGKILL)\n", "died"),
    ("import os\ndef double(x):\n    os._exit(0)\n", "cut the grader off"),
], ids=["blind-write forged records", "exit before the tests", "kill every process it can", "exit inside the tests"])
def test_killing_or_forging_the_channel_scores_nothing(course, answer, detail):
    """The answer that killed or forged scores nothing and says how; the notebook is graded again without it."""
    result = course(answer)
    double = next(e for e in result.exercises if e.id == "double")
    assert result.status == "graded" and double.status == "crashed" and double.score == 0, _scores(result)
    assert detail in double.message, double.message
    assert _scores(result)["halve"] == ("passed", 3.0)


def test_killing_the_sandbox_init_is_ignored(course):
    result = course("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + WRONG)
    assert result.status == "graded" and _scores(result) == {"double": ("failed", 0.0), "halve": ("passed", 3.0)}


# ---- the judge: test cells run in a process the learner's code cannot reach ---------------------------------------

NO_SANDBOX = Limits(cell_timeout=4, notebook_timeout=40, isolation="off")
_SOCKETS = "import os, stat\n_socks = [fd for fd in range(3, 64) if _isock(fd)]\n"
_ISOCK = ("def _isock(fd):\n    try:\n        return stat.S_ISSOCK(os.fstat(fd).st_mode)\n"
          "    except OSError:\n        return False\n")

JUDGE = {
    # attack: (answer, limits, expected double, expected halve)
    "the frame exploit that forged a pass in the kernel, with every sandbox protection off": (
        "import sys, os\ndef double(x):\n    f = sys._getframe()\n"
        "    while f is not None and 'send' not in f.f_locals:\n        f = f.f_back\n"
        "    loc = f.f_locals\n    loc['send']({'index': loc['index'], 'nonce': loc['nonce'], 'status': 'ok', "
        "'outputs': [], 'seconds': 0})\n    os._exit(0)\n", NO_SANDBOX, ("failed", 0.0), ("passed", 3.0)),
    "every thread's frames searched for the tests, with every sandbox protection off": (
        "import sys\ndef double(x):\n    for f in sys._current_frames().values():\n        while f:\n"
        "            f.f_globals.update(_hidden_check=lambda g: None, check=None)\n            f = f.f_back\n"
        "    return 0\n", NO_SANDBOX, ("failed", 0.0), ("passed", 3.0)),
    "garbage written to the judge's channel": (
        "import os, stat\n" + _ISOCK + "for fd in range(3, 64):\n    if _isock(fd):\n"
        "        os.write(fd, b'\\x00\\x00\\x00\\x05hello')\n" + WRONG,
        FAST, ("crashed", 0.0), ("passed", 3.0)),
    "a forged reply to a request the judge never made": (
        "import os, stat, json, struct\n" + _ISOCK + "_m = json.dumps({'re': 1, 'ok': 4}).encode()\n"
        "for fd in range(3, 64):\n    if _isock(fd):\n        os.write(fd, struct.pack('>I', len(_m)) + _m)\n"
        + WRONG, FAST, ("crashed", 0.0), ("passed", 3.0)),
    "a call that never returns": (
        "def double(x):\n    while True:\n        pass\n", FAST, ("timed_out", 0.0), ("passed", 3.0)),
    "a result nested too deeply to cross": (
        "def double(x):\n    v = 2 * x\n    for _ in range(500):\n        v = [v]\n    return v\n",
        FAST, ("failed", 0.0), ("passed", 3.0)),
    "a result too large to cross": (
        "def double(x):\n    return 'x' * (40 * 1024 * 1024)\n", FAST, ("failed", 0.0), ("passed", 3.0)),
    "an exception with a huge message": (
        "def double(x):\n    raise ValueError('x' * 10_000_000)\n", FAST, ("failed", 0.0), ("passed", 3.0)),
}


@pytest.mark.parametrize("attack", list(JUDGE), ids=list(JUDGE))
def test_the_judge_decides_whatever_the_learners_process_does(course, attack):
    answer, limits, double, halve = JUDGE[attack]
    result = course(answer, limits=limits)
    scores = _scores(result)
    assert scores == {"double": double, "halve": halve}, (attack, scores, result.detail,
                                                          [e.message[:200] for e in result.exercises])
    assert result.status == "graded", (result.status, result.detail)
    assert all(len(e.message) <= 6000 for e in result.exercises)


def test_rebinding_a_course_name_in_an_answer_cell_does_not_reach_the_tests(course):
    """``halve`` has visible checks only: a fake ``Check`` from the learner would pass it if the judge used it."""
    fake = ("class Check:\n    def __init__(self, *a):\n        pass\n    def __getattr__(self, name):\n"
            "        return lambda *a, **k: (a[1] if len(a) > 1 else None)\n")

    def wrong_halve(nb):
        nb.cells[4].source = "def halve(x):\n    return 0\n"

    result = course(fake + RIGHT, edit=wrong_halve)
    assert _scores(result) == {"double": ("passed", 2.0), "halve": ("failed", 0.0)}, _scores(result)


CHEATS = {  # a get_user_cached that queries on every call, then tries to hide it
    "reset the test's database counters": "db.reset_counts()",
    "read the counters' private storage": "db._counts.clear()",
    "schedule failures it then avoids": "db.fail_next(0)",
    "replace calls_to in its own kernel": "type(db).calls_to = lambda self, op: 1",
    "monkeypatch course_lib in its own kernel": (
        "import course_lib.database as _d\n    _d.SlowDatabase.calls_to = lambda self, op: 1"),
}


@pytest.mark.parametrize("cheat", list(CHEATS), ids=list(CHEATS))
def test_the_tests_objects_answer_only_their_learner_api(cheat, grade_lesson):
    answer = ("def get_user_cached(db, cache, user_id):\n    user = db.get_user(user_id)\n"
              f"    {CHEATS[cheat]}\n    cache[user_id] = user\n    return user\n")
    result = grade_lesson("01", {"cache-aside-read": answer})
    scores = {e.id: (e.status, e.score) for e in result.exercises}
    assert scores["cache-aside-read"] == ("failed", 0.0), (cheat, scores)
    assert scores["hit-ratio-math"][0] == "passed"


def test_the_judge_is_reported_among_the_protections():
    assert any("grader.sandbox.judge" in line for line in active_protections())


# ---- reading what it must not, leaking hidden tests -------------------------------------------------------------

def test_course_files_are_not_there(course):
    probe = ("import os\nfound = {}\n"
             "for p in ['{SOURCE}', '%s/solutions', '%s', '%s/gradebook.db', os.path.expanduser('~root')]:\n"
             "    try:\n        found[p] = sorted(os.listdir(p)) if os.path.isdir(p) else open(p).read()[:50]\n"
             "    except Exception as e:\n        found[p] = type(e).__name__\n"
             "print(found)\n" % (ROOT, ROOT, ROOT)) + RIGHT
    result = course(probe)
    printed = _outputs(result, "answer")
    assert "solutions" not in printed.replace(f"{ROOT}/solutions", "") and "BEGIN SOLUTION" not in printed
    assert "FileNotFoundError" in printed and result.score == 5
    _no_leak(result)


def test_environment_and_process_secrets(course, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret-value")
    probe = ("import os\nvals = [str(os.environ)]\nfor p in ['/proc/1/environ', '/proc/self/environ', "
             "'/proc/self/mem']:\n    try:\n        vals.append(open(p, 'rb').read(4000).decode('latin1'))\n"
             "    except Exception as e:\n        vals.append(type(e).__name__)\nprint(vals)\n") + RIGHT
    result = course(probe)
    assert "s3cret-value" not in _text(result) and result.score == 5


LEAKS = {  # each appends what it finds to _dump; the cell then says whether the marker was in it
    "IPython history, In/_ih and linecache": (
        "import linecache\n_dump.append(repr(In) + repr(_ih) + repr(dict(linecache.cache)))\n"),
    "functions the hidden tests defined": (
        "for _n, _v in list(globals().items()):\n    if hasattr(_v, '__code__'):\n"
        "        _dump.append(_n + repr(_v.__code__.co_consts))\n_dump.append(repr(sorted(globals())))\n"),
    "an audit hook recording compiled code": (
        "import sys\ntry:\n    sys.addaudithook(lambda e, a: _dump.append(repr(a)) if e == 'compile' else None)\n"
        "except Exception as e:\n    print(e)\n"),
}


def test_hidden_tests_do_not_leak_into_reports(course):
    """Every leak attempt in one learner cell after the tests (one grading run for all of them)."""
    hook = LEAKS["an audit hook recording compiled code"]  # installed before the tests run
    probe = ("".join(v for k, v in LEAKS.items() if v != hook)
             + "_all = ''.join(_dump)\nprint(len(_all), 'LEAKED' if 'hidden-' + 'marker-7f3a' in _all "
               "or '_hidden_' + 'check' in _all else 'clean')\n")
    result = course("_dump = []\n" + hook + RIGHT, after_tests=probe)
    _no_leak(result)
    record = next(c["record"] for c in result.cells if c["kind"] == "learner")
    assert record["status"] == "ok", record  # the probes ran to the end
    printed = _outputs(result)
    assert "clean" in printed and "LEAKED" not in printed
    assert result.score == 5


IN_TEST_PROBES = (  # run by the hidden tests themselves (they call double): frames, heap and tracing
    "import sys, gc\n_dump = []\n"
    "def _frames():\n    try:\n        raise ValueError\n    except ValueError as e:\n"
    "        f = e.__traceback__.tb_frame\n    out = []\n    while f is not None:\n"
    "        out.append(f.f_code.co_consts)\n        f = f.f_back\n    return out\n"
    "def _stack():\n    f, out = sys._getframe(), []\n    while f is not None:\n"
    "        out.append(f.f_code.co_consts)\n        f = f.f_back\n    return out\n"
    "def _heap():\n    return [o.__code__.co_consts for o in gc.get_objects() if callable(o) and hasattr(o, '__code__')]\n"
    "def _tracer(frame, event, arg):\n    _dump.append(repr(frame.f_code.co_consts))\n    return None\n"
    "try:\n    sys.settrace(_tracer)\nexcept Exception as e:\n    _dump.append(type(e).__name__)\n"
    "def double(x):\n    for grab in (_frames, _stack, _heap):\n        try:\n            _dump.append(repr(grab()))\n"
    "        except Exception as e:\n            _dump.append(type(e).__name__)\n    return 2 * x\n"
)


@pytest.mark.parametrize("limits", [FAST, Limits(cell_timeout=4, notebook_timeout=40, isolation="off")],
                         ids=["protections on", "protections off: the judge alone"])
def test_frames_heap_and_tracing_from_inside_the_tests_leak_nothing(course, limits):
    probe = ("sys.settrace(None) if False else None\n_all = ''.join(_dump)\n"
             "print(len(_all), 'LEAKED' if 'hidden-' + 'marker-7f3a' in _all else 'clean')\n")
    result = course(IN_TEST_PROBES, after_tests=probe, limits=limits)
    printed = _outputs(result)
    assert "clean" in printed and "LEAKED" not in printed, printed
    _no_leak(result)
    assert result.score == 5


def test_forging_a_pass_through_the_runners_frame_is_blocked(course):
    """The complete exploit: find the runner's ``send`` and the cell's nonce, report ``ok``, exit."""
    exploit = ("import sys, os\ndef double(x):\n    f = sys._getframe()\n"
               "    while f is not None and 'send' not in f.f_locals:\n        f = f.f_back\n"
               "    loc = f.f_locals\n    loc['send']({'index': loc['index'], 'nonce': loc['nonce'], 'status': 'ok', "
               "'outputs': [], 'seconds': 0})\n    os._exit(0)\n")
    result = course(exploit)
    assert _scores(result)["double"] == ("failed", 0.0) and result.status == "graded"
    assert "sys._getframe" in result.exercises[0].message


def test_what_test_cells_print_is_not_reported(course):
    result = course("def double(x):\n    print('called with', x)\n    return 2 * x\n")
    record = next(c["record"] for c in result.cells if c["grade_id"] == "double-tests")
    assert record["outputs"] == [] and result.score == 5


def test_stealing_the_next_cell_from_stdin_gets_ciphertext(course):
    steal = ("import os, threading\n_stolen = []\n"
             "threading.Thread(target=lambda: _stolen.append(os.read(0, 1 << 20)), daemon=True).start()\n" + RIGHT)
    result = course(steal, after_tests="print(_stolen)\n", limits=Limits(cell_timeout=4, notebook_timeout=12))
    _no_leak(result)
    assert result.status in ("graded", "timed_out") and _scores(result)["halve"][1] in (0.0, 3.0)


# ---- system access ----------------------------------------------------------------------------------------------

SYSTEM = {
    "start a program": "import subprocess\nsubprocess.run(['id'])\n",
    "os.system": "import os\nos.system('touch /tmp/x')\n",
    "fork bomb": "import os\nwhile True:\n    os.fork()\n",
    "connect to the internet": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\n",
    "resolve a name": "import socket\nsocket.getaddrinfo('example.com', 80)\n",
    "write into the grader's code": f"open('{ROOT}/grader/pwned.py', 'w').write('x')\n",
    "raise resource limits": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n",
}


def test_system_access_is_refused(course):
    """Each attack is its own learner cell after the tests (one grading run): every one must error."""
    def edit(nb):
        for offset, attack in enumerate(SYSTEM.values()):
            nb.cells.insert(4 + offset, new_code_cell(attack))

    result = course(RIGHT, edit=edit)
    records = [c["record"] for c in result.cells if c["kind"] == "learner"]
    assert len(records) == len(SYSTEM)
    for attack, record in zip(SYSTEM, records):
        assert record["status"] == "error", (attack, record)
    assert result.status == "graded" and result.score == 5
    assert not (ROOT / "grader" / "pwned.py").exists()


# ---- hangs and exhaustion ----------------------------------------------------------------------------------------

def test_a_loop_that_ignores_the_cell_alarm_costs_the_notebook_budget(course):
    result = course("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",
                    limits=Limits(cell_timeout=2, notebook_timeout=8))
    assert result.status == "timed_out" and result.score == 0
    assert result.seconds < 12


def test_sleeping_threads_are_killed_at_the_end(course):
    result = course("import threading, time\nthreading.Thread(target=time.sleep, args=(1000,)).start()\n" + RIGHT)
    assert result.status == "graded" and result.score == 5 and result.seconds < 20


def test_a_thread_bomb_hits_the_process_limit(course):
    bomb = "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    result = course(RIGHT, after_tests=bomb, limits=Limits(cell_timeout=6, notebook_timeout=40, max_processes=64))
    record = next(c["record"] for c in result.cells if c["kind"] == "learner")
    assert record["status"] == "error" and "thread" in record["evalue"]
    assert result.status == "graded" and result.score == 5


@pytest.mark.parametrize("hog", [
    "_x = bytearray(64 * 1024**3)\n",
    "_keep = []\nwhile True:\n    _keep.append(bytearray(50 * 1024**2))\n",
], ids=["one huge allocation", "growing memory"])
def test_memory_exhaustion(course, hog):
    result = course(RIGHT, after_tests=hog, limits=Limits(cell_timeout=10, notebook_timeout=40, memory_bytes=1024**3))
    assert result.status in ("graded", "crashed")
    assert _scores(result)["double"] == ("passed", 2.0)


@pytest.mark.parametrize("where", ["~/fill", "/tmp/fill"])
def test_disk_exhaustion(course, where):
    fill = (f"import os\np = os.path.expanduser('{where}')\nwith open(p, 'wb') as f:\n"
            "    while True:\n        f.write(b'x' * (1 << 20))\n")
    result = course(RIGHT, after_tests=fill, limits=Limits(cell_timeout=10, notebook_timeout=40,
                                                            disk_bytes=32 * 1024**2, file_bytes=1024**3))
    record = next(c["record"] for c in result.cells if c["kind"] == "learner")
    assert record["status"] == "error" and result.score == 5


def test_output_floods(course):
    flood = ("from IPython.display import display\nfor i in range(200_000):\n    print(i)\n"
             "for i in range(5_000):\n    display('y' * 100_000)\n")
    result = course(RIGHT, after_tests=flood)
    record = next(c["record"] for c in result.cells if c["kind"] == "learner")
    assert len(record["outputs"]) <= 22 and len(json.dumps(record)) < 3_000_000
    assert result.score == 5


def test_deeply_nested_code(course):
    result = course("x = " + "[" * 100_000 + "]" * 100_000 + "\n" + RIGHT)
    assert result.status == "graded" and _scores(result)["double"][1] == 0.0 and _scores(result)["halve"][1] == 3.0


# ---- broken notebooks -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    "{ not json",
    json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}),
    "[" * 200_000 + "]" * 200_000,
    None,  # missing file
    json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}),
], ids=["not json", "version 3", "deeply nested json", "missing file", "invalid cells"])
def test_broken_notebooks_are_recorded(course, tmp_path, content):
    course()  # writes the source
    bad = tmp_path / "bad.ipynb"
    if content is not None:
        bad.write_text(content)
    result = grade_notebook(tmp_path / "source.ipynb", bad, limits=FAST)
    assert result.status == "unreadable" and result.score == 0 and result.detail


def test_a_huge_notebook_is_refused_before_running(course, tmp_path):
    course()
    nb = _source()
    nb.cells[2].source = "# " + "x" * (21 * 1024**2) + "\n" + RIGHT
    bad = tmp_path / "huge.ipynb"
    nbformat.write(nb, bad)
    result = grade_notebook(tmp_path / "source.ipynb", bad, limits=FAST)
    assert result.status == "unreadable" and "limit" in result.detail


# ---- legitimate work still passes -------------------------------------------------------------------------------

def test_protections_are_reported():
    lines = active_protections()
    assert any("bubblewrap" in line for line in lines) and not any(line.startswith("NOT ACTIVE") for line in lines)
    assert "isolation off" in active_protections("off")[0]


def test_a_real_lesson_gets_full_marks_under_isolation():
    source = ROOT / "solutions" / "04-simple-cache" / "simple_cache.ipynb"
    result = grade_notebook(source, source, limits=Limits(cell_timeout=60, notebook_timeout=120))
    assert result.score == result.max_score > 0, [(e.id, e.message) for e in result.exercises]


def test_a_real_redis_is_reached_through_the_sandbox(course, redis_url):
    probe = ("from course_lib import get_redis\nr = get_redis()\nr.set('adversarial:k', 'v')\n"
             "assert r.get('adversarial:k') == 'v'\nprint('redis ok')\n") + RIGHT
    result = course(probe, redis_url=redis_url)
    assert result.score == 5 and "redis ok" in _outputs(result, "answer"), result.cells[1]


# ---- without bubblewrap: the fallback still isolates what it can ---------------------------------------------------

@pytest.fixture
def no_bwrap(monkeypatch):
    import grader.sandbox.isolation as isolation

    found = dict(isolation.tools())
    found["bwrap"] = None
    monkeypatch.setattr(isolation, "tools", lambda: found)
    return found


def test_without_bubblewrap_the_missing_protection_is_reported(no_bwrap):
    lines = active_protections()
    assert any(line.startswith("NOT ACTIVE: bubblewrap") for line in lines)


def test_without_bubblewrap_the_course_folder_and_network_are_still_refused(course, no_bwrap):
    probe = (f"import socket\nfor p in ['{ROOT}/solutions', '{{SOURCE}}']:\n    try:\n        print(open(p).read()[:80])\n"
             "    except Exception as e:\n        print(type(e).__name__)\n"
             "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\nexcept Exception as e:\n"
             "    print('net', type(e).__name__)\n") + RIGHT
    result = course(probe)
    printed = _outputs(result, "answer")
    assert printed.count("PermissionError") >= 1 and "net" in printed and result.score == 5
    _no_leak(result)
