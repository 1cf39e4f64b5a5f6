"""dev-check's rules for an exercise declared thread_safe: its locking is graded and every public method stressed."""

import nbformat
import pytest

from course_lib.manifest import Exercise
from grader.authoring.thread_safety import stressed_interface, thread_safety_problems

LOCKED = "require_locking(check, \"Box\")\n"
BOX = """### BEGIN SOLUTION
import threading
class Box:
    def __init__(self):
        self._lock = threading.Lock()
        self._items = []
    def put(self, x):
        with self._lock:
            self._items.append(x)
    def peek(self):
        with self._lock:
            return list(self._items)
    def _helper(self):
        return None
### END SOLUTION
"""
BIGGER_BOX = """### BEGIN SOLUTION
class Box(Box):
    def take(self):
        with self._lock:
            return self._items.pop() if self._items else None
### END SOLUTION
"""


def answer(gid, text):
    return nbformat.v4.new_code_cell(text, metadata={"nbgrader": {"grade_id": gid, "solution": True}})


def checks_cell(gid, text):
    return nbformat.v4.new_code_cell(text, metadata={"nbgrader": {"grade_id": f"{gid}-tests", "grade": True, "points": 1}})


def problems(*cells, exercise="box"):
    nb = nbformat.v4.new_notebook(cells=list(cells))
    return thread_safety_problems("box.ipynb", nb, Exercise(exercise, "01-box", 1, "", (), thread_safe="Box"))


def test_every_public_method_stressed_and_the_locking_graded_passes():
    stress = "from course_lib.stress import hammer\nhammer(ops, interface=('put', 'peek'))\n"
    assert problems(answer("box", BOX), checks_cell("box", stress + LOCKED)) == []


def test_no_stress_at_all_names_the_methods_to_stress():
    [problem] = problems(answer("box", BOX), checks_cell("box", LOCKED))
    assert "does not run course_lib.stress.hammer" in problem and "('peek', 'put')" in problem


@pytest.mark.parametrize("stress", [
    "from course_lib.stress import hammer as _h\n_h(ops, interface=('put',))\n",
    "import course_lib.stress\ncourse_lib.stress.hammer(ops, interface=['put'])\n",
])
def test_a_public_method_left_out_is_named_whatever_the_import(stress):
    [problem] = problems(answer("box", BOX), checks_cell("box", stress + LOCKED))
    assert "not its public method(s) peek" in problem and "_helper" not in problem


def test_several_calls_add_up():
    stress = ("from course_lib.stress import hammer\nhammer(a, interface=('put',))\n"
              "hammer(b, interface=('peek',))\n")
    assert problems(answer("box", BOX), checks_cell("box", stress + LOCKED)) == []


def test_methods_of_the_class_in_earlier_answer_cells_count_and_later_ones_do_not():
    two = ("from course_lib.stress import hammer\nhammer(ops, interface=('put', 'peek'))\n" + LOCKED)
    cells = [answer("box", BOX), checks_cell("box", two), answer("bigger", BIGGER_BOX), checks_cell("bigger", two)]
    assert problems(*cells, exercise="box") == []
    [problem] = problems(*cells, exercise="bigger")
    assert "not its public method(s) take" in problem


def test_a_missing_require_locking_is_still_reported():
    stress = "from course_lib.stress import hammer\nhammer(ops, interface=('put', 'peek'))\n"
    [problem] = problems(answer("box", BOX), checks_cell("box", stress))
    assert "does not call require_locking(check, 'Box')" in problem


def test_an_interface_that_is_not_a_literal_does_not_count():
    assert stressed_interface("from course_lib.stress import hammer\nhammer(ops, interface=names)\n") is None
