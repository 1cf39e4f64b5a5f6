"""Grading on a real dask.distributed cluster (a scheduler and two workers on loopback, started here).

The same class graded through Dask scores as on the local pool; a worker killed with SIGKILL while it
grades: its submission is graded on the other worker, nothing lost or stored twice.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.dask_cluster import DaskCluster
from tests.grader.classroom.test_grader_pipeline import WRONG_ADD_ONE, _env, _import_class, gradebook_scores, grader, make_course
from tests.grader.serving.test_serve import FULL, SLOW_RIGHT, count, released_course, serve_command, submit, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap: Dask "
                                                   "workers refuse to grade without the sandbox")]
pytest.importorskip("distributed")

CLASS = {"ann": {}, "ben": {"add-one": WRONG_ADD_ONE}, "cy": {"add-one": "def add_one(x):\n    return 2"}, "dee": {}}


def test_dask_grades_a_class_with_the_same_scores_as_the_local_pool(tmp_path):
    local, dask = make_course(tmp_path / "local"), make_course(tmp_path / "dask")
    for root in (local, dask):
        _import_class(root, root.parent, CLASS)
    grader(local, "autograde", "--workers", "2", "--quiet")
    with DaskCluster(tmp_path / "cluster", workers=2) as cluster:
        out = grader(dask, "autograde", "--scheduler", cluster.address, "--quiet").stdout
    assert "graded now 4" in out, out
    assert gradebook_scores(dask) == gradebook_scores(local)
    assert set(gradebook_scores(dask)) == set(CLASS) and gradebook_scores(dask)["ann"] == FULL
    assert "graded now 0, already done 4" in grader(dask, "autograde", "--quiet").stdout  # same results, stored


def test_a_worker_killed_mid_grading_loses_nothing_and_counts_nothing_twice(tmp_path):
    from distributed import Client

    root, exchange = released_course(tmp_path)
    names = [f"learner{i}" for i in range(4)]
    for name in names:
        submit(root, exchange, tmp_path, name, {"add-one": SLOW_RIGHT})
    with DaskCluster(tmp_path / "cluster", workers=2) as cluster, \
            Client(cluster.address, timeout=30, set_as_default=False) as client:
        proc = subprocess.Popen(serve_command(root, exchange, "--scheduler", cluster.address, "--exit-when-idle"),
                                cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            names_of = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}

            def busy() -> list[str]:
                return sorted(names_of[a] for a, keys in client.processing().items() if keys and a in names_of)

            wait_for(busy, "a grading on a worker", proc=proc)
            victim = busy()[0]
            cluster.kill_worker(victim)
            out, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        assert proc.returncode == 0, out + cluster.logs()
    assert count(root, "done") == dict.fromkeys(names, 1), out
    assert gradebook_scores(root) == dict.fromkeys(names, FULL)
    assert not count(root, "failed")


def test_a_worker_that_cannot_sandbox_is_refused_before_anything_is_graded(tmp_path):
    root, exchange = released_course(tmp_path)
    submit(root, exchange, tmp_path, "ann", {})
    # the workers' PATH holds only the venv: no bwrap, no setpriv, so they cannot sandbox
    with DaskCluster(tmp_path / "cluster", workers=1, worker_path=str(Path(sys.executable).parent)) as cluster:
        proc = subprocess.run(serve_command(root, exchange, "--scheduler", cluster.address, "--exit-when-idle"),
                              cwd=root, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "cannot run learner code in the sandbox" in proc.stderr, proc.stdout + proc.stderr
    assert "GRADER_ALLOW_UNSANDBOXED=1" in proc.stderr and not count(root, "started")
