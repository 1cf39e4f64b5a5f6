"""The channel (grader.sandbox.rpc) under load, with the learner's side in its own process as in grading.

Every test is seeded and checks answers, not times: a run either completes with the right results or
a thread is still waiting after a generous bound (a deadlock), which fails the test and names the calls
still outstanding.
"""

from __future__ import annotations

import ctypes
import random
import socket
import subprocess
import sys
import threading
import time

import pytest

from grader.sandbox.rpc.endpoint import Endpoint
from grader.sandbox.rpc.errors import ChannelClosed
from grader.sandbox.rpc.policy import JudgePolicy
from grader.sandbox.protocol import CellTimeout
from tests.support import in_threads

TESTS_CODE = ("__main__", __name__, "tests.support")  # where the judge-side code of these tests lives

# The learner's process: an Endpoint serving a namespace, with the runner's switch interval.
PEER = """
import socket, sys, threading, time
sys.setswitchinterval(1e-4)
from grader.sandbox.rpc.endpoint import Endpoint
from grader.sandbox.rpc.policy import Policy
namespace = {}
exec(sys.argv[2], namespace)
endpoint = Endpoint(socket.socket(fileno=int(sys.argv[1])), Policy(), name="learner", root=namespace.__getitem__)
while not endpoint.closed:
    time.sleep(0.05)
"""

LEARNER = """
import threading

def ping(n, pong):
    return 0 if n == 0 else 1 + pong(n - 1, ping)

class Store:
    def __init__(self):
        self.data, self.lock = {}, threading.Lock()
    def get(self, key, loader):
        with self.lock:  # held across the callback: the loader runs in the judge, in the waiting thread
            if key not in self.data:
                self.data[key] = loader(key)
            return self.data[key]
    def size(self):
        return len(self.data)

def echo(value):
    return value

def total(values):
    return sum(values)

def background(record, n):
    # the learner's own threads call into the judge while the judge's threads call the learner
    threads = [threading.Thread(target=lambda i=i: [record(i, k) for k in range(n)]) for i in range(4)]
    for t in threads:
        t.start()
    return threads

def join(threads):
    for t in threads:
        t.join()
    return True

_gate = threading.Event()

def stuck(after):
    _gate.wait()  # blocks this process's worker until open_gate() is called
    return after()

def open_gate():
    _gate.set()
"""

DEADLINE = 60.0  # seconds for a whole test's threads; a correct run takes well under one


@pytest.fixture
def peer():
    """The learner's process, serving LEARNER; its endpoint on this side is ``peer.judge``."""
    a, b = socket.socketpair()
    process = subprocess.Popen([sys.executable, "-c", PEER, str(b.fileno()), LEARNER], pass_fds=[b.fileno()])
    b.close()
    process.judge = Endpoint(a, JudgePolicy(TESTS_CODE), name="judge")
    yield process
    process.judge.close()
    process.wait(10)


@pytest.fixture
def judge(peer):
    return peer.judge


def _in_threads(judge: Endpoint, worker, n: int) -> None:
    """worker(i, rng) in n threads, seeded per thread; all must finish (else: the calls still waiting)."""
    in_threads(lambda i: worker(i, random.Random(1000 + i)), n, seconds=DEADLINE, still_waiting=judge.outstanding)


def test_deep_call_chains_bounce_between_the_processes_in_many_threads(judge):
    ping = judge.lookup("ping")

    def pong(n, ping_):
        return 0 if n == 0 else 1 + ping_(n - 1, pong)

    def worker(i, rng):
        for _ in range(5):
            depth = rng.randrange(1, 25)
            assert ping(depth, pong) == depth

    _in_threads(judge, worker, 8)


def test_a_random_mix_of_calls_from_both_sides_gets_every_answer_right(judge):
    store = judge.lookup("Store")()
    echo, total = judge.lookup("echo"), judge.lookup("total")
    recorded: list[tuple[int, int]] = []
    lock = threading.Lock()

    def record(i, k):
        with lock:
            recorded.append((i, k))

    handles = judge.lookup("background")(record, 50)

    def worker(i, rng):
        for _ in range(60):
            choice = rng.random()
            key = rng.randrange(40)
            if choice < 0.4:
                assert store.get(key, lambda k: k * k) == key * key
            elif choice < 0.6:
                value = [rng.randrange(1000) for _ in range(rng.randrange(1, 50))]
                assert echo(value) == value
            elif choice < 0.8:
                values = [rng.randrange(100) for _ in range(rng.randrange(1, 20))]
                assert total(values) == sum(values)
            else:
                blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
                assert echo(blob) == blob

    _in_threads(judge, worker, 8)
    assert judge.lookup("join")(handles) is True
    assert sorted(recorded) == [(i, k) for i in range(4) for k in range(50)]
    assert store.size() <= 40


def test_large_messages_cross_in_both_directions_at_once(judge):
    """Both sides send megabytes at the same time: each side's reader drains its socket, so no side
    blocks in a send while the other does too."""
    echo = judge.lookup("echo")

    def worker(i, rng):
        payload = [rng.randrange(1 << 30) for _ in range(150_000)]
        assert echo(payload) == payload

    _in_threads(judge, worker, 4)


def _interrupt(thread: threading.Thread) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(CellTimeout))


def test_a_call_abandoned_by_a_timeout_leaves_the_channel_working(judge):
    """A cell's timeout interrupts a judge thread waiting for the learner; the learner's code then calls
    back for the abandoned call: a worker serves it, the late reply is dropped, later calls work."""
    called_back = threading.Event()
    outcome: list[BaseException] = []

    def after():
        called_back.set()
        return "late"

    def waiting():
        try:
            judge.lookup("stuck")(after)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=waiting, daemon=True)
    thread.start()
    for _ in range(2000):  # until the call is in flight (a state, not a time)
        if [what for what, _ in judge.outstanding()] == ["stuck()"]:
            break
        time.sleep(0.005)
    assert [what for what, _ in judge.outstanding()] == ["stuck()"]
    _interrupt(thread)
    thread.join(DEADLINE)
    assert not thread.is_alive() and type(outcome[0]) is CellTimeout
    judge.lookup("open_gate")()  # the learner's code goes on and calls back for a call nobody waits for
    assert called_back.wait(DEADLINE)
    assert judge.lookup("echo")([1, 2]) == [1, 2]
    assert judge.outstanding() == []


def test_calls_fail_cleanly_when_the_learners_process_dies_mid_call(peer):
    judge = peer.judge
    errors: list[BaseException] = []

    def waiting():
        try:
            judge.lookup("stuck")(lambda: None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=waiting, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    while len(judge.outstanding()) < 4:
        time.sleep(0.005)
    stuck = judge.lookup("stuck")
    peer.kill()
    for t in threads:
        t.join(DEADLINE)
    assert len(errors) == 4 and all(isinstance(e, ChannelClosed) for e in errors), errors
    with pytest.raises(ChannelClosed):
        stuck(lambda: None)


def test_a_timeout_inside_a_nested_callback_ends_the_whole_call_chain(judge):
    """The judge's thread is deep in a chain (judge -> learner -> judge -> ...) when a cell's timeout
    interrupts it: the timeout goes up through every level to the test, not just the innermost call."""
    ping, blocked, outcome = judge.lookup("ping"), threading.Event(), []

    def pong(n, ping_):
        if n == 0:
            blocked.set()
            while True:  # an endless loop in a callback, at the bottom of a chain 8 calls deep
                time.sleep(0.001)
        return 1 + ping_(n - 1, pong)

    def test_cell():
        try:
            ping(7, pong)  # pong gets 6, 4, 2, 0
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=test_cell, daemon=True)
    thread.start()
    assert blocked.wait(DEADLINE)
    _interrupt(thread)
    thread.join(DEADLINE)
    assert not thread.is_alive() and type(outcome[0]) is CellTimeout, outcome
    assert judge.lookup("echo")("still working") == "still working"
