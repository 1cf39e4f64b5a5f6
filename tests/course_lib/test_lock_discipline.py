"""course_lib.lock_discipline and course_lib.answer_code: shared state changed atomically or under its lock."""

import ast
import textwrap

import pytest

from course_lib import answer_code
from course_lib.answer_code import AnswerCodeUnavailable, Definition
from course_lib.lock_discipline import require_locking, unguarded_state
from grader.authoring.lesson_contract import solution_of
from grader.course.layout import load


def findings(code, name=None, others=""):
    code = textwrap.dedent(code)
    classes = [n for n in ast.parse(code).body if isinstance(n, ast.ClassDef)]
    cls = next(c for c in classes if name in (None, c.name))
    extra = tuple(n for n in ast.parse(textwrap.dedent(others)).body if isinstance(n, ast.ClassDef)) if others else ()
    found = Definition(cls, code.splitlines(), "answer cell 'x'", extra + tuple(c for c in classes if c is not cls))
    return [(f.method, f.shape, f.attr) for f in unguarded_state(found)]


LOCKED = """
class Cache:
    def __init__(self):
        self._lock = threading.Lock()
        self._data = {}
        self.hits = 0

    def get(self, key):
        with self._lock:
            if key in self._data:
                self.hits += 1
                return self._data[key]
            return None

    def set(self, key, value):
        self._data[key] = value          # one operation: atomic, no lock needed

    def delete(self, key):
        return self._data.pop(key, None) is not None

    def size(self):
        return len(self._data)

    def cleanup(self):
        with self._lock:
            return self._expire()

    def _expire(self):                    # the caller holds the lock
        dead = [k for k, v in self._data.items() if v is None]
        for k in dead:
            del self._data[k]
        return len(dead)
"""


def test_a_class_that_locks_its_multi_step_operations_passes():
    assert findings(LOCKED) == []


@pytest.mark.parametrize("edit, expected", [
    (("        with self._lock:\n            if key in self._data:\n                self.hits += 1\n"
      "                return self._data[key]\n            return None\n",
      "        if key in self._data:\n            self.hits += 1\n            return self._data[key]\n        return None\n"),
     ("get", "read-modify-write", "hits")),
    (("        with self._lock:\n            return self._expire()\n", "        return self._expire()\n"),
     ("_expire", "loop", "_data")),
    (("        self._data[key] = value          # one operation: atomic, no lock needed\n",
      "        if key not in self._data:\n            self._data[key] = value\n"),
     ("set", "check-then-act", "_data")),
])
def test_each_shape_of_race_is_found_where_it_is(edit, expected):
    assert LOCKED.count(edit[0]) == 1
    assert findings(LOCKED.replace(*edit)) == [expected]


def test_a_helper_called_once_without_the_lock_is_not_guarded_by_its_other_callers():
    code = LOCKED + "\n    def purge(self):\n        return self._expire()\n"
    assert findings(code) == [("_expire", "loop", "_data")]


def test_lock_free_designs_pass():
    assert findings("""
        class Monitor:
            def __init__(self):
                self._hits = itertools.count()
                self._seen = collections.deque()
            def record_hit(self):
                next(self._hits)
                self._seen.append(1)
            def total(self):
                return len(self._seen)
    """) == []


def test_a_class_without_a_lock_is_still_checked():
    assert findings("""
        class Monitor:
            def __init__(self):
                self.hits = 0
            def record_hit(self):
                self.hits = self.hits + 1
    """) == [("record_hit", "read-modify-write", "hits")]


def test_acquire_release_a_condition_and_a_lock_from_a_base_class_count_as_held():
    base = """
        class Base:
            def __init__(self):
                self._mutex = threading.RLock()
    """
    assert findings("""
        class Cache(Base):
            def add(self, key):
                self._mutex.acquire()
                try:
                    self.n += 1
                finally:
                    self._mutex.release()
            def wait_for(self, key):
                with self._cond:
                    while key not in self._ready:
                        self._cond.wait()
                    self._ready.discard(key)
            def reset(self):
                with self._mutex:
                    self.n = 0
    """, "Cache", others=base) == []


def test_a_function_defined_in_a_method_runs_later_without_the_lock():
    assert findings("""
        class Refresher:
            def __init__(self):
                self._lock = threading.Lock()
                self._running = set()
            def start(self, key):
                def job():
                    if key in self._running:
                        self._running.discard(key)
                with self._lock:
                    self._running.add(key)
                    threading.Thread(target=job).start()
    """) == [("start() > job", "check-then-act", "_running")]


def test_a_method_passed_as_a_thread_target_is_not_guarded_by_its_callers_lock():
    assert findings("""
        class Refresher:
            def __init__(self):
                self._lock = threading.Lock()
                self.n = 0
            def start(self):
                with self._lock:
                    self._bump()
                    threading.Thread(target=self._bump).start()
            def _bump(self):
                self.n += 1
    """) == [("_bump", "read-modify-write", "n")]


def test_writes_under_two_different_locks_do_not_guard_each_other():
    assert findings("""
        class Buffer:
            def __init__(self):
                self._lock, self._flush_lock = threading.Lock(), threading.Lock()
                self._dirty = {}
            def put(self, key, value):
                with self._lock:
                    self._dirty[key] = value
            def flush(self, key):
                with self._flush_lock:
                    if key in self._dirty:
                        del self._dirty[key]
    """) == [("flush", "check-then-act", "_dirty")]


def test_every_reference_solution_passes():
    """No thread-safe exercise's reference answer is reported: the rule cannot fail a correct lesson answer."""
    checked = []
    for lesson in load().lessons:
        answers = solution_of(lesson.slug)
        earlier: list[ast.ClassDef] = []
        for exercise in lesson.exercises:
            source = answers[exercise.id]
            classes = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
            for cls in classes:
                if cls.name == exercise.thread_safe:
                    found = Definition(cls, source.splitlines(), "ref", tuple(earlier + classes))
                    assert unguarded_state(found) == [], (exercise.id, cls.name)
                    checked.append(exercise.id)
            earlier += classes
    declared = [e.id for lesson in load().lessons for e in lesson.exercises if e.thread_safe]
    assert checked == declared and len(declared) >= 12


@pytest.fixture
def provided(monkeypatch):
    """answer_code as the judge leaves it, put back after the test."""
    monkeypatch.setattr(answer_code, "_CELLS", [])
    monkeypatch.setattr(answer_code, "_PROVIDED", False)
    return answer_code.provide


def test_the_message_says_where_what_and_how_to_fix_it(provided):
    code = textwrap.dedent(LOCKED.replace("        with self._lock:\n            return self._expire()\n",
                                          "        return self._expire()\n"))
    provided([("x", code)])

    class FakeCheck:
        exercise_id = "x"

        def fail(self, message):
            raise AssertionError(message)

    with pytest.raises(AssertionError) as failed:
        require_locking(FakeCheck(), "Cache")
    message = str(failed.value)
    assert "Cache._expire(), answer cell 'x', line 28" in message
    assert "loops over self._data" in message and "with self._lock:" in message


def test_the_class_is_read_from_the_exercise_block_and_a_missing_one_is_explained(provided):
    provided([("a", "class C:\n    x = 1\n"), ("b", "y = 2\n"), ("b", "class C:\n    z = 3\n"),
              ("c", "class C:\n    w = 4\n")])
    assert answer_code.definition("C", "a").where == "answer cell 'a'"
    assert answer_code.definition("C", "b").where == "the cell you added after answer cell 'b'"
    with pytest.raises(AnswerCodeUnavailable, match="no `class D:` statement"):
        answer_code.definition("D", "b")
    with pytest.raises(AnswerCodeUnavailable, match="no answer cell 'nope'"):
        answer_code.definition("C", "nope")


def test_nothing_given_is_a_clear_error_not_a_pass(provided):
    provided([])
    with pytest.raises(AnswerCodeUnavailable, match="did not give the tests the code"):
        answer_code.definition("C", "a")
