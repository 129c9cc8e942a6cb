"""Grades for Moodle: the gradebook import CSV and the offline grading worksheet.

Moodle's rules (docs/batch.md):

- The gradebook import matches users by email, ID number, username or user id;
  one unknown user aborts the whole import, and a blank identifier corrupts
  it. So a row is written only with a real identifier: the student id of a
  ``StudentID_lab2.zip`` download, or the email / ID number the worksheet
  lists for a Moodle participant. Moodle strips a UTF-8 BOM, Excel needs it.
- The worksheet is the teacher's own download, filled in place: only the
  ``Grade`` and ``Feedback comments`` cells of graded rows change (grades scaled
  to the row's ``Maximum Grade`` with its decimals), and every other byte of
  the file stays as it was, quoting and line endings included.
- Student text is data, never a formula or markup: feedback is HTML-escaped
  (Moodle shows it as HTML) and any cell starting with ``= + - @`` gets a
  leading ``'`` (``untrusted.csv_cell``). An identifier cannot carry that
  quote (Moodle would find no such user and refuse the whole import), so a
  row whose identifier starts so is not written and is listed instead.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..report.write import write_atomic
from ..untrusted import csv_cell, moodle_feedback
from .grades import BatchInputError, FinalGrade, read_csv_text
from .moodle import Student

IDENTIFIER, GRADE, MAXIMUM, FEEDBACK = "Identifier", "Grade", "Maximum Grade", "Feedback comments"
LAST_MODIFIED, CAN_CHANGE, FULL_NAME = "Last modified (grade)", "Grade can be changed", "Full name"
EMAIL, ID_NUMBER = "Email address", "ID number"
GROUP_HEADERS = ("Group", "Team")
PHP_QUOTE = re.compile(r'[,"\\\n\r\t ]')


# --- the worksheet: a CSV edited field by field -------------------------------------


@dataclass
class _Record:
    raw: str  # the record's text without its line ending
    ending: str
    fields: list[str]  # raw field texts (quotes included)
    values: list[str]  # decoded values


def _split_records(text: str) -> list[tuple[str, str]]:
    """Records with their line endings; a newline inside quotes stays in its field."""
    records, start, quoted, i = [], 0, False, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif c in "\r\n" and not quoted:
            ending = "\r\n" if text.startswith("\r\n", i) else c
            records.append((text[start:i], ending))
            i += len(ending)
            start = i
            continue
        i += 1
    if start < len(text):
        records.append((text[start:], ""))
    return records


def _split_fields(record: str, delimiter: str) -> list[str]:
    fields, start, quoted = [], 0, False
    for i, c in enumerate(record):
        if c == '"':
            quoted = not quoted
        elif c == delimiter and not quoted:
            fields.append(record[start:i])
            start = i + 1
    fields.append(record[start:])
    return fields


def php_field(value: str, delimiter: str = ",") -> str:
    """A cell as PHP's fputcsv (Moodle's CSV writer) would write it."""
    if PHP_QUOTE.search(value) or delimiter in value:
        return '"' + value.replace('"', '""') + '"'
    return value


@dataclass
class Worksheet:
    path: Path
    bom: bool
    delimiter: str
    header: list[str]
    rows: list[_Record]
    header_record: tuple[str, str] = ("", "\n")
    notes: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Worksheet:
        path = Path(path)
        text = read_csv_text(path)
        bom = path.read_bytes().startswith(b"\xef\xbb\xbf")
        records = [r for r in _split_records(text) if r[0].strip()]
        if not records:
            raise BatchInputError(f"{path} is empty")
        first = records[0][0]
        delimiter = max((",", ";", "\t"), key=first.count)
        header = next(csv.reader([first], delimiter=delimiter))
        missing = [h for h in (IDENTIFIER, GRADE, MAXIMUM, LAST_MODIFIED) if h not in header]
        if missing:
            raise BatchInputError(
                f"{path}:1: not a Moodle grading worksheet: no {', '.join(repr(m) for m in missing)} column "
                "(download it from the assignment: View all submissions > Download grading worksheet)"
            )
        rows = []
        for line, (raw, ending) in enumerate(records[1:], start=2):
            values = next(csv.reader(io.StringIO(raw + "\n"), delimiter=delimiter), [])
            fields = _split_fields(raw, delimiter)
            if len(values) != len(header):
                raise BatchInputError(f"{path}:{line}: {len(values)} cells, the header has {len(header)}")
            if len(fields) != len(values):
                fields = [php_field(v, delimiter) for v in values]  # unusual quoting: rewrite this row
            rows.append(_Record(raw, ending, fields, values))
        return cls(path, bom, delimiter, header, rows, records[0])

    def col(self, name: str) -> int | None:
        return self.header.index(name) if name in self.header else None

    def group_col(self) -> int | None:
        return next((self.header.index(h) for h in GROUP_HEADERS if h in self.header), None)

    def cell(self, row: _Record, name: str) -> str:
        n = self.col(name)
        return row.values[n].strip() if n is not None else ""

    def text(self) -> str:
        lines = [self.header_record[0] + self.header_record[1]]
        for row in self.rows:
            lines.append(self.delimiter.join(row.fields) + row.ending)
        return ("\ufeff" if self.bom else "") + "".join(lines)

    def set(self, row: _Record, name: str, value: str) -> None:
        n = self.col(name)
        assert n is not None
        row.values[n] = value
        row.fields[n] = php_field(value, self.delimiter)


def participant(identifier: str) -> str:
    return identifier.strip().removeprefix("Participant").strip()


@dataclass
class Roster:
    """Who is who, from the worksheet: participant number -> identities."""

    emails: dict[str, str] = field(default_factory=dict)
    id_numbers: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group name -> participant numbers

    @classmethod
    def from_worksheet(cls, sheet: Worksheet) -> Roster:
        roster = cls()
        group = sheet.group_col()
        for row in sheet.rows:
            key = participant(sheet.cell(row, IDENTIFIER))
            if not key:
                continue
            if sheet.cell(row, EMAIL):
                roster.emails[key] = sheet.cell(row, EMAIL)
            if sheet.cell(row, ID_NUMBER):
                roster.id_numbers[key] = sheet.cell(row, ID_NUMBER)
            if group is not None and row.values[group].strip():
                roster.groups.setdefault(row.values[group].strip(), []).append(key)
        return roster

    def aliases(self, students: list[Student]) -> dict[str, str]:
        """Emails and ID numbers that name a student key (for --manual)."""
        found: dict[str, str] = {}
        for key, email in self.emails.items():
            found[email.lower()] = key
        for key, number in self.id_numbers.items():
            found[number] = key
        for s in students:
            if s.kind == "team":
                for member in self.groups.get(s.name, []):
                    found[member] = s.key
        return found


@dataclass
class FillReport:
    filled: int = 0
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # graded students with no worksheet row


def fill_worksheet(sheet: Worksheet, students: list[Student], grades: dict[str, FinalGrade]) -> FillReport:
    """Write Grade and Feedback comments of every graded row; nothing else changes."""
    report = FillReport()
    by_key = {s.key: s for s in students}
    teams = {s.name: s for s in students if s.kind == "team"}
    group = sheet.group_col()
    has_feedback = sheet.col(FEEDBACK) is not None
    if not has_feedback:
        report.skipped.append(
            f"{sheet.path.name} has no '{FEEDBACK}' column: grades written, feedback not "
            "(enable the Feedback comments feedback type on the assignment)"
        )
    seen: set[str] = set()
    for row in sheet.rows:
        key = participant(sheet.cell(row, IDENTIFIER))
        student = by_key.get(key)
        if student is None and group is not None:
            student = teams.get(row.values[group].strip())
        if student is None:
            continue
        seen.add(student.key)
        grade = grades.get(student.key)
        who = f"{sheet.cell(row, FULL_NAME) or student.name} (Participant {key})"
        if grade is None:
            report.skipped.append(f"{who}: not graded (grader error); Grade left as it was")
            continue
        if sheet.cell(row, CAN_CHANGE).lower() == "no":
            report.skipped.append(f"{who}: the worksheet says the grade cannot be changed")
            continue
        maximum_cell = sheet.cell(row, MAXIMUM)
        try:
            maximum = float(maximum_cell)
        except ValueError:
            report.skipped.append(f"{who}: Maximum Grade {maximum_cell!r} is a scale; grade it by hand")
            continue
        decimals = len(maximum_cell.split(".")[1]) if "." in maximum_cell else 2
        sheet.set(row, GRADE, str(grade.scaled(maximum, decimals)))
        if has_feedback:
            sheet.set(row, FEEDBACK, moodle_feedback(grade.feedback))
        report.filled += 1
    report.missing = [s.key for s in students if s.key not in seen and s.key in grades]
    return report


def save_worksheet(sheet: Worksheet) -> None:
    write_atomic(sheet.path, sheet.text())


# --- the gradebook import CSV ------------------------------------------------------


@dataclass
class Gradebook:
    id_header: str
    rows: list[tuple[str, str, str]]  # identifier, grade, feedback
    skipped: list[str]


def gradebook(
    students: list[Student], grades: dict[str, FinalGrade], roster: Roster | None, max_grade: float
) -> Gradebook:
    """One row per person with a real identifier; who could not get one is listed."""
    roster = roster or Roster()
    people: list[tuple[Student, dict[str, str]]] = []
    for s in students:
        if s.kind == "student_id":
            people.append((s, {ID_NUMBER: s.key}))
        else:
            members = roster.groups.get(s.name, []) if s.kind == "team" else [s.key]
            for m in members:
                people.append((s, {EMAIL: roster.emails.get(m, ""), ID_NUMBER: roster.id_numbers.get(m, "")}))
            if not members:
                people.append((s, {}))
    coverage = {h: sum(1 for _, ids in people if ids.get(h)) for h in (EMAIL, ID_NUMBER)}
    id_header = EMAIL if coverage[EMAIL] >= max(1, coverage[ID_NUMBER]) else ID_NUMBER
    rows, skipped = [], []
    for student, ids in people:
        identifier = ids.get(id_header, "").strip()
        grade = grades.get(student.key)
        if grade is None:
            skipped.append(f"{student.name} ({student.key}): not graded (grader error)")
        elif not identifier:
            skipped.append(f"{student.name} ({student.key}): no {id_header} known")
        elif csv_cell(identifier) != identifier:
            skipped.append(
                f"{student.name} ({student.key}): the {id_header} {identifier!r} starts with "
                f"{identifier[0]!r}, which a spreadsheet runs as a formula; not written "
                "(no real identifier starts so; enter this grade by hand)"
            )
        else:
            rows.append((identifier, str(grade.scaled(max_grade)), grade.feedback))
    return Gradebook(id_header, rows, skipped)


def write_gradebook(path: Path, book: Gradebook, item: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([book.id_header, item, f"{item} feedback"])
    for identifier, grade, text in book.rows:
        assert identifier.strip(), "a gradebook row without an identifier"
        assert csv_cell(identifier) == identifier, "a gradebook identifier a spreadsheet would run"
        writer.writerow([identifier, grade, moodle_feedback(text)])
    write_atomic(path, "\ufeff" + buffer.getvalue())
