"""The course manifest: lessons in teaching order, their exercises, points and hints.

One file, ``course_lib/course.toml``, drives the notebooks' hint cells, the
grader (points, exercise ids, order) and the course's own consistency check.

>>> course = load_course()
>>> course.lessons[0].slug
'01-why-cache'
>>> course.exercise(course.lessons[0].exercises[0].id).lesson == course.lessons[0].slug
True
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Exercise", "Lesson", "Course", "ManifestError", "load_course", "MANIFEST_PATH", "COURSE_ROOT"]

MANIFEST_PATH = Path(__file__).with_name("course.toml")
COURSE_ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SLUG = re.compile(r"^\d\d-[a-z0-9-]+$")


class ManifestError(ValueError):
    """The manifest is malformed; the message names the file, the lesson and the field."""


@dataclass(frozen=True)
class Exercise:
    id: str
    lesson: str
    points: float
    summary: str
    hints: tuple[str, ...]
    thread_safe: str = ""  # the class whose methods may be called from many threads (its locking is graded)

    @property
    def answer_cell_id(self) -> str:
        """nbgrader grade_id of the answer cell the learner edits."""
        return self.id

    @property
    def tests_cell_id(self) -> str:
        """nbgrader grade_id of the locked cell with the visible checks and hidden tests."""
        return f"{self.id}-tests"


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    notebook: str
    exercises: tuple[Exercise, ...]
    minutes: int = 0  # expected time for a learner, from the manifest (0: not stated)

    @property
    def expected_time(self) -> str:
        """'about 45 min', 'about 1 h 30 min', or '' when the manifest does not say."""
        if not self.minutes:
            return ""
        hours, minutes = divmod(self.minutes, 60)
        return "about " + " ".join(p for p in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if p)

    @property
    def number(self) -> int:
        return int(self.slug[:2])

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    def source_path(self, root: Path = COURSE_ROOT) -> Path:
        """The instructor's notebook (solutions and hidden tests)."""
        return root / "solutions" / self.slug / self.notebook

    def release_path(self, root: Path = COURSE_ROOT) -> Path:
        """The learner version generated from the source."""
        return root / "notebooks" / self.slug / self.notebook


@dataclass(frozen=True)
class Course:
    title: str
    lessons: tuple[Lesson, ...]

    def lesson(self, name: str) -> Lesson:
        """Find a lesson by slug, number (``"4"``, ``"04"``) or notebook name."""
        for lesson in self.lessons:
            if name in (lesson.slug, lesson.notebook, Path(lesson.notebook).stem) or (
                name.isdigit() and int(name) == lesson.number
            ):
                return lesson
        known = ", ".join(l.slug for l in self.lessons)
        raise KeyError(f"no lesson {name!r} in the course; lessons are: {known}")

    def exercise(self, exercise_id: str) -> Exercise:
        for lesson in self.lessons:
            for exercise in lesson.exercises:
                if exercise.id == exercise_id:
                    return exercise
        raise KeyError(f"no exercise {exercise_id!r} in the course manifest ({MANIFEST_PATH.name})")


def _fail(path: Path, where: str, message: str) -> ManifestError:
    return ManifestError(f"{path}: {where}: {message}")


def _parse(path: Path) -> Course:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    lessons, seen_ids = [], set()
    for i, raw in enumerate(data.get("lesson", []), 1):
        where = f"lesson #{i} ({raw.get('slug', '?')})"
        for key in ("slug", "title", "notebook"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise _fail(path, where, f"missing text field {key!r}")
        if not _SLUG.match(raw["slug"]):
            raise _fail(path, where, "slug must look like '04-simple-cache'")
        if not raw["notebook"].endswith(".ipynb"):
            raise _fail(path, where, "notebook must be a file name ending in .ipynb")
        minutes = raw.get("minutes", 0)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0:
            raise _fail(path, where, "minutes (the expected time) must be a whole number of minutes, e.g. 45")
        exercises = []
        for raw_ex in raw.get("exercise", []):
            ex_where = f"{where}, exercise {raw_ex.get('id', '?')!r}"
            ex_id = raw_ex.get("id", "")
            if not isinstance(ex_id, str) or not _ID.match(ex_id):
                raise _fail(path, ex_where, "id must be lowercase letters, digits and dashes (an nbgrader grade_id)")
            if ex_id in seen_ids:
                raise _fail(path, ex_where, "exercise id used twice in the course")
            seen_ids.add(ex_id)
            points = raw_ex.get("points")
            if not isinstance(points, (int, float)) or points <= 0:
                raise _fail(path, ex_where, "points must be a positive number")
            hints = raw_ex.get("hints", [])
            if not hints or not all(isinstance(h, str) and h.strip() for h in hints):
                raise _fail(path, ex_where, "needs at least one non-empty hint")
            thread_safe = raw_ex.get("thread_safe", "")
            if not isinstance(thread_safe, str) or (thread_safe and not thread_safe.isidentifier()):
                raise _fail(path, ex_where, "thread_safe must be the name of the exercise's class, e.g. \"SimpleCache\"")
            exercises.append(Exercise(ex_id, raw["slug"], float(points), str(raw_ex.get("summary", "")), tuple(hints),
                                      thread_safe))
        lessons.append(Lesson(raw["slug"], raw["title"], raw["notebook"], tuple(exercises), minutes))
    slugs = [l.slug for l in lessons]
    if slugs != sorted(slugs) or len(set(slugs)) != len(slugs):
        raise ManifestError(f"{path}: lessons must be listed once each, in order of their number: {slugs}")
    return Course(str(data.get("title", "")), tuple(lessons))


@lru_cache(maxsize=4)
def _cached(path: Path, mtime_ns: int) -> Course:
    return _parse(path)


def load_course(path: str | Path | None = None) -> Course:
    """Read and validate the manifest (cached until the file changes)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    if not path.is_file():
        raise ManifestError(f"no course manifest at {path}")
    return _cached(path.resolve(), path.stat().st_mtime_ns)
