"""course_lib.interleave: a conflicting call forced into the middle of another, at a pause point."""

import threading

import pytest

from course_lib.interleave import Interleaving


class Counter:
    """read-modify-write through a dependency (the pause point); ``locked`` chooses the design."""

    def __init__(self, read, locked=True):
        self.read, self.locked, self.value, self.lock = read, locked, 0, threading.Lock()

    def bump(self):
        if self.locked:
            with self.lock:
                self.value = self.read(self.value) + 1
        else:
            self.value = self.read(self.value) + 1


@pytest.mark.parametrize("locked, expected", [(True, 2), (False, 1)])
def test_a_missing_lock_loses_the_update_every_time_and_a_held_one_never(locked, expected):
    moments = Interleaving(grace=0.05)
    for _ in range(20):
        counter = Counter(moments.pausing(lambda v: v), locked=locked)
        with moments.armed(counter.bump, what="counter.bump()") as inside:
            counter.bump()
        assert inside.fired and counter.value == expected


def test_the_at_th_pause_point_fires_counted_over_every_call():
    moments = Interleaving(grace=0.05)
    seen = []
    read = moments.pausing(lambda v: v)
    with moments.armed(lambda: seen.append("conflict"), at=2) as inside:
        read(1)
        seen.append("first done")
        read(2)
        seen.append("second done")
    assert inside.fired and seen == ["first done", "conflict", "second done"]


def test_a_block_whose_pause_point_is_never_reached_has_not_fired():
    moments = Interleaving()
    with moments.armed(lambda: 1 / 0) as inside:
        pass
    assert not inside.fired and inside.error is None


def test_pause_methods_binds_a_pause_before_each_named_method():
    moments = Interleaving(grace=0.05)
    class Store(dict):
        pass
    store = moments.pause_methods(Store(a=1), "get")
    order = []
    with moments.armed(lambda: order.append("conflict")) as inside:
        order.append(store.get("a"))
    assert inside.fired and order == ["conflict", 1] and store.get.__name__ == "get"


def test_a_conflict_that_raises_fails_the_block_with_what_was_called():
    moments = Interleaving(grace=0.05)
    read = moments.pausing(lambda: None)

    def delete():
        raise KeyError("k")

    with pytest.raises(AssertionError, match=r"cache.delete\('k'\), called from another thread .* raised KeyError"):
        with moments.armed(delete, what="cache.delete('k')"):
            read()


def test_a_conflict_that_never_returns_is_reported_as_a_deadlock():
    moments = Interleaving(grace=0.01, timeout=0.2)
    never = threading.Event()
    read = moments.pausing(lambda: None)
    try:
        with pytest.raises(AssertionError, match="had not returned 0.2 s later: a deadlock"):
            with moments.armed(never.wait, what="cache.set('k', 1)"):
                read()
    finally:
        never.set()


def test_blocks_do_not_nest_and_at_counts_from_one():
    moments = Interleaving()
    with moments.armed(lambda: None):
        with pytest.raises(RuntimeError, match="already armed"):
            with moments.armed(lambda: None):
                pass
    with pytest.raises(ValueError, match="counted from 1"):
        moments.armed(lambda: None, at=0)
