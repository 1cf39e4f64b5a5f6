"""The benchmark harness (bench/, `make bench`) at a tiny scale, so it cannot rot.

These tests check that the harness runs and writes its report; they never
check a measured number (benchmarks report, they do not assert).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run as bench_run  # noqa: E402
from bench.report import write_report  # noqa: E402


def test_cheap_sections_write_a_report(tmp_path):
    page, charts = tmp_path / "REPORT.md", tmp_path / "report"
    assert bench_run.main(["--scale", "tiny", "--sections", "hotpaths,stampede", "--out", str(page),
                           "--charts", str(charts)]) == 0
    text = page.read_text(encoding="utf-8")
    for heading in ("## Targets", "## 4. Cache hot paths", "## 5. Stampede protection and hit ratio",
                    "lesson 04 SimpleCache", "lesson 07 redis_cache (fakeredis)", "lesson 09 SingleFlight",
                    "optimal (Belady)", "Load average", "Versions:"):
        assert heading in text, heading
    for png in ("hot_paths.png", "stampede.png", "hit_ratio.png"):
        assert (charts / png).stat().st_size > 1000
    results = json.loads((charts / "results.json").read_text(encoding="utf-8"))
    rows = {r["name"]: r for r in results["sections"]["hotpaths"]["rows"]}
    assert rows["lesson 07 redis_cache (fakeredis)"]["round_trips_hit"] > 0  # the counter saw the commands
    protections = {r["protection"] for r in results["sections"]["stampede"]["stampede"]["rows"]}
    assert "cachetools @cached(condition=Condition())" in protections
    # the page can be rebuilt from the saved numbers alone
    again = tmp_path / "again.md"
    assert bench_run.main(["--from-json", str(charts / "results.json"), "--out", str(again),
                           "--charts", str(tmp_path / "again")]) == 0
    assert "## 4. Cache hot paths" in again.read_text(encoding="utf-8")


def test_a_failed_section_is_reported_not_raised(tmp_path):
    from bench.common import machine, versions

    results = {"config": bench_run.make_config("tiny").to_dict(), "machine_start": machine(), "versions": versions(),
               "git": "x", "started": "now", "command": "python -m bench", "seconds": 1.0,
               "section_seconds": {"grading": 1.0, "hotpaths": 1.0}, "section_load": {"grading": [0, 0],
                                                                                     "hotpaths": [0, 0]},
               "sections": {"grading": {"error": "RuntimeError: boom", "traceback": "Traceback ..."},
                            "hotpaths": {"error": "KeyError: 'x'", "traceback": ""}}}
    page = write_report(results, tmp_path / "R.md", tmp_path / "c")
    text = page.read_text(encoding="utf-8")
    assert "This section failed" in text and "RuntimeError: boom" in text


@pytest.mark.slow
def test_grading_sections_on_the_fixture_course(tmp_path):
    """Grading, self-check, lesson runs and the breakdown on the grader's two-exercise fixture lesson."""
    page, charts = tmp_path / "REPORT.md", tmp_path / "report"
    assert bench_run.main(["--scale", "tiny", "--sections", "lessons,check,breakdown,grading", "--out", str(page),
                           "--charts", str(charts)]) == 0
    results = json.loads((charts / "results.json").read_text(encoding="utf-8"))
    for name in ("lessons", "check", "breakdown", "grading"):
        assert "error" not in results["sections"][name], results["sections"][name].get("traceback")
    grading = results["sections"]["grading"]
    assert grading["throughput"]["submissions"] == 1
    assert "nbgrader" in grading["throughput"]["variants"]
    assert grading["throughput"]["score_agreement"]["total"] == 1
    assert "ours-class" in grading["throughput"]["variants"]  # the class in one command, one queue
    assert grading["throughput"]["class_score_agreement"] == 1
    text = page.read_text(encoding="utf-8")
    assert "## 1. Grading throughput" in text and "### Where the time goes, per submission" in text


@pytest.mark.slow
def test_the_baseline_section_grades_with_both_checkouts(tmp_path):
    """`--baseline` here compares this checkout with itself: the mechanism, not a number."""
    page, charts = tmp_path / "REPORT.md", tmp_path / "report"
    assert bench_run.main(["--sections", "baseline", "--baseline", str(ROOT), "--lessons", "01",
                           "--lesson-repeats", "1", "--out", str(page), "--charts", str(charts)]) == 0
    row, = json.loads((charts / "results.json").read_text(encoding="utf-8"))["sections"]["baseline"]["rows"]
    assert row["lesson"] == "01-why-cache"
    for side in ("ours", "baseline"):
        assert row[side]["status"] == ["graded 15/15"]
        assert 0 < row[side]["cells_s"]["median"] < row[side]["wall_s"]["median"]
    text = page.read_text(encoding="utf-8")
    assert "## Against an earlier commit" in text and "Mean change outside the cells" in text


def test_a_baseline_without_a_venv_says_what_to_do(tmp_path):
    from bench.baseline import run
    from bench.common import make_config

    (tmp_path / "course_lib").mkdir()
    with pytest.raises(SystemExit, match="make .venv/.installed"):
        run(make_config("small", baseline=tmp_path, lessons=["01"]))


@pytest.mark.slow
def test_distributed_section_on_the_fixture_course(tmp_path):
    """Local pool vs Dask (1 and 2 real workers) and a burst of 3 submissions to `grader serve`."""
    pytest.importorskip("distributed")
    page, charts = tmp_path / "REPORT.md", tmp_path / "report"
    assert bench_run.main(["--scale", "tiny", "--sections", "distributed", "--burst", "3", "--out", str(page),
                           "--charts", str(charts)]) == 0
    section = json.loads((charts / "results.json").read_text(encoding="utf-8"))["sections"]["distributed"]
    assert "error" not in section, section.get("traceback")
    assert [r["executor"] for r in section["executors"]["rows"]] == ["local", "dask-1", "dask-2"]
    assert section["latency"]["burst"] == 3 and len(section["latency"]["seconds"]) == 3
    assert "## 6. Grading on Dask, and grade on submit" in page.read_text(encoding="utf-8")
