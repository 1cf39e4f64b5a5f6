"""The result model every output reads: a notebook's and its exercises' results, their statuses and rules.

The statuses are ``StrEnum`` members, so a result's JSON is the bare words it always was; the rules
about them (which statuses carry a real score, the order reports list them in) are written here once.

>>> result = NotebookResult.all_not_run(NotebookStatus.CRASHED, [("get", 5.0), ("put", 10.0)], "worker died")
>>> result.is_scored, result.max_score, result.exercise("put").status
(False, 15.0, <ExerciseStatus.NOT_RUN: 'not_run'>)
>>> result.exercise("put").score_known(result.status)
False
>>> NotebookResult.from_dict(result.to_dict()) == result
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ExerciseStatus", "NotebookStatus", "ExerciseResult", "NotebookResult", "SCORED", "GRADING_LATENCY_SCALE"]

GRADING_LATENCY_SCALE = 0.01  # the course's simulated latencies are scaled by this while grading (feedback says so)


class ExerciseStatus(StrEnum):
    """How one exercise ended."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    NOT_RUN = "not_run"
    MISSING = "missing"  # its answer cell was deleted from the notebook
    CRASHED = "crashed"  # its answer stopped the run; the others were graded without it


class NotebookStatus(StrEnum):
    """How grading a whole notebook ended, in the order reports list them."""

    GRADED = "graded"
    TAMPERED = "tampered"  # graded, with the course's own version of cells the learner changed
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    UNREADABLE = "unreadable"


SCORED = frozenset({NotebookStatus.GRADED, NotebookStatus.TAMPERED})  # the statuses whose scores are real
_UNKNOWN_WHEN_UNSCORED = frozenset({ExerciseStatus.NOT_RUN, ExerciseStatus.TIMED_OUT})


@dataclass
class ExerciseResult:
    id: str
    points: float
    score: float
    status: ExerciseStatus
    message: str = ""

    def __post_init__(self) -> None:
        self.status = ExerciseStatus(self.status)

    @property
    def passed(self) -> bool:
        return self.status == ExerciseStatus.PASSED

    def score_known(self, notebook_status: str) -> bool:
        """False when the run stopped before this exercise could be judged: its 0 is not a real 0."""
        return notebook_status in SCORED or self.status not in _UNKNOWN_WHEN_UNSCORED


@dataclass
class NotebookResult:
    status: NotebookStatus
    exercises: list[ExerciseResult]
    notes: list[str] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0
    figures: list[dict[str, str]] = field(default_factory=list)  # {"after": grade_id, "png": base64}
    cells: list[dict[str, Any]] = field(default_factory=list)  # executed cells with their outputs
    processes: dict[str, Any] = field(default_factory=dict)  # who ran as whom, what the judge could see

    def __post_init__(self) -> None:
        self.status = NotebookStatus(self.status)

    @classmethod
    def all_not_run(cls, status: str, exercises: Iterable[tuple[str, float]], why: str) -> "NotebookResult":
        """A result for a notebook whose exercises never ran (unreadable, or the grader itself failed)."""
        return cls(status, [ExerciseResult(ex_id, points, 0.0, ExerciseStatus.NOT_RUN, why) for ex_id, points in exercises],
                   detail=why)

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def is_scored(self) -> bool:
        """The score is real: the notebook was graded (perhaps with the course's own version of changed cells)."""
        return self.status in SCORED

    @property
    def passed_all(self) -> bool:
        return self.is_scored and all(e.passed for e in self.exercises)

    def exercise(self, ex_id: str) -> ExerciseResult | None:
        return next((e for e in self.exercises if e.id == ex_id), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NotebookResult":
        data = dict(data)
        data["exercises"] = [ExerciseResult(**e) for e in data["exercises"]]
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
