"""Grading a submission the way the CLI does, returning what the user sees."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from autograder.grade import grade
from autograder.report import write_all
from autograder.result import GradeResult
from autograder.rubric import Rubric


@dataclasses.dataclass
class Graded:
    result: GradeResult
    json: dict[str, Any]
    markdown: str
    out: Path

    def test(self, item_id: str) -> dict[str, Any]:
        """The results.json entry of a rubric item."""
        return next(t for t in self.json["tests"] if t["extra_data"]["id"] == item_id)

    def message(self, item_id: str) -> str:
        return self.test(item_id)["output"].split("\n")[0]


def run(
    submission: Path, rubric: Rubric, data_root: Path, out: Path, threads: int = 1, **kwargs: Any
) -> Graded:
    """``submission`` graded and its reports written to ``out``. The worker gets one thread
    unless told otherwise: the tests' models are small, and on a shared 2-core runner two
    threads make a grade slower, not faster."""
    result = grade(submission, rubric, data_root, threads=threads, **kwargs)
    paths = write_all(result, out)
    return Graded(result, json.loads(paths["results"].read_text()), paths["markdown"].read_text(), out)


def only(rubric: Rubric, *prefixes: str, timeout: float | None = None) -> Rubric:
    """The rubric restricted to items whose id starts with a prefix (cheaper tests)."""
    items = [
        dataclasses.replace(
            i, timeout=timeout or i.timeout, requires=[r for r in i.requires if r.startswith(prefixes)]
        )
        for i in rubric.items
        if i.id.startswith(prefixes)
    ]
    return dataclasses.replace(rubric, items=items)
