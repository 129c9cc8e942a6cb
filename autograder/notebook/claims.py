"""The numbers a notebook claims in its printed outputs.

Test accuracy (``Test Accuracy: 84.31%``, ``Accuracy of the network on the
10000 test images: 54 %``, ``test acc = 0.8431``), per-class accuracy (one
line per class name, or a table; in sklearn's ``classification_report``, the
recall column), the best and worst class, and the training
curves (``history.py``). Each claim keeps its cell, so a message can point at
it, and an owner: the rubric task whose model the notebook was working on
when it printed the line (the last cell, at or before it, that mentions the
model's class name or the task's "Task N" heading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import history
from .outputs import Cell

NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)(?![\w.])(\s*%)?")
# Chinese too (traditional and simplified), as students of a course taught in it print:
# 測試準確率 / 测试准确率 "test accuracy", 最佳 / 最差 "best" / "worst"
ZH_ACC = "準確率|准确率|正確率|正确率|準確度|准确度"
ZH_TEST = "測試|测试"
ACC_WORD = re.compile(rf"\bacc(?:uracy)?\b|{ZH_ACC}", re.I)
TEST_ACC = re.compile(
    r"\btest(?:ing)?(?:\s+set)?\b.{0,40}?\bacc(?:uracy)?\b"
    r"|\btest_?acc(?:uracy)?\b"  # test_acc, TestAcc: a dict key, Lightning's trainer.test() table
    rf"|(?:{ZH_TEST}).{{0,10}}?(?:{ZH_ACC})",
    re.I,
)
# "Accuracy of the network on the 10000 test images": tried only where no "test ... acc" is,
# so d2l's "loss 0.469, train acc 0.823, test acc 0.779" gives the test accuracy, not the train one
ACC_THEN_TEST = re.compile(r"\bacc(?:uracy)?\b.{0,60}?\btest\b", re.I)
BEST = re.compile(r"\b(?:best|highest|most accurate|easiest)\b|最佳|最好|最高", re.I)
WORST = re.compile(r"\b(?:worst|lowest|least accurate|hardest|poorest|weakest)\b|最差|最低|最糟", re.I)
EPOCH_WORD = re.compile(r"\bepoch\b", re.I)
PROGRESS_BAR = re.compile(  # tqdm: '100%|██████████| 79/79 [00:02<00:00, 35.10it/s' (its postfix kept)
    r"\d{1,3}%\|[^|\n]{0,100}\|\s*\d+/\d+(?:\s*\[[\d:]{1,12}<[\d:?]{1,12}(?:,\s*[\d.?]{1,12}\s*(?:it/s|s/it))?)?"
)
REPORT_HEADER = re.compile(r"precision\s+recall\s+f1-score\s+support\s*$")  # sklearn's classification_report
ALIASES = {"airplane": ("plane", "aeroplane"), "automobile": ("car",), "T-shirt/top": ("t-shirt", "tshirt")}


@dataclass
class Claim:
    value: Any  # a fraction for accuracies, a class name for best/worst
    cell: int
    line: str
    owner: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "cell": self.cell, "line": self.line[:200], "owner": self.owner}


@dataclass
class Claims:
    test_accuracy: list[Claim] = field(default_factory=list)
    per_class: list[dict[str, Claim]] = field(default_factory=list)  # one table per cell
    best_class: list[Claim] = field(default_factory=list)
    worst_class: list[Claim] = field(default_factory=list)
    runs: list[history.Run] = field(default_factory=list)

    def for_task(self, task: str | None) -> dict[str, Any]:
        """The claims that belong to ``task`` (the last of each kind), as plain data."""

        def last(claims: list[Claim]) -> Claim | None:
            mine = [c for c in claims if c.owner == task]
            return mine[-1] if mine else None

        tables = [t for t in self.per_class if next(iter(t.values())).owner == task]
        return {
            "test_accuracy": last(self.test_accuracy),
            "per_class": tables[-1] if tables else {},
            "best_class": last(self.best_class),
            "worst_class": last(self.worst_class),
            "runs": [r for r in self.runs if r.owner == task],
        }

    def summary(self) -> dict[str, Any]:
        """Everything found, for the report and ``Outcome.data``."""
        return {
            "test_accuracy": [c.as_dict() for c in self.test_accuracy],
            "per_class": [
                {"cell": next(iter(t.values())).cell, "owner": next(iter(t.values())).owner}
                | {"values": {k: c.value for k, c in t.items()}}
                for t in self.per_class
            ],
            "best_class": [c.as_dict() for c in self.best_class],
            "worst_class": [c.as_dict() for c in self.worst_class],
            "runs": [r.as_dict() for r in self.runs],
        }


class ClassNames:
    """Finds the dataset's class names (and their usual aliases) in a line."""

    def __init__(self, classes: tuple[str, ...]) -> None:
        self.numeric = all(c.isdigit() for c in classes)
        names: dict[str, str] = {}
        for name in classes:
            names[name.lower()] = name
            for alias in ALIASES.get(name, ()):
                names.setdefault(alias.lower(), name)
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        if self.numeric:
            self.pattern = re.compile(r"\b(?:class|digit|label)\s*(?:[:#]\s*)?(\d)\b", re.I)
        else:
            self.pattern = re.compile(rf"(?<![\w-])({alternatives})(?![\w-])", re.I)
        self.names = names

    def find(self, line: str) -> list[tuple[int, str]]:
        return [
            (m.start(), self.names.get(m.group(1).lower(), m.group(1))) for m in self.pattern.finditer(line)
        ]


def accuracy_in(line: str, start: int = 0, loose: bool = True, end: int | None = None) -> float | None:
    """The accuracy a line states between ``start`` and ``end``: a percentage, else a
    fraction, else (``loose``) the one bare number between 1 and 100, read as a percentage."""
    end = len(line) if end is None else end
    numbers = [
        m
        for m in NUMBER.finditer(line, start, end)
        if line[m.end() : min(m.end() + 1, end)] != "/" and line[max(0, m.start() - 1) : m.start()] != "/"
    ]
    for m in numbers:
        if m.group(2):
            value = float(m.group(1)) / 100
            return value if 0 <= value <= 1 else None
    for m in numbers:
        if "." in m.group(1) and float(m.group(1)) <= 1:
            return float(m.group(1))
    if loose:
        candidates = [float(m.group(1)) for m in numbers if 1 < float(m.group(1)) <= 100]
        if len(candidates) == 1:
            return candidates[0] / 100
    return None


def _test_accuracy(line: str, classes: ClassNames) -> float | None:
    line = PROGRESS_BAR.sub(" ", line)  # 'Testing accuracy: 100%|████| 79/79': progress, not accuracy
    match = TEST_ACC.search(line) or ACC_THEN_TEST.search(line)
    if not match or EPOCH_WORD.search(line) or classes.find(line):
        return None
    keyword = ACC_WORD.search(line, match.start())
    return accuracy_in(line, keyword.end() if keyword else match.end())


def _per_class(line: str, classes: ClassNames, loose: bool) -> dict[str, float]:
    """Class -> accuracy on one line: 'cat: 45.0%', a table row, or a printed dict."""
    mentions = classes.find(line)
    if not mentions or BEST.search(line) or WORST.search(line) or EPOCH_WORD.search(line):
        return {}
    if len({name for _, name in mentions}) == 1:
        value = accuracy_in(line, mentions[0][0] + 1, loose=loose)
        return {mentions[0][1]: value} if value is not None else {}
    found = {}
    ends = [pos for pos, _ in mentions[1:]] + [len(line)]
    for (pos, name), end in zip(mentions, ends, strict=True):
        value = accuracy_in(line, pos + 1, loose=loose, end=end)  # not line[:end]: quadratic
        if value is not None:
            found.setdefault(name, value)
    return found if len(found) == len({name for _, name in mentions}) else {}


def _report_row(line: str, classes: ClassNames, column: int) -> tuple[str, float] | None:
    """(class, recall) from a row of sklearn's ``classification_report``: a class's accuracy
    is its recall, not the precision its first number gives."""
    mentions = classes.find(line)
    if len({name for _, name in mentions}) != 1:
        return None
    numbers = NUMBER.findall(line, mentions[0][0] + 1)
    if len(numbers) <= column or numbers[column][1]:
        return None
    value = float(numbers[column][0])
    return (mentions[0][1], value) if 0 <= value <= 1 else None


def _ranked(line: str, classes: ClassNames) -> list[tuple[str, str]]:
    """('best'|'worst', class) pairs: the first class named after each keyword."""
    mentions = classes.find(line)
    pairs = []
    for kind, pattern in (("best", BEST), ("worst", WORST)):
        for m in pattern.finditer(line):
            after = [name for pos, name in mentions if pos >= m.end()]
            before = [name for pos, name in mentions if pos < m.start()]
            if after:
                pairs.append((kind, after[0]))
            elif before:
                pairs.append((kind, before[-1]))
            break
    return pairs


def attribute(cells: list[Cell], tasks: dict[str, tuple[str, str | None]]) -> dict[int, str | None]:
    """Cell number -> the task being worked on: the last one mentioned at or before it.

    ``tasks`` maps a task id to (model name, heading such as 'Task 1' or None). With a
    single task, everything belongs to it."""
    patterns = []
    for task_id, (model, heading) in tasks.items():
        patterns.append((re.compile(rf"\b{re.escape(model)}\b"), task_id, ("code", "markdown")))
        if heading:
            words = r"\s*".join(re.escape(w) for w in heading.split())
            patterns.append((re.compile(rf"(?<!\w){words}(?!\d)", re.I), task_id, ("markdown",)))
    owners: dict[int, str | None] = {}
    current: str | None = next(iter(tasks)) if len(tasks) == 1 else None
    for cell in cells:
        last = -1
        for pattern, task_id, kinds in patterns:
            if cell.kind not in kinds:
                continue
            for m in pattern.finditer(cell.source):
                if m.start() > last:
                    last, current = m.start(), task_id
        owners[cell.number] = current
    return owners


def read(cells: list[Cell], classes: tuple[str, ...], owners: dict[int, str | None] | None = None) -> Claims:
    """Every claim the notebook's outputs make, each tagged with its owner task."""
    names = ClassNames(classes)
    owners = owners or {}
    claims = Claims()
    for cell in cells:
        if cell.kind != "code":
            continue
        owner = owners.get(cell.number)
        table: dict[str, Claim] = {}
        lines = [line.strip() for line in history.join_headings(cell.lines())]
        loose = any(ACC_WORD.search(line) for line in lines)
        recall: int | None = None  # the recall column of a classification report above
        for text in lines:
            header = REPORT_HEADER.match(text)
            if header:
                recall = text.split().index("recall")
            elif recall is not None and (row := _report_row(text, names, recall)):
                name, value = row
                table[name] = Claim(value, cell.number, text, owner)
            elif (value := _test_accuracy(text, names)) is not None:
                claims.test_accuracy.append(Claim(value, cell.number, text, owner))
            else:
                for name, value in _per_class(text, names, loose).items():
                    table[name] = Claim(value, cell.number, text, owner)
            for kind, name in _ranked(text, names):
                target = claims.best_class if kind == "best" else claims.worst_class
                target.append(Claim(name, cell.number, text, owner))
        if len(table) >= max(2, len(classes) // 2):
            claims.per_class.append(table)
    claims.runs = history.runs([c for c in cells if c.kind == "code"])
    for run in claims.runs:
        run.owner = owners.get(run.cell)
    return claims


def task_headings(tasks: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """(model, 'Task 1') per rubric task, the heading taken from a title like 'Task 1: ...'."""
    found = {}
    for task_id, task in tasks.items():
        title = getattr(task, "title", "") or ""
        head = title.split(":")[0].strip() if ":" in title else None
        if head and not re.fullmatch(r"(?:task|part|exercise|question|q)\s*\d+[a-z]?", head, re.I):
            head = None
        found[task_id] = (task.model, head)
    return found
