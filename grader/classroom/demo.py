"""A synthetic class run through the whole instructor pipeline, in a temporary course folder.

Learners are simulated on one machine with nbgrader's own exchange classes
(each with its own home folder, cache and ``student_id``), so the exchange
sees what it would see on a JupyterHub: fetch, submit, fetch_feedback.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib.manifest import Lesson

from ..course.cells import is_answer, is_tests, read_notebook
from ..course.layout import load
from ..course.synthetic import solution_answers, with_answers

__all__ = ["KINDS", "pick_course", "copy_course", "Learner", "ExchangeUser", "make_class"]

# what each synthetic learner hands in, in proportions of a real class
KINDS = ("correct", "partial", "broken", "correct", "blank", "partial", "correct", "broken", "partial", "correct")
BROKEN = ("unreadable", "endless", "crash", "tampered")


def lesson_exists(root: Path, lesson: Lesson) -> bool:
    return lesson.source_path(root).is_file() and lesson.release_path(root).is_file()


def pick_course(root: Path, fixture: Path) -> tuple[Path, list[Lesson], str]:
    """The course's real lessons that exist, else the tiny example course (with a note saying so)."""
    real = [l for l in load(root).lessons if lesson_exists(root, l)]
    if real:
        return root, real, "the course"
    if not (fixture / "course_lib" / "course.toml").is_file():
        raise FileNotFoundError("the course has no lessons with solutions/ and notebooks/ yet, and the grader's "
                                f"example course ({fixture}) is missing")
    lessons = [l for l in load(fixture).lessons if lesson_exists(fixture, l)]
    return fixture, lessons, "the grader's tiny example course (no real lesson is written yet)"


def copy_course(source: Path, target: Path, lessons: list[Lesson]) -> Path:
    """A fresh course folder with the manifest, nbgrader config, and the chosen lessons only."""
    (target / "course_lib").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "course_lib" / "course.toml", target / "course_lib" / "course.toml")
    shutil.copyfile(source / "nbgrader_config.py", target / "nbgrader_config.py")
    for lesson in lessons:
        for folder in ("solutions", "notebooks"):
            shutil.copytree(source / folder / lesson.slug, target / folder / lesson.slug)
    return target


@dataclass
class Learner:
    name: str
    kind: str  # correct | partial | blank | broken
    broken_how: str = ""
    expected: dict[str, str] = field(default_factory=dict)  # lesson -> what we expect, for the summary


def make_class(size: int, seed: int = 7) -> list[Learner]:
    rng = random.Random(seed)
    learners, broken = [], 0
    for i in range(size):
        kind = KINDS[i % len(KINDS)]
        how = ""
        if kind == "broken":
            how, broken = BROKEN[broken % len(BROKEN)], broken + 1
        learners.append(Learner(f"learner{i + 1:02d}", kind, how))
    rng.shuffle(learners)
    return learners


def answer_notebook(learner: Learner, lesson: Lesson, root: Path, fetched: Path, rng: random.Random) -> None:
    """Overwrite the fetched notebook with this learner's work."""
    release_nb = read_notebook(fetched)
    answers = solution_answers(read_notebook(lesson.source_path(root)))
    if learner.kind == "blank":
        return
    if learner.kind == "partial" and answers:
        for gid in rng.sample(sorted(answers), k=max(1, len(answers) // 2)):
            del answers[gid]  # left as released: the stub with the right signature
    nb = with_answers(release_nb, answers)
    if learner.kind == "broken":
        first = next(c for c in nb.cells if is_answer(c))
        if learner.broken_how == "unreadable":
            fetched.write_text('{"cells": [ truncated by a bad save', encoding="utf-8")
            return
        if learner.broken_how == "endless":
            first.source = "while True:\n    pass\n" + first.source
        elif learner.broken_how == "crash":
            first.source = "import os\nos.kill(os.getpid(), 9)\n"
        elif learner.broken_how == "tampered":
            for cell in nb.cells:
                if is_tests(cell):
                    cell.source = "pass  # tests deleted"
    nbformat.write(nb, fetched)


class ExchangeUser:
    """One learner using nbgrader's exchange from their own home folder."""

    def __init__(self, name: str, home: Path, exchange: Path, course: str) -> None:
        self.name, self.home, self.exchange, self.course = name, home, exchange, course
        home.mkdir(parents=True, exist_ok=True)

    def _run(self, cls, assignment: str) -> None:
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config

        cfg = Config()
        cfg.Exchange.root = str(self.exchange)
        cfg.Exchange.cache = str(self.home / ".nbgrader-cache")
        cfg.Exchange.assignment_dir = str(self.home)
        cfg.CourseDirectory.course_id = self.course
        cfg.CourseDirectory.assignment_id = assignment
        cfg.CourseDirectory.student_id = self.name
        coursedir = CourseDirectory(config=cfg)
        cls(coursedir=coursedir, authenticator=Authenticator(config=cfg), config=cfg).start()

    def fetch(self, assignment: str) -> Path:
        from nbgrader.exchange.default import ExchangeFetchAssignment

        self._run(ExchangeFetchAssignment, assignment)
        return self.home / assignment

    def submit(self, assignment: str) -> None:
        from nbgrader.exchange.default import ExchangeSubmit

        self._run(ExchangeSubmit, assignment)

    def fetch_feedback(self, assignment: str) -> list[Path]:
        from nbgrader.exchange.default import ExchangeFetchFeedback

        self._run(ExchangeFetchFeedback, assignment)
        return sorted((self.home / assignment / "feedback").glob("*/*.html"))
