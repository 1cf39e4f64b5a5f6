"""Release one learner's feedback through nbgrader's exchange, in this process (no nbgrader start-up each time).

Uses the exchange classes the course's ``nbgrader_config.py`` selects (``ExchangeFactory``), exactly as
``nbgrader release_feedback LESSON --student ID`` would, from ``feedback/<student>/<lesson>/``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["release_feedback", "ReleaseFailed"]


class ReleaseFailed(RuntimeError):
    """nbgrader's exchange refused to release the feedback; the message says why."""


def release_feedback(root: Path, exchange: Path, course: str, lesson: str, student: str) -> None:
    import logging

    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError, ExchangeFactory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (root / "nbgrader_config.py").is_file():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = course
    config.CourseDirectory.assignment_id = lesson
    config.CourseDirectory.student_id = student
    config.Exchange.root = str(exchange)
    log = logging.getLogger("grader.serving.release")
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Keep(logging.WARNING)
    log.addHandler(handler)
    try:
        coursedir = CourseDirectory(config=config)
        releaser = ExchangeFactory(config=config).ReleaseFeedback(
            coursedir=coursedir, authenticator=Authenticator(config=config), config=config, log=log)
        releaser.start()
    except ExchangeError:
        raise ReleaseFailed("; ".join(messages) or "nbgrader's exchange refused the release") from None
    finally:
        log.removeHandler(handler)
