"""Shared helpers: configuration presets, timing with repeats, machine and version facts."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Config:
    """How much to measure. ``full`` is what ``make bench`` runs; the others are for tests and debugging."""

    scale: str = "full"
    course: Path = ROOT  # the course whose lessons are graded (tests use the fixture course)
    lessons: list[str] = field(default_factory=list)  # empty: every lesson with a source and a release
    learners: int = 4  # class size for the nbgrader comparison (x every lesson)
    scaling_lesson: str = "01-why-cache"
    scaling_sizes: list[int] = field(default_factory=lambda: [10, 50, 200])
    scaling_factor: float = 0.2  # the sizes actually graded are sizes x factor (at least 1)
    workers: int = os.cpu_count() or 1
    repeats: int = 3  # repeats of each cheap measurement (hot paths, stampede, check, lesson runs)
    lesson_repeats: int = 2  # repeats of each solution notebook's run (section 3)
    grading_repeats: int = 1  # repeats of each whole-class grading run (ours and nbgrader's, interleaved)
    hot_ops: int = 20_000  # operations per timing of an in-process cache
    redis_ops: int = 2_000  # operations per timing of a Redis call
    stampede_sizes: list[int] = field(default_factory=lambda: [10, 50])
    stampede_delay: float = 0.05  # seconds the simulated database query takes
    trace_length: int = 20_000
    trace_keys: int = 1_000
    capacities: list[int] = field(default_factory=lambda: [10, 25, 50, 100, 200, 400])
    ttl_ticks: int = 500  # the TTL policy's time-to-live, in requests
    nbgrader: bool = True
    real_redis: bool = True
    sections: list[str] = field(default_factory=list)  # empty: all
    out: Path = ROOT / "bench" / "REPORT.md"
    charts: Path = ROOT / "bench" / "report"
    compare_kernel: bool = True  # also grade each solution with its tests in the learner's kernel (no judge)
    zygote: bool = True  # measure the pre-forked warm interpreter prototype too
    dask_learners: int = 6  # submissions graded by the local pool and by Dask with 1 and 2 workers (section distributed)
    burst: int = 50  # submissions made at once to the grading service (submit-to-feedback latency)
    baseline: Path | None = None  # another checkout (with its .venv) whose grader section `baseline` compares

    def scaled_sizes(self) -> list[int]:
        return sorted({max(1, round(n * self.scaling_factor)) for n in self.scaling_sizes})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("course", "out", "charts", "baseline"):
            data[key] = None if data[key] is None else str(data[key])
        return data


PRESETS: dict[str, dict[str, Any]] = {
    # make bench on a quiet 2-core machine: about 12-15 minutes (see REPORT.md for the measured time)
    "full": {},
    # a few minutes: to debug the harness on the real lessons
    "small": dict(learners=2, scaling_factor=0.05, repeats=2, lesson_repeats=1, hot_ops=5_000, redis_ops=500,
                  stampede_sizes=[10], trace_length=5_000, capacities=[25, 100, 400], dask_learners=4, burst=10),
    # seconds (plus a few notebook runs): the unit test, on the grader's fixture course
    "tiny": dict(course=ROOT / "examples" / "tiny-course", lessons=["01-fixture-basics"],
                 scaling_lesson="01-fixture-basics", learners=1, scaling_sizes=[1, 2], scaling_factor=1.0,
                 repeats=1, lesson_repeats=1, hot_ops=300, redis_ops=50, stampede_sizes=[4], stampede_delay=0.01,
                 trace_length=500, trace_keys=100, capacities=[10, 50], ttl_ticks=50, zygote=False,
                 real_redis=False, dask_learners=2, burst=3),
}


def make_config(scale: str = "full", **overrides: Any) -> Config:
    values = {**PRESETS[scale], **{k: v for k, v in overrides.items() if v is not None}}
    return Config(scale=scale, **values)


# ---------------------------------------------------------------- statistics


def summary(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max, and the interquartile range when there are 4+ values)."""
    values = sorted(values)
    out = {"n": len(values), "median": statistics.median(values), "min": values[0], "max": values[-1]}
    if len(values) >= 4:
        q = statistics.quantiles(values, n=4)
        out["q1"], out["q3"] = q[0], q[2]
    return out


def fmt_spread(s: dict[str, float], digits: int = 2, scale: float = 1.0) -> str:
    """'median (min-max)' for a summary."""
    med, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale
    if s["n"] == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def children_cpu() -> float:
    """User + system CPU seconds of every waited-for child process so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """Wall seconds and CPU seconds (this process + waited children) of a block."""
    box: dict[str, float] = {}
    w0, c0, s0 = time.perf_counter(), children_cpu(), self_cpu()
    try:
        yield box
    finally:
        box["wall"] = time.perf_counter() - w0
        box["cpu"] = (children_cpu() - c0) + (self_cpu() - s0)


def run_timed(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
              check: bool = True, timeout: float | None = None) -> dict[str, Any]:
    """Run a command; return wall and CPU seconds (the child's), its return code and output tail."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:6]))} failed ({proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    return {"wall": wall, "cpu": cpu, "rc": proc.returncode, "out": (proc.stdout + proc.stderr)[-4000:],
            "stdout": proc.stdout[-100_000:]}


def venv_env(**extra: str) -> dict[str, str]:
    """The environment with the interpreter's bin/ first on PATH (nbgrader runs `alembic`)."""
    bindir = str(Path(PYTHON).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    env.update(extra)
    return env


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine and versions


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"cpu_model": model or platform.processor(), "cores": os.cpu_count(), "usable_cores": affinity,
            "memory": mem, "kernel": platform.release(), "hostname_len": len(socket.gethostname()),
            "loadavg": os.getloadavg()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("nbgrader", "cachetools", "fakeredis", "redis", "ipython", "ipykernel", "jupyter_client",
                 "matplotlib", "hypothesis", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    binary = shutil.which("redis-server")
    if binary:
        try:
            text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
            out["redis-server"] = next((w.split("=", 1)[1] for w in text.split() if w.startswith("v=")), text.strip())
        except (OSError, subprocess.SubprocessError):
            out["redis-server"] = "present, version unknown"
    else:
        out["redis-server"] = "not installed"
    return out


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------- a real Redis server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_server(workdir: Path) -> Iterator[str | None]:
    """A throwaway redis-server on a free loopback port (URL), or None when there is no binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    yield None
                    return
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def save_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
