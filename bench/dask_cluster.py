"""A real dask.distributed cluster on loopback (for the bench and the tests): one `dask scheduler`, N `dask worker`s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .common import _free_port as free_port

DASK = str(Path(sys.executable).parent / "dask")


class DaskCluster:
    """Start with ``with DaskCluster(tmp, workers=2) as cluster:``; everything is stopped on the way out."""

    def __init__(self, folder: Path, workers: int = 2, *, worker_path: str | None = None) -> None:
        self.folder, self.count, self.worker_path = folder, workers, worker_path
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}  # name -> process

    def _start(self, *args: str, log: str, path: str | None = None) -> subprocess.Popen:
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PATH": path or f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        with open(self.folder / log, "wb") as out:
            return subprocess.Popen([DASK, *args], cwd=self.folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def __enter__(self) -> "DaskCluster":
        from distributed import Client

        try:
            port = self.address.rsplit(":", 1)[1]
            self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard",
                                         log="scheduler.log")
            for k in range(self.count):
                name = f"w{k}"
                self.workers[name] = self._start(
                    "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                    "--no-dashboard", "--local-directory", str(self.folder / name), log=f"{name}.log",
                    path=self.worker_path)
            with Client(self.address, timeout=60, set_as_default=False) as client:
                client.wait_for_workers(self.count, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.folder.glob("*.log")))

    def kill_worker(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait(timeout=30)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), self.scheduler]:
            if process is None:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)

    def __exit__(self, *exc: object) -> None:
        self.stop()
