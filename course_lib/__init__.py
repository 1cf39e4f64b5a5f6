"""Infrastructure for the caching course: never the solution to an exercise.

The lessons and the grader import from here:

- ``SlowDatabase``: a real SQLite database with a simulated latency per query.
- ``get_redis``, ``redis_outage``, ``clear_namespace``, ``age_keys``: Redis,
  embedded (fakeredis) by default or real with ``REDIS_URL``.
- ``FakeClock``: a clock moved by hand, for TTLs without sleeping.
- ``HangingRedis``, ``silent_server``: a Redis that accepts and never answers (simulated on a fake
  clock, or a real silent socket).
- ``server_stats``, ``eviction_experiment``: Redis' INFO counters, and maxmemory eviction measured on a
  real server or simulated by a model.
- ``zipf``, ``uniform``, ``hot_key_bursts``, ``optimal_hit_ratio``,
  ``replay_hit_ratio``: seeded workloads and hit-ratio tools.
- ``LatencyStats``, ``measure``, ``timed``, ``HitCounter``: measurement.
- ``charts``: matplotlib figures of measured data (``charts.show(fig)``).
- ``Check``, ``CheckFailed``: the visible check cells' diagnostic ladder.
- ``hint``: hints on demand from the course manifest.
- ``course_lib.aio`` (imported on its own): ``run_concurrently`` and ``as_async`` drive ``async def`` code
  from plain calls, for lesson 12's answer cells and tests.
- ``check_all``, ``progress``, ``reset_exercise``: grade the saved notebook with the hidden tests; put one
  exercise back to its stub (``course_lib.notebook``).
"""

from importlib import import_module

from . import charts  # matplotlib itself is imported when a chart is drawn
from .checks import Check, CheckFailed, NotDoneYet, by_reference, result_by_reference
from .config import latency_scale
from .database import DatabaseError, SlowDatabase
from .hints import hint
from .manifest import load_course
from .measure import HitCounter, LatencyStats, measure, timed
from .notebook import check_all, install as _install_notebook_hooks, progress, reset_exercise
from .workloads import hot_key_bursts, optimal_hit_ratio, replay_hit_ratio, uniform, zipf

# The names whose modules import redis and fakeredis (0.2-0.4 s) are imported when first used (PEP 562).
_LAZY = {"FakeClock": "clock", "RedisUnavailable": "redis_conn", "age_keys": "redis_conn",
         "clear_namespace": "redis_conn", "get_redis": "redis_conn", "is_embedded": "redis_conn",
         "redis_outage": "redis_conn", "HangingRedis": "hanging_redis", "silent_server": "hanging_redis",
         "eviction_experiment": "redis_memory", "server_stats": "redis_memory"}
# Every submodule, for whoever must have them all loaded (the grader's runner watches them for tampering).
SUBMODULES = ("charts", "checks", "clock", "config", "database", "hints", "manifest", "measure", "notebook",
              "redis_conn", "workloads")

__all__ = [
    "by_reference",
    "result_by_reference",
    "charts",
    "Check",
    "CheckFailed",
    "NotDoneYet",
    "check_all",
    "reset_exercise",
    "progress",
    "FakeClock",
    "HangingRedis",
    "silent_server",
    "eviction_experiment",
    "server_stats",
    "latency_scale",
    "DatabaseError",
    "SlowDatabase",
    "hint",
    "load_course",
    "HitCounter",
    "LatencyStats",
    "measure",
    "timed",
    "RedisUnavailable",
    "age_keys",
    "clear_namespace",
    "get_redis",
    "is_embedded",
    "redis_outage",
    "hot_key_bursts",
    "optimal_hit_ratio",
    "replay_hit_ratio",
    "uniform",
    "zipf",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_install_notebook_hooks()  # only in a learner's own Jupyter kernel: see course_lib.notebook
