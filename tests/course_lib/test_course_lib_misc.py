"""course_lib: charts, checks, manifest, hints, config."""

import pytest
from matplotlib.figure import Figure

import course_lib
from course_lib import charts
from course_lib.checks import Check, CheckFailed, NotDoneYet
from course_lib.config import latency_scale, scaled
from course_lib.hints import next_hint, reset_hints
from course_lib.manifest import ManifestError, load_course
from course_lib.measure import LatencyStats

def test_public_api_is_declared():
    for name in course_lib.__all__:
        assert hasattr(course_lib, name), name
    assert set(course_lib.__all__) <= set(dir(course_lib))


def test_heavy_libraries_are_imported_only_when_used():
    """`import course_lib` (every lesson, the judge, the grader's commands) costs neither matplotlib nor Redis."""
    import os
    import subprocess
    import sys

    probe = ("import sys, course_lib\n"
             "heavy = ('matplotlib', 'fakeredis', 'redis', 'nbformat')\n"
             "before = [m for m in heavy if m in sys.modules]\n"
             "from course_lib import get_redis, charts\n"
             "get_redis().set('k', 'v')\n"
             "charts.bar_chart({'a': 1}, ylabel='n')\n"
             "print(before, [m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "MPLBACKEND": "Agg"}).stdout.strip()
    assert out == "[] ['matplotlib', 'fakeredis', 'redis']", out


def _stats():
    return {"no cache": LatencyStats([100_000_000, 101_000_000, 99_000_000]), "cache": LatencyStats([20_000, 30_000, 25_000])}


@pytest.mark.parametrize("make", [
    lambda: charts.latency_percentiles(_stats()),
    lambda: charts.latency_distribution(_stats()),
    lambda: charts.before_after(_stats()["no cache"], _stats()["cache"]),
    lambda: charts.hit_ratio_curve([10, 20], {"LRU": [0.3, 0.5], "LFU": [0.35, 0.55]}, ceiling=[0.5, 0.7]),
    lambda: charts.bar_chart({"none": 100, "lock": 1}, ylabel="database calls"),
])
def test_charts_render_headless_to_png(make, tmp_path):
    fig = make()
    assert isinstance(fig, Figure)
    assert charts.png_bytes(fig).startswith(b"\x89PNG")
    path = charts.save_png(fig, tmp_path / "sub" / "chart.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_latency_charts_say_the_scale_their_times_were_measured_at(monkeypatch):
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "0.01")
    graded = _stats()  # measured while grading: the scale is the stats' own, kept from when they were made
    monkeypatch.delenv("COURSE_LATENCY_SCALE")
    for fig in (charts.latency_percentiles(graded), charts.latency_distribution(graded),
                charts.before_after(graded["no cache"], graded["cache"]),
                charts.bar_chart({"request 1": 1.2}, ylabel="latency (ms)", scale=graded["cache"].scale)):
        assert fig.get_supxlabel().replace("\n", " ") == ("times measured at latency scale x0.01 (COURSE_LATENCY_SCALE): every "
                                       "simulated delay is 100x shorter than at real speed")
    real = _stats()  # measured at real speed: nothing to say
    assert charts.latency_percentiles(real).get_supxlabel() == ""
    assert charts.bar_chart({"none": 100}, ylabel="database calls").get_supxlabel() == ""  # not times
    mixed = charts.before_after(real["no cache"], graded["cache"])
    assert mixed.get_supxlabel().replace("\n", " ").startswith("times measured at latency scales x1 and x0.01")


def test_charts_reject_empty_or_mismatched_data():
    with pytest.raises(ValueError, match="nothing to draw"):
        charts.latency_percentiles({})
    with pytest.raises(ValueError, match="has 1 points but x has 2"):
        charts.hit_ratio_curve([1, 2], {"LRU": [0.1]})


def test_check_ladder_messages():
    def stub():
        raise NotImplementedError()

    check = Check("ex", {"stub": stub, "value": 3, "Klass": int})
    with pytest.raises(CheckFailed, match=r"\[ex\] `missing` is not defined"):
        check.defined("missing")
    with pytest.raises(CheckFailed, match="should be a function"):
        check.defined("value", kind="function")
    with pytest.raises(CheckFailed, match="should be a class"):
        check.defined("stub", kind="class")
    assert check.defined("Klass", kind="class") is int
    with pytest.raises(CheckFailed, match="Called stub\\(\\): it raised NotImplementedError, so it is still the stub"):
        check.call("stub()", stub)
    with pytest.raises(CheckFailed, match="Called boom\\(\\): it raised ZeroDivisionError"):
        check.call("boom()", lambda: 1 / 0)
    with pytest.raises(CheckFailed, match="Common mistake: falsy"):
        check.mistake(True, "falsy")
    check.mistake(False, "never shown")
    with pytest.raises(CheckFailed, match=r"Called get\('a'\). Expected None, but got 0. why"):
        check.equal("get('a')", 0, None, why="why")
    with pytest.raises(CheckFailed, match="Expected False"):
        check.equal("flag", 0, False)
    with pytest.raises(CheckFailed, match="observed"):
        check.true(False, "observed")


def test_check_passed_prints_a_success_line(capsys):
    Check("ex", {}).passed()
    assert "[ex] All visible checks passed" in capsys.readouterr().out


def test_latency_scale_setting(monkeypatch):
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "0.25")
    assert latency_scale() == 0.25 and scaled(0.1) == pytest.approx(0.025)
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "fast")
    with pytest.raises(ValueError, match="'fast' is not a number"):
        latency_scale()
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "-1")
    with pytest.raises(ValueError, match="must be zero or positive"):
        latency_scale()
    monkeypatch.delenv("COURSE_LATENCY_SCALE")
    with pytest.raises(ValueError, match="latency must be zero or positive"):
        scaled(-1)


def test_the_course_manifest_is_valid():
    course = load_course()
    assert [l.number for l in course.lessons] == sorted(l.number for l in course.lessons)
    for lesson in course.lessons:
        assert lesson.exercises, f"{lesson.slug} has no exercise"
        assert course.lesson(str(lesson.number)) is lesson
    with pytest.raises(KeyError, match="no lesson 'nope'"):
        course.lesson("nope")


@pytest.mark.parametrize("text, message", [
    ("[[lesson]]\nslug='1-x'\ntitle='t'\nnotebook='n.ipynb'\n", "slug must look like"),
    ("[[lesson]]\nslug='01-x'\ntitle='t'\nnotebook='n.py'\n", "ending in .ipynb"),
    ("[[lesson]]\nslug='01-x'\ntitle='t'\nnotebook='n.ipynb'\n[[lesson.exercise]]\nid='Bad Id'\npoints=1\nhints=['h']\n", "lowercase"),
    ("[[lesson]]\nslug='01-x'\ntitle='t'\nnotebook='n.ipynb'\n[[lesson.exercise]]\nid='a'\npoints=0\nhints=['h']\n", "positive"),
    ("[[lesson]]\nslug='01-x'\ntitle='t'\nnotebook='n.ipynb'\n[[lesson.exercise]]\nid='a'\npoints=1\nhints=[]\n", "at least one"),
    ("[[lesson]]\nslug='02-x'\ntitle='t'\nnotebook='n.ipynb'\n[[lesson]]\nslug='01-y'\ntitle='t'\nnotebook='m.ipynb'\n", "in order"),
    ("title = ", "not valid TOML"),
])
def test_manifest_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "course.toml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        load_course(path)


def _stub():
    raise NotImplementedError()


def test_hints_go_one_level_deeper_each_time():
    course = load_course()
    exercise = course.lessons[0].exercises[0]
    reset_hints()
    texts = [next_hint(exercise.id) for _ in range(len(exercise.hints) + 1)]
    assert texts[0].startswith(f"Hint 1 of {len(exercise.hints)}") and exercise.hints[0] in texts[0]
    assert texts[-1].startswith("No more hints")
    with pytest.raises(LookupError, match="no exercise 'nope'"):
        next_hint("nope")


def test_hint_explains_a_typo_and_a_missing_id(monkeypatch):
    from course_lib import checks
    from course_lib.hints import HintError, hint

    exercise = load_course().lessons[0].exercises[0]
    with pytest.raises(HintError, match=f"Did you mean '{exercise.id}'"):
        hint(exercise.id.replace("-", "_"))
    monkeypatch.setattr(checks, "last_exercise_id", "")
    with pytest.raises(HintError, match=r'hint\(\) needs the id of an exercise, in quotes'):
        hint()
    assert HintError("x")._render_traceback_()[0].count("\n") == 0  # one line in a notebook, no traceback
    monkeypatch.setattr(checks, "last_exercise_id", exercise.id)  # hint() alone: the check that ran last
    reset_hints()
    assert next_hint(exercise.id).startswith("Hint 1")


def test_a_failed_check_renders_as_its_message_in_a_few_lines():
    check = Check("demo", {})

    def crashes(x):
        return {}[x]

    with pytest.raises(CheckFailed) as failed:
        check.call("crashes(1)", crashes, 1)
    lines = failed.value._render_traceback_(color=False)
    assert lines[0] == "✗ demo: check failed" and len(lines) < 10
    assert "it raised KeyError: 1, in your code at line" in lines[1] and "return {}[x]" in " ".join(lines)
    assert lines[-1].startswith('  Stuck? Run hint("demo")')
    with pytest.raises(CheckFailed) as long:
        check.fail("word " * 400)
    assert len(long.value._render_traceback_()) < 10  # a long message is cut, never 30 lines
    with pytest.raises(NotDoneYet) as stub:
        check.call("stub()", _stub)
    assert stub.value._render_traceback_(color=False)[0] == "✗ demo: not done yet"
    assert isinstance(stub.value, CheckFailed)  # graders and Validate still count it as a failure
