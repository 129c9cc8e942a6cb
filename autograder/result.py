"""What grading produces: one result per rubric item, plus provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SubmissionProblem


@dataclass
class Outcome:
    """What a check returns. ``score`` None means all-or-nothing on ``passed``."""

    passed: bool
    message: str
    details: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    score: float | None = None


class CheckFailed(SubmissionProblem):
    """Raised inside a check for a failure the student can act on."""

    def __init__(self, message: str, details: str = "", **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.data = data


class NoDataRoot(CheckFailed):
    """The grader was given no data root, so an item that needs the dataset cannot run.

    ``data["no_data_root"]`` reaches the item's result, where ``autograder check`` (which may
    run without the dataset) tells this apart from a failure of the submission."""

    def __init__(self) -> None:
        super().__init__("no data root was given to the grader", no_data_root=True)


@dataclass
class ItemResult:
    id: str
    number: str
    name: str
    kind: str
    max_points: float
    score: float | None  # None: graded by hand
    passed: bool | None  # None: graded by hand
    message: str
    details: str = ""
    visibility: str = "visible"
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def manual(self) -> bool:
        return self.score is None


@dataclass
class GradeResult:
    rubric_id: str
    rubric_title: str
    items: list[ItemResult]
    provenance: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)  # intake notes shown at the top
    worker_output: str = ""
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    fatal: str | None = None  # set when the whole submission could not be graded

    @property
    def score(self) -> float:
        return round(sum(i.score or 0.0 for i in self.items), 4)

    @property
    def max_score(self) -> float:
        return sum(i.max_points for i in self.items if not i.manual)

    @property
    def manual_points(self) -> float:
        return sum(i.max_points for i in self.items if i.manual)

    def item(self, item_id: str) -> ItemResult | None:
        return next((i for i in self.items if i.id == item_id), None)
