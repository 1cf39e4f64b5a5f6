"""Measure what a cache does: latency percentiles and hit/miss counters.

>>> stats = measure(lambda x: x * 2, range(100))
>>> stats.count
100
>>> stats.p50_ms <= stats.p95_ms <= stats.p99_ms <= stats.max_ms
True
>>> counter = HitCounter()
>>> counter.hit(); counter.hit(); counter.miss()
>>> counter.ratio
0.6666666666666666
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from .config import latency_scale

__all__ = ["LatencyStats", "measure", "timed", "HitCounter", "percentile"]


def percentile(sorted_values: list[int] | list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, nearest-rank method."""
    if not sorted_values:
        raise ValueError("no samples: measure at least one call before asking for percentiles")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LatencyStats:
    """Latency samples in nanoseconds (from ``time.perf_counter_ns``) and their summary.

    ``scale`` is the latency scale (``COURSE_LATENCY_SCALE``) the samples were measured at: the
    charts say it, since at 0.01 a simulated 100 ms query takes 1 ms.
    """

    samples_ns: list[int] = field(default_factory=list)
    scale: float = field(default_factory=latency_scale)

    def add(self, nanoseconds: int) -> None:
        self.samples_ns.append(int(nanoseconds))

    @property
    def count(self) -> int:
        return len(self.samples_ns)

    def _ms(self, q: float) -> float:
        return percentile(sorted(self.samples_ns), q) / 1e6

    @property
    def p50_ms(self) -> float:
        return self._ms(50)

    @property
    def p95_ms(self) -> float:
        return self._ms(95)

    @property
    def p99_ms(self) -> float:
        return self._ms(99)

    @property
    def max_ms(self) -> float:
        return self._ms(100)

    @property
    def mean_ms(self) -> float:
        if not self.samples_ns:
            raise ValueError("no samples: measure at least one call before asking for the mean")
        return statistics.fmean(self.samples_ns) / 1e6

    @property
    def total_ms(self) -> float:
        return sum(self.samples_ns) / 1e6

    def summary(self) -> dict[str, float]:
        """p50/p95/p99/mean/max in milliseconds plus the sample count."""
        return {
            "count": self.count, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms, "mean_ms": self.mean_ms, "max_ms": self.max_ms,
        }

    def __str__(self) -> str:
        if not self.samples_ns:
            return "LatencyStats(no samples)"
        return (f"n={self.count} p50={self.p50_ms:.3f} ms p95={self.p95_ms:.3f} ms "
                f"p99={self.p99_ms:.3f} ms max={self.max_ms:.3f} ms")


def measure(fn: Callable[..., Any], calls: Iterable[Any], *, star: bool = False) -> LatencyStats:
    """Call ``fn`` once per item of ``calls`` and record each call's latency.

    Each item is passed as the single argument, or unpacked when ``star`` is
    true (``measure(f, [(1, 2), (3, 4)], star=True)`` calls ``f(1, 2)``...).
    """
    stats = LatencyStats()
    clock = time.perf_counter_ns
    for item in calls:
        start = clock()
        if star:
            fn(*item)
        else:
            fn(item)
        stats.add(clock() - start)
    return stats


@contextlib.contextmanager
def timed(stats: LatencyStats) -> Iterator[None]:
    """Record how long the block took into ``stats``."""
    start = time.perf_counter_ns()
    try:
        yield
    finally:
        stats.add(time.perf_counter_ns() - start)


class HitCounter:
    """Thread-safe hit and miss counts, with the hit ratio."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def hit(self) -> None:
        with self._lock:
            self.hits += 1

    def miss(self) -> None:
        with self._lock:
            self.misses += 1

    @property
    def total(self) -> int:
        return self.hits + self.misses

    @property
    def ratio(self) -> float:
        """Hits divided by lookups (0.0 before the first lookup)."""
        total = self.total
        return self.hits / total if total else 0.0

    def reset(self) -> None:
        with self._lock:
            self.hits = self.misses = 0

    def __repr__(self) -> str:
        return f"HitCounter(hits={self.hits}, misses={self.misses}, ratio={self.ratio:.1%})"
