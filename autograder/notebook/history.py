"""Training curves from the lines a notebook printed while training.

Students log epochs in many shapes; the common ones are read:

- one line per epoch: ``Epoch 3/10 - loss: 0.52 - acc: 81.2% - val_loss: 0.61``,
  ``Epoch [3/10], Train Loss: 0.52, Train Acc: 81.2%, Val Loss: ...``,
  ``epoch 3 | train_loss 0.52 | val_acc 0.80``;
- an ``Epoch 3/10`` line followed by metric lines (Keras, or Train/Val lines; PyTorch's
  quickstart: ``Epoch 3``, a ruler, batch losses ``loss: 0.52  [57664/60000]``, then
  ``Test Error:`` above `` Accuracy: 81.2%, Avg loss: 0.61``);
- PyTorch's CIFAR-10 tutorial: ``[2,  4000] loss: 1.52`` (epoch, mini-batch), the last
  line of each epoch taken;
- tqdm bars whose postfix carries the metrics (``loss=0.52, acc=81.2``): the
  last update of each epoch wins, as on screen;
- tables with an ``epoch`` column (pandas, Markdown pipes, fastai's HTML table);
- a printed history dict (``{'train_loss': [...], 'val_acc': [...]}``).

Accuracies become fractions (``81.2%`` and ``81.2`` both mean 0.812); test
metrics logged per epoch are read as validation, since that is how students
use them. Nothing is executed.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .outputs import Cell

SERIES = ("train_loss", "train_acc", "val_loss", "val_acc")
# Each number matches in one way only, and no two neighbouring parts of a pattern can both take
# the same characters (``\s*X?\s*`` on a run of spaces is quadratic): every pattern here is
# linear in the line it reads, so hostile output cannot make the grader backtrack for minutes.
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
EPOCH = re.compile(r"\bepoch\b\s*(?:[\[(:#]\s*)?(\d{1,5})(?:\s*(?:/|of)\s*(\d{1,5}))?", re.I)
SPLIT_WORD = r"train(?:ing)?|val(?:idation|id)?|test|eval"
METRIC = re.compile(
    rf"(?<![A-Za-z])(?:(?P<split>{SPLIT_WORD})(?P<sep>[\s_/-]*))?"
    rf"(?P<metric>loss|acc(?:uracy)?)(?![A-Za-z])\s*(?:(?:[:=]|\bis\b)\s*)?"
    rf"(?P<num>{NUMBER})\s*(?P<pct>%)?",
    re.I,
)
STANDALONE_SPLIT = re.compile(rf"(?<![A-Za-z_])({SPLIT_WORD})(?![A-Za-z_])", re.I)
HISTORY_DICT = re.compile(
    rf"""['"]?(?P<key>[A-Za-z_ ]{{0,20}}(?:loss|acc(?:uracy)?)[A-Za-z_ ]{{0,10}})['"]?\s*[:=]\s*"""
    rf"\[(?P<values>\s*{NUMBER}(?:\s*,\s*{NUMBER}){{1,2000}}\s*,?)\s*\]",
    re.I,
)


@dataclass
class Run:
    """One training log: per-epoch values of the four series."""

    cell: int
    epochs: list[int] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=lambda: {s: [] for s in SERIES})
    declared: int | None = None  # "Epoch 3/10": 10
    owner: str | None = None  # the task it belongs to (set by claims.attribute)
    cells: list[int] = field(default_factory=list)

    def present(self) -> list[str]:
        return [s for s in SERIES if any(v is not None for v in self.series[s])]

    def as_dict(self) -> dict[str, object]:
        return {
            "cell": self.cell,
            "cells": self.cells or [self.cell],
            "epochs": self.epochs,
            "declared_epochs": self.declared,
            "owner": self.owner,
            **{s: self.series[s] for s in self.present()},
        }


def _series(split: str | None, metric: str) -> str:
    side = "train" if split is None or split.lower().startswith("train") else "val"
    return f"{side}_{'loss' if metric.lower() == 'loss' else 'acc'}"


def _value(series: str, number: str, percent: bool) -> float | None:
    try:
        value = float(number)
    except ValueError:
        return None
    if series.endswith("acc"):
        if percent or value > 1.0:
            value /= 100.0
        if not 0.0 <= value <= 1.0:
            return None
    elif not 0.0 <= value < 1e6:
        return None
    return value


def metrics(line: str) -> dict[str, float]:
    """The loss/accuracy values a log line states, keyed by series."""
    events: list[tuple[int, str, re.Match[str]]] = []
    starts, ends = [], []  # metric matches do not overlap: both lists are sorted
    for m in METRIC.finditer(line):
        events.append((m.start(), "metric", m))
        starts.append(m.start())
        ends.append(m.end())
    for m in STANDALONE_SPLIT.finditer(line):
        k = bisect.bisect_right(starts, m.start()) - 1
        if k < 0 or m.start() >= ends[k]:
            events.append((m.start(), "split", m))
    current: str | None = None
    found: dict[str, float] = {}
    for _, kind, m in sorted(events, key=lambda e: e[0]):
        if kind == "split":
            current = m.group(1)
            continue
        split = m.group("split")
        if split and "_" not in (m.group("sep") or ""):
            current = split  # prose ("Val Loss: .. Acc: ..") sets the side for what follows
        name = _series(split or current, m.group("metric"))
        value = _value(name, m.group("num"), bool(m.group("pct")))
        if value is not None and name not in found:
            found[name] = value
    return found


def _is_progress_only(line: str) -> bool:
    """A progress update (a tqdm bar, or a batch line ending in its sample counter, as
    PyTorch's quickstart prints ``loss: 0.52  [ 6464/60000]``): the last one of an epoch wins."""
    return "it/s" in line or "s/it" in line or "|" in line and "%|" in line or bool(COUNTER.search(line))


# PyTorch's quickstart test loop prints a heading alone ("Test Error: "), its numbers on the
# next line (" Accuracy: 85.3%, Avg loss: 0.452"): the two are read as one line
HEADING_ONLY = re.compile(r"test(?:ing)?(?:\s+(?:error|set|results?))?\s*:", re.I)
COUNTER = re.compile(r"\[\s*\d{1,9}\s*/\s*\d{1,9}\s*\]\s*$")
# PyTorch's CIFAR-10 tutorial prints "[epoch, mini-batch] loss: ..." every 2000 batches
BATCH_LINE = re.compile(r"\s*\[\s*(\d{1,5})\s*,\s*\d{1,9}\s*\]")
SEPARATOR = re.compile(r"[-=_*~#\s]{0,200}")  # "-------": between an epoch line and its metrics


def join_headings(lines: list[str]) -> list[str]:
    """Lines with a bare heading (``HEADING_ONLY``) joined to the line after it."""
    out: list[str] = []
    for line in lines:
        if out and HEADING_ONLY.fullmatch(out[-1].strip()):
            out[-1] = f"{out[-1].strip()} {line.strip()}"
        else:
            out.append(line)
    return out


class _Builder:
    """Accumulates epochs across lines; splits runs when the epoch count restarts."""

    def __init__(self, cell: int) -> None:
        self.cell = cell
        self.runs: list[Run] = []
        self.values: dict[int, dict[str, float]] = {}
        self.order: list[int] = []
        self.declared: int | None = None

    def put(self, epoch: int, found: dict[str, float], overwrite: bool) -> None:
        if self.order and epoch < self.order[-1] and epoch not in self.values:
            self.flush()
        if self.order and epoch in self.values and epoch != self.order[-1] and overwrite:
            self.flush()  # epoch 1 again after 1..10: a second training run
        if epoch not in self.values:
            self.values[epoch] = {}
            self.order.append(epoch)
        for key, value in found.items():
            if overwrite or key not in self.values[epoch]:
                self.values[epoch][key] = value

    def flush(self) -> None:
        epochs = [e for e in self.order if self.values[e]]
        if len(epochs) >= 1:
            run = Run(self.cell, epochs, declared=self.declared, cells=[self.cell])
            for s in SERIES:
                run.series[s] = [self.values[e].get(s) for e in epochs]
            self.runs.append(run)
        self.values, self.order, self.declared = {}, [], None


def _table(lines: list[str], start: int) -> tuple[list[tuple[int, dict[str, float]]], int]:
    """A table whose header names an epoch column and metric columns."""
    header = lines[start]
    pipes = "|" in header
    names = [h.strip() for h in (header.strip().strip("|").split("|") if pipes else header.split())]
    lowered = [n.lower() for n in names]
    if "epoch" not in lowered:
        return [], start
    columns = {}
    for k, name in enumerate(lowered):
        m = re.fullmatch(rf"(?:({SPLIT_WORD})[\s_/-]*)?(loss|acc(?:uracy)?)", name, re.I)
        if m:
            columns[k] = _series(m.group(1), m.group(2))
    if not columns:
        return [], start
    rows: list[tuple[int, dict[str, float]]] = []
    k = start + 1
    while k < len(lines):
        raw = lines[k].strip().strip("|")
        if pipes and set(raw.replace("|", "").strip()) <= set("-: "):
            k += 1
            continue
        cells = [c.strip() for c in raw.split("|")] if pipes else raw.split()
        if len(cells) == len(names) + 1:
            cells = cells[1:]  # a pandas index column
        numeric = [cells[k] for k in (lowered.index("epoch"), *columns)] if len(cells) == len(names) else []
        if not numeric or not all(re.fullmatch(NUMBER + "%?", c) for c in numeric):
            break  # other columns may hold anything: fastai's "time" is 00:15
        try:
            epoch = int(float(cells[lowered.index("epoch")]))
        except (ValueError, OverflowError):
            break
        found = {}
        for col, series in columns.items():
            value = _value(series, cells[col].rstrip("%"), cells[col].endswith("%"))
            if value is not None:
                found[series] = value
        rows.append((epoch, found))
        k += 1
    return rows, k


def _history_dicts(text: str, cell: int) -> list[Run]:
    collected: dict[str, list[float]] = {}
    for m in HISTORY_DICT.finditer(text):
        key = m.group("key").strip().lower()
        km = re.fullmatch(rf"(?:({SPLIT_WORD})[\s_/-]*)?(loss|acc(?:uracy)?)(?:es|s)?", key, re.I)
        if not km:
            continue
        series = _series(km.group(1), km.group(2))
        values = [_value(series, v, False) for v in re.findall(NUMBER, m.group("values"))]
        collected.setdefault(series, [v for v in values if v is not None])
    if not collected:
        return []
    length = max(len(v) for v in collected.values())
    run = Run(cell, list(range(1, length + 1)), cells=[cell])
    for s in SERIES:
        values = collected.get(s, [])
        run.series[s] = [values[k] if k < len(values) else None for k in range(length)]
    return [run]


def cell_runs(cell: Cell) -> list[Run]:
    """Every training log one cell printed."""
    builder = _Builder(cell.number)
    lines = join_headings(cell.text_lines)
    pending: int | None = None  # "Epoch 3/10" seen; metric lines may follow it
    following = 0
    k = 0
    while k < len(lines):
        line = lines[k]
        if SEPARATOR.fullmatch(line) and line.strip():
            k += 1
            continue
        epoch_match = EPOCH.search(line)
        batch = None if epoch_match else BATCH_LINE.match(line)
        found = metrics(line[batch.end() :]) if batch else {}
        if found:  # "[2,  4000] loss: 1.52": the epoch's last batch line wins
            builder.put(int(batch.group(1)), found, overwrite=True)
            pending = None
            k += 1
            continue
        if not epoch_match and "epoch" in line.lower():
            rows, end = _table(lines, k)
            if rows:
                for epoch, found in rows:
                    builder.put(epoch, found, overwrite=True)
                k, pending = end, None
                continue
        found = metrics(line)
        if epoch_match:
            pending, following = int(epoch_match.group(1)), 0
            if epoch_match.group(2):
                builder.declared = int(epoch_match.group(2))
            builder.put(pending, found, overwrite=True)
        elif found and pending is not None and following < 3:
            progress = _is_progress_only(line)
            builder.put(pending, found, overwrite=progress)
            following += 0 if progress else 1
        elif not _is_progress_only(line):
            pending = None
        k += 1
    builder.flush()
    runs = builder.runs
    if not runs:
        runs = _history_dicts("\n".join(lines), cell.number)
    return [r for r in runs if r.present()]


def runs(cells: list[Cell]) -> list[Run]:
    """Training logs of the whole notebook; a run continued in the next cell is joined."""
    found: list[Run] = []
    for cell in cells:
        for run in cell_runs(cell):
            last = found[-1] if found else None
            if (
                last is not None
                and last.epochs
                and run.epochs
                and run.epochs[0] == last.epochs[-1] + 1
                and last.cells[-1] < run.cell
                and set(run.present()) == set(last.present())
            ):
                last.epochs += run.epochs
                for s in SERIES:
                    last.series[s] += run.series[s]
                last.cells.append(run.cell)
                last.declared = run.declared or last.declared
                continue
            found.append(run)
    return found
