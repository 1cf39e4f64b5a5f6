"""Seeded request streams for hit-ratio experiments, and the best possible hit ratio.

Every generator takes a ``seed`` and returns a list of keys (ints from 1 to
``n_keys``), so the same call always gives the same stream.

>>> zipf(5, n_keys=100, seed=1) == zipf(5, n_keys=100, seed=1)
True
>>> optimal_hit_ratio([1, 2, 1, 3, 1, 2], capacity=2)
0.3333333333333333
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from typing import Callable, Hashable, Iterable, MutableMapping, Sequence

__all__ = ["zipf", "uniform", "hot_key_bursts", "optimal_hit_ratio", "replay_hit_ratio"]


def _check(n: int, n_keys: int) -> None:
    if n < 0:
        raise ValueError(f"n (number of requests) must be >= 0, got {n}")
    if n_keys < 1:
        raise ValueError(f"n_keys must be >= 1, got {n_keys}")


def zipf(n: int, *, n_keys: int = 1000, s: float = 1.0, seed: int = 0) -> list[int]:
    """``n`` keys drawn with probability proportional to ``1 / rank**s``.

    Key 1 is the most popular. ``s`` around 1 resembles real web traffic.
    """
    _check(n, n_keys)
    if s < 0:
        raise ValueError(f"the Zipf exponent s must be >= 0, got {s}")
    weights = [1.0 / (rank ** s) for rank in range(1, n_keys + 1)]
    cumulative = list(itertools.accumulate(weights))
    rng = random.Random(seed)
    total = cumulative[-1]
    return [bisect.bisect_left(cumulative, rng.random() * total) + 1 for _ in range(n)]


def uniform(n: int, *, n_keys: int = 1000, seed: int = 0) -> list[int]:
    """``n`` keys drawn uniformly: the worst case for any cache."""
    _check(n, n_keys)
    rng = random.Random(seed)
    return [rng.randint(1, n_keys) for _ in range(n)]


def hot_key_bursts(
    n: int, *, n_keys: int = 1000, burst_every: int = 200, burst_length: int = 50, seed: int = 0
) -> list[int]:
    """Uniform background traffic with periodic bursts on one hot key.

    Every ``burst_every`` requests a new hot key is chosen and the next
    ``burst_length`` requests all ask for it, as when a post goes viral.
    """
    _check(n, n_keys)
    if burst_every < 1 or not 0 <= burst_length <= burst_every:
        raise ValueError("need burst_every >= 1 and 0 <= burst_length <= burst_every")
    rng = random.Random(seed)
    keys, hot = [], 1
    for i in range(n):
        phase = i % burst_every
        if phase == 0:
            hot = rng.randint(1, n_keys)
        keys.append(hot if phase < burst_length else rng.randint(1, n_keys))
    return keys


def optimal_hit_ratio(trace: Sequence[Hashable], capacity: int) -> float:
    """Hit ratio of Belady's offline policy: evict the key needed furthest in the future.

    No real cache of that capacity can do better on this trace, which makes
    it the ceiling to draw next to LRU, LFU and friends.
    """
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    if not trace:
        return 0.0
    never = len(trace)
    next_use = [never] * len(trace)
    last_seen: dict[Hashable, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        next_use[i] = last_seen.get(trace[i], never)
        last_seen[trace[i]] = i
    cached: dict[Hashable, int] = {}  # key -> its next use
    heap: list[tuple[int, int, Hashable]] = []  # (-next use, tiebreak, key); stale entries skipped
    hits = 0
    for i, key in enumerate(trace):
        if key in cached:
            hits += 1
        elif capacity == 0:
            continue
        elif len(cached) >= capacity:
            while True:
                neg, _, victim = heapq.heappop(heap)
                if cached.get(victim) == -neg:
                    del cached[victim]
                    break
        cached[key] = next_use[i]
        heapq.heappush(heap, (-next_use[i], i, key))
    return hits / len(trace)


def replay_hit_ratio(
    cache: MutableMapping, trace: Iterable[Hashable], load: Callable[[Hashable], object] = lambda key: key
) -> float:
    """Replay ``trace`` through a mapping-style cache (cache-aside) and return its hit ratio.

    Works with any cachetools cache or a dict. A hit is a key found in the
    cache; on a miss ``load(key)`` is stored.
    """
    hits = total = 0
    for key in trace:
        total += 1
        try:
            cache[key]
            hits += 1
        except KeyError:
            cache[key] = load(key)
    return hits / total if total else 0.0
