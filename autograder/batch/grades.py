"""Final grades: the autograded points plus a TA's manual scores (``--manual``).

The manual CSV has one row per student, one key column and one column per
manual rubric item (its id or name; ``Score`` when the rubric has only one),
plus an optional ``Comment`` column. Keys: ``Identifier`` (``Participant N``
as in Moodle's worksheet), ``Student`` (the key shown in summary.html), or
``ID number`` / ``Email address`` when a worksheet supplies those columns.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ..errors import UsageError
from ..result import GradeResult
from ..rubric import Rubric
from .moodle import Student

KEY_HEADERS = ("identifier", "student", "key", "id number", "email address")
SCORE_HEADERS = ("score", "grade", "points")
COMMENT_HEADERS = ("comment", "comments", "feedback")
FEEDBACK_LIMIT = 1500


class BatchInputError(UsageError):
    """A TA-supplied file is wrong; the message names the file, line and fix."""


@dataclass
class ManualScores:
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # student key -> item -> pts
    comments: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_csv_text(path: Path) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BatchInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(
            f"{path} is not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8' and try again"
        ) from None


def load_manual(path: Path, rubric: Rubric, students: list[Student], aliases: dict[str, str]) -> ManualScores:
    """Read ``path``; ``aliases`` maps emails and ID numbers to student keys (from a worksheet)."""
    manual_items = [i for i in rubric.items if i.manual]
    if not manual_items:
        raise BatchInputError(f"--manual {path}: rubric {rubric.id} has no manually graded items")
    rows = list(csv.reader(io.StringIO(read_csv_text(path))))
    if not rows:
        raise BatchInputError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    key_col = next((lower.index(h) for h in KEY_HEADERS if h in lower), None)
    if key_col is None:
        raise BatchInputError(
            f"{path}:1: no student column; name one column Identifier, Student, ID number or Email address"
        )
    columns: dict[str, int] = {}
    for item in manual_items:
        for n, h in enumerate(lower):
            if h in (item.id.lower(), item.name.lower()):
                columns[item.id] = n
    if not columns and len(manual_items) == 1:
        found = next((lower.index(h) for h in SCORE_HEADERS if h in lower), None)
        if found is not None:
            columns[manual_items[0].id] = found
    if not columns:
        wanted = ", ".join(f"{i.id} ({i.name})" for i in manual_items)
        raise BatchInputError(f"{path}:1: no score column; expected a column for {wanted}")
    comment_col = next((lower.index(h) for h in COMMENT_HEADERS if h in lower), None)
    known = {s.key: s for s in students}
    out = ManualScores()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise BatchInputError(f"{path}:{line}: {len(row)} cells, the header has {len(header)}")
        raw_key = row[key_col].strip()
        key = _resolve(raw_key, lower[key_col], known, aliases)
        if key is None:
            out.warnings.append(f"{path.name}:{line}: no submission for {raw_key!r}; row ignored")
            continue
        if key in out.scores:
            raise BatchInputError(f"{path}:{line}: {raw_key} appears twice")
        out.scores[key] = {}
        for item in manual_items:
            out.scores[key][item.id] = (
                _points(row[columns[item.id]], item.points, path, line, item.id)
                if item.id in columns
                else None
            )
        if comment_col is not None and row[comment_col].strip():
            out.comments[key] = " ".join(row[comment_col].split())
    return out


def _resolve(raw: str, column: str, known: dict[str, Student], aliases: dict[str, str]) -> str | None:
    if column == "identifier":
        raw = raw.removeprefix("Participant ").strip()
    if raw in known:
        return raw
    alias = aliases.get(raw) or aliases.get(raw.lower())
    return alias if alias in known else None


def _points(cell: str, maximum: float, path: Path, line: int, item: str) -> float | None:
    cell = cell.strip()
    if cell in ("", "-"):
        return None
    try:
        value = float(cell)
    except ValueError:
        raise BatchInputError(f"{path}:{line}: {cell!r} in column {item} is not a number") from None
    if not 0 <= value <= maximum:
        raise BatchInputError(f"{path}:{line}: {value:g} for {item} is outside 0..{maximum:g}")
    return value


@dataclass
class FinalGrade:
    """Everything the gradebook and the worksheet need about one student."""

    auto: float
    auto_max: float
    manual: dict[str, float | None]  # item id -> points (None: not graded yet)
    manual_max: float
    feedback: str

    @property
    def points(self) -> float:
        return self.auto + sum(v for v in self.manual.values() if v is not None)

    @property
    def max_points(self) -> float:
        return self.auto_max + self.manual_max

    @property
    def complete(self) -> bool:
        return all(v is not None for v in self.manual.values())

    def scaled(self, maximum: float, decimals: int = 2) -> Decimal:
        """The grade out of ``maximum``, rounded half up (never above the maximum)."""
        fraction = self.points / self.max_points if self.max_points else 0.0
        value = Decimal(repr(min(1.0, fraction) * maximum))
        return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def final_grade(result: GradeResult, rubric: Rubric, manual: ManualScores, key: str) -> FinalGrade:
    scores = manual.scores.get(key, {})
    marks = {i.id: scores.get(i.id) for i in rubric.items if i.manual}
    grade = FinalGrade(
        auto=result.score,
        auto_max=result.max_score,
        manual=marks,
        manual_max=sum(i.points for i in rubric.items if i.manual),
        feedback="",
    )
    grade.feedback = feedback(result, rubric, grade, manual.comments.get(key))
    return grade


def feedback(result: GradeResult, rubric: Rubric, grade: FinalGrade, comment: str | None) -> str:
    """One plain line a student can read in Moodle: each item's points, and why."""
    parts = [f"Autograded {grade.auto:g}/{grade.auto_max:g}"]
    if result.fatal:
        parts.append(f"could not grade the submission: {result.fatal}")
    for item in result.items:
        if item.manual:
            points = grade.manual.get(item.id)
            shown = f"{points:g}" if points is not None else "not graded yet"
            parts.append(f"{item.name}: {shown}/{item.max_points:g} (TA)")
        elif not result.fatal and (item.max_points or not item.passed):
            text = f"{item.name}: {item.score or 0:g}/{item.max_points:g}"
            if not item.passed:
                text += f" — {_first_line(item.message, 160)}"
            parts.append(text)
    if comment:
        parts.append(f"TA comment: {comment}")
    line = "; ".join(parts)
    line = " ".join(line.replace("\\", "/").split())
    return line if len(line) <= FEEDBACK_LIMIT else line[: FEEDBACK_LIMIT - 1] + "…"


def _first_line(text: str, limit: int) -> str:
    first = (text.strip().splitlines() or [""])[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"
