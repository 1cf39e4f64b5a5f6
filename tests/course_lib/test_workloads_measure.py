"""course_lib.workloads and course_lib.measure."""

import threading
from collections import Counter

import pytest
from cachetools import LFUCache, LRUCache
from hypothesis import given, settings, strategies as st

from course_lib.measure import HitCounter, LatencyStats, measure, percentile, timed
from course_lib.workloads import hot_key_bursts, optimal_hit_ratio, replay_hit_ratio, uniform, zipf


@pytest.mark.parametrize("make", [zipf, uniform, hot_key_bursts])
def test_workloads_are_seeded_and_in_range(make):
    a = make(2000, n_keys=50, seed=3)
    assert a == make(2000, n_keys=50, seed=3)
    assert a != make(2000, n_keys=50, seed=4)
    assert len(a) == 2000 and min(a) >= 1 and max(a) <= 50


def test_zipf_favours_low_ranks():
    counts = Counter(zipf(20_000, n_keys=100, s=1.0, seed=1))
    assert counts[1] > counts[2] > counts[10] > counts[100]
    assert counts[1] / counts[2] == pytest.approx(2, rel=0.15)


def test_hot_key_bursts_repeat_one_key():
    keys = hot_key_bursts(400, n_keys=1000, burst_every=200, burst_length=50, seed=2)
    assert len(set(keys[:50])) == 1 and len(set(keys[200:250])) == 1


@pytest.mark.parametrize("call", [lambda: zipf(-1), lambda: uniform(5, n_keys=0), lambda: zipf(5, s=-1),
                                  lambda: hot_key_bursts(5, burst_length=300, burst_every=200),
                                  lambda: optimal_hit_ratio([1], -1)])
def test_workload_arguments_are_validated(call):
    with pytest.raises(ValueError):
        call()


def _brute_force_optimal(trace, capacity):
    """Exhaustive search over every eviction choice (tiny traces only)."""
    best = 0

    def go(i, cache, hits):
        nonlocal best
        if i == len(trace):
            best = max(best, hits)
            return
        key = trace[i]
        if key in cache:
            go(i + 1, cache, hits + 1)
        elif len(cache) < capacity:
            go(i + 1, cache | {key}, hits)
        else:
            for victim in cache:
                go(i + 1, (cache - {victim}) | {key}, hits)

    go(0, frozenset(), 0)
    return best / len(trace)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=9), st.integers(1, 3))
def test_belady_is_optimal_on_small_traces(trace, capacity):
    assert optimal_hit_ratio(trace, capacity) == pytest.approx(_brute_force_optimal(trace, capacity))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=300), st.integers(1, 20))
def test_no_policy_beats_belady(trace, capacity):
    best = optimal_hit_ratio(trace, capacity)
    assert replay_hit_ratio(LRUCache(capacity), trace) <= best + 1e-12
    assert replay_hit_ratio(LFUCache(capacity), trace) <= best + 1e-12
    assert optimal_hit_ratio(trace, capacity + 1) >= best


def test_replay_counts_hits_of_a_dict():
    assert replay_hit_ratio({}, [1, 2, 1, 1, 3]) == pytest.approx(2 / 5)
    assert replay_hit_ratio({}, []) == 0.0


def test_percentiles_use_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1], 101)


def test_latency_stats_summary_in_milliseconds():
    stats = LatencyStats([1_000_000 * i for i in range(1, 101)])
    summary = stats.summary()
    assert summary["count"] == 100 and summary["p50_ms"] == 50 and summary["p99_ms"] == 99
    assert stats.total_ms == sum(range(1, 101)) and "p95=95.000 ms" in str(stats)
    with pytest.raises(ValueError, match="no samples"):
        LatencyStats().mean_ms


def test_measure_and_timed_record_one_sample_per_call():
    seen = []
    stats = measure(seen.append, [1, 2, 3])
    assert seen == [1, 2, 3] and stats.count == 3 and all(ns >= 0 for ns in stats.samples_ns)
    pairs = measure(lambda a, b: seen.append(a + b), [(1, 2)], star=True)
    assert seen[-1] == 3 and pairs.count == 1
    with timed(stats):
        pass
    assert stats.count == 4


def test_hit_counter_is_thread_safe():
    counter, barrier = HitCounter(), threading.Barrier(8)

    def work():
        barrier.wait()
        for _ in range(1000):
            counter.hit()
            counter.miss()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.hits == counter.misses == 8000 and counter.ratio == 0.5
    counter.reset()
    assert counter.total == 0 and counter.ratio == 0.0
