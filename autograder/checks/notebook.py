"""``notebook`` and ``notebook_outputs``: the saved notebook, read without running it.

``notebook`` asks whether it really ran: every code cell executed, top to
bottom, without an error output. ``notebook_outputs`` asks whether it shows
what the handout asks for (a model summary, a FLOP print, the test accuracy,
plots, per-class lines, ...). Both record the numbers the outputs claim
(``notebook/claims.py``), which the ``claims`` check and the report use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..data.registry import DATASETS
from ..notebook import claims as nbclaims
from ..notebook import outputs
from ..result import CheckFailed, ItemResult, Outcome
from ..rubric import Item
from .context import Context
from .registry import RUN_SECTION, Part, Place, allowed, check, hook

MAX_ERRORS_KEPT = 50  # error outputs listed in results.json; the message counts them all
RERUN = "run Kernel → Restart & Run All, then save the notebook before submitting"


@dataclass
class Facts:
    """What the submitted notebook shows, computed once per submission."""

    name: str
    cells: list[outputs.Cell]
    claims: nbclaims.Claims
    owners: dict[int, str | None]
    figures: list[outputs.Figure]


def facts(ctx: Context) -> Facts:
    def read() -> Facts:
        nb = ctx.notebooks.read()
        cells = outputs.cells(nb)
        owners = nbclaims.attribute(cells, nbclaims.task_headings(ctx.rubric.tasks))
        found = nbclaims.read(cells, DATASETS[ctx.rubric.dataset].classes, owners)
        read = _reader(ctx)
        figures = [f for c in cells if c.kind == "code" for f in outputs.figures(c, read)]
        return Facts(ctx.notebooks.path().as_posix(), cells, found, owners, figures)

    return ctx.memo("notebook_facts", read)


def _reader(ctx: Context) -> Callable[[str], bytes | None]:
    """A submitted figure file's bytes by name (any folder, any case), for figures a
    notebook saved with ``savefig`` instead of showing them; None when absent or too large."""
    submission = ctx.notebooks.submission
    files = {f.name.lower(): f for f in sorted(submission.files, key=lambda p: len(p.parts), reverse=True)}

    def read(name: str) -> bytes | None:
        rel = files.get(name.lower())
        if rel is None or (submission.root / rel).stat().st_size > outputs.MAX_PNG_BYTES:
            return None
        return (submission.root / rel).read_bytes()

    return read


def cell_list(numbers: list[int]) -> str:
    """'cell 8' or 'cells 8, 9'."""
    return f"cell{'s' if len(numbers) > 1 else ''} {_few(numbers)}"


def _few(numbers: list[int], limit: int = 6) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" (+{len(numbers) - limit} more)" if len(numbers) > limit else "")


# --- notebook ---------------------------------------------------------------
def _validate_run(options: dict[str, Any]) -> dict[str, Any]:
    allowed("notebook", {"executed", "in_order", "errors"}, options)
    for key in ("executed", "in_order", "errors"):
        value = options.setdefault(key, True)
        if not isinstance(value, bool):
            raise ValueError(f"notebook: {key} must be true or false")
    return options


@check(
    "notebook",
    needs_task=False,
    timeout=30,
    validate=_validate_run,
    measured=("executed", "unexecuted", "errors"),
)
def run_notebook(item: Item, ctx: Context) -> Outcome:
    found = facts(ctx)
    nb = ctx.notebooks.read()
    order = outputs.run_order(nb)
    problems: list[str] = []
    schema = outputs.schema_problem(nb)
    if schema:
        problems.append(
            f"{found.name} does not follow the notebook format ({schema}); re-save it from Jupyter"
        )
    if item.options["executed"] and order.unexecuted:
        cells = [c.number for c in order.unexecuted]
        problems.append(
            f"{len(cells)} of {order.code} code cells "
            f"{'was' if len(cells) == 1 else 'were'} never run ({cell_list(cells)}); {RERUN}"
        )
    if item.options["executed"] and order.code and not order.executed:
        problems[-1:] = [f"{found.name} was saved without running any cell; {RERUN}"]
    if item.options["in_order"] and order.out_of_order:
        first, second = order.out_of_order[0]
        problems.append(
            f"cells ran out of order ({second.label} after {first.label}"
            + (f", and {len(order.out_of_order) - 1} more" if len(order.out_of_order) > 1 else "")
            + f"); {RERUN}"
        )
    error_lines = [outputs.error_line(cell, error) for cell, error in order.errors]
    if item.options["errors"] and error_lines:
        problems.append(
            error_lines[0] + (f" (+{len(error_lines) - 1} more errors)" if len(error_lines) > 1 else "")
        )
    others = [p.as_posix() for p in ctx.notebooks.others()]
    details = [
        f"notebook: {found.name}",
        *([f"other notebooks, not graded: {', '.join(others[:10])}"] if others else []),
        f"code cells: {order.code}, executed: {order.executed}",
        *(f"never run: cell {c.number}" for c in order.unexecuted[:20]),
        *(
            [f"no count recorded (Colab keeps none for a cell without output): cells {_few(unrecorded)}"]
            if (unrecorded := [c.number for c in order.unrecorded])
            else []
        ),
        *(f"out of order: {b.label} after {a.label}" for a, b in order.out_of_order[:20]),
        *(f"error: {line}" for line in error_lines[:20]),
        f"figures (PNG, JPEG, SVG or Plotly outputs, files saved by savefig): {len(found.figures)}",
    ]
    data = {
        "notebook": found.name,
        "code_cells": order.code,
        "executed": order.executed,
        "unexecuted": [c.number for c in order.unexecuted],
        "unrecorded": [c.number for c in order.unrecorded],
        "out_of_order": [[a.number, b.number] for a, b in order.out_of_order],
        "errors": [
            {"cell": c.number, "ename": outputs.error_name(e), "evalue": str(e.get("evalue", ""))[:300]}
            for c, e in order.errors[:MAX_ERRORS_KEPT]
        ],
        "claims": found.claims.summary(),
    }
    if problems:
        return Outcome(False, "; ".join(problems), "\n".join(details), data)
    return Outcome(
        True,
        f"{found.name}: all {order.executed} code cells ran in order"
        + (", no errors" if not error_lines else f"; {len(error_lines)} error outputs (reported only)"),
        "\n".join(details),
        data,
    )


# --- notebook_outputs -------------------------------------------------------
SUMMARY = re.compile(r"Total params|Layer \(type|Param #|Trainable params|^\s*\(\w+\): \w+\(", re.I)
# A word and a number on one line, found by separate linear searches: one regex such as
# ``\d.*?\bflops\b`` rescans the rest of the line from every digit (101 s on 120,000 digits).
# (torchinfo's summary prints "Total mult-adds (M): 557.88")
FLOP_WORD = re.compile(r"\b(?:[gmk]?flops?|[gmk]?macs?|multiply-adds|mult-adds)\b", re.I)
FLOP_UNIT = re.compile(r"\b(?:[gmk]?flops?|[gmk]?macs?)\b", re.I)
PARAM_WORD = re.compile(r"\bparam(?:eter)?s?\b", re.I)
DIGIT = re.compile(r"\d")


class _Near:
    """A line with ``word`` then a digit, or (``unit``) a digit then ``unit``."""

    def __init__(self, word: re.Pattern[str], unit: re.Pattern[str] | None = None) -> None:
        self.word, self.unit = word, unit

    def search(self, line: str) -> bool:
        m = self.word.search(line)
        if m and DIGIT.search(line, m.end()):
            return True
        digit = DIGIT.search(line) if self.unit else None
        return bool(digit and self.unit.search(line, digit.end()))


FLOPS = _Near(FLOP_WORD, FLOP_UNIT)  # 'FLOPs: 0.56 G' and '0.56 GFLOPs'
PARAMS = _Near(PARAM_WORD)  # 'Total params: 11,173,962'
FINDERS = {
    "summary": "a model summary (torchsummary/torchinfo table or print(model))",
    "flops": "a FLOPs/MACs print (thop)",
    "params": "a parameter-count print",
    "test_accuracy": "a test-accuracy print",
    "per_class": "per-class accuracy lines (one cell naming at least half the classes)",
    "best_worst": "the best and worst class",
    "plots": "plots (image outputs)",
    "curve_plots": "plots of training curves",
    "curves": "a per-epoch training log",
}


def _validate_outputs(options: dict[str, Any]) -> dict[str, Any]:
    allowed("notebook_outputs", {"require"}, options)
    require = options.get("require")
    if not isinstance(require, list) or not require:
        raise ValueError('notebook_outputs needs require = [{find = "plots", min = 2}, {regex = "..."}, ...]')
    normalised = []
    for entry in require:
        if isinstance(entry, str):
            entry = {"find": entry}
        if not isinstance(entry, dict) or ("find" in entry) == ("regex" in entry):
            raise ValueError(f"notebook_outputs: {entry!r} needs exactly one of find or regex")
        if "find" in entry and entry["find"] not in FINDERS:
            raise ValueError(f"notebook_outputs: unknown find {entry['find']!r}; known: {', '.join(FINDERS)}")
        if "regex" in entry:
            try:
                entry["compiled"] = re.compile(entry["regex"], re.I)
            except re.error as exc:
                raise ValueError(f"notebook_outputs: bad regex {entry['regex']!r}: {exc}") from None
        needs = entry.setdefault("needs", [])
        if needs and (entry.get("find") != "curves" or not set(needs) <= set(CURVE_NEEDS)):
            names = " and/or ".join(CURVE_NEEDS)
            raise ValueError(f'notebook_outputs: needs goes with find = "curves" and lists {names}')
        minimum = entry.setdefault("min", 1)
        if not isinstance(minimum, int) or minimum < 1:
            raise ValueError(f"notebook_outputs: min must be a positive integer in {entry!r}")
        entry.setdefault(
            "what", FINDERS.get(entry.get("find", ""), f"output matching /{entry.get('regex')}/")
        )
        normalised.append(entry)
    options["require"] = normalised
    return options


def _matching_cells(found: Facts, pattern: re.Pattern[str] | _Near) -> list[int]:
    return [c.number for c in found.cells if c.kind == "code" and any(pattern.search(x) for x in c.lines())]


def _count(entry: dict[str, Any], found: Facts) -> tuple[int, list[int]]:
    """How many of the wanted outputs the notebook has, and in which cells."""
    claims = found.claims
    what = entry.get("find")
    if what == "summary":
        cells = _matching_cells(found, SUMMARY)
    elif what == "flops":
        cells = _matching_cells(found, FLOPS)
    elif what == "params":
        cells = _matching_cells(found, PARAMS)
    elif what == "test_accuracy":
        cells = [c.cell for c in claims.test_accuracy]
    elif what == "per_class":
        cells = [next(iter(t.values())).cell for t in claims.per_class]
    elif what == "best_worst":
        best, worst = [c.cell for c in claims.best_class], [c.cell for c in claims.worst_class]
        return min(len(best), len(worst)), sorted(set(best + worst))
    elif what in ("plots", "curve_plots"):  # a figure of plots side by side counts each
        shown = [f for f in found.figures if what == "plots" or f.kind == "curve"]
        return sum(f.panels for f in shown), sorted({f.cell for f in shown})
    elif what == "curves":
        cells = [r.cell for r in claims.runs if len(r.epochs) >= 2 and not _lacks(r, entry["needs"])]
    else:
        cells = _matching_cells(found, entry["compiled"])
    return len(cells), sorted(set(cells))


# what a per-epoch log may be required to hold (``needs``), and the series that give it
CURVE_NEEDS = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}


def _lacks(run: Any, needs: list[str]) -> list[str]:
    """What of ``needs`` a training log does not hold."""
    present = set(run.present())
    return [n for n in needs if not present & set(CURVE_NEEDS[n])]


def _partial_logs(found: Facts, needs: list[str]) -> str:
    """'; the log in cell 5 has no accuracy': why a log the notebook prints does not count."""
    for run in found.claims.runs:
        lacking = _lacks(run, needs)
        if len(run.epochs) >= 2 and lacking:
            return f"; the log in cell {run.cell} has no {' and no '.join(lacking)}"
    return ""


def _other_figures(found: Facts) -> str:
    """'; its 2 figures are an image grid (cell 4) and ...': what the notebook shows instead."""
    others = [f for f in found.figures if f.kind != "curve"]
    if not others:
        return ""
    shown = ", ".join(f"{outputs.KINDS[f.kind]} (cell {f.cell})" for f in others[:4])
    more = f" (+{len(others) - 4} more)" if len(others) > 4 else ""
    return f"; its other figures: {shown}{more}"


@check("notebook_outputs", needs_task=False, timeout=30, validate=_validate_outputs, measured=("found",))
def run_outputs(item: Item, ctx: Context) -> Outcome:
    found = facts(ctx)
    if not any(c.outputs for c in found.cells):
        raise CheckFailed(f"{found.name} has no outputs at all; {RERUN}")
    lines, missing, met = [], [], 0
    counts: dict[str, int] = {}
    for entry in item.options["require"]:
        count, cells = _count(entry, found)
        counts[entry["what"]] = count
        where = f" in {cell_list(cells)}" if cells else ""
        if count >= entry["min"]:
            met += 1
            lines.append(f"found {entry['what']}: {count}{where}")
        else:
            need = f" (found {count}, need {entry['min']})" if entry["min"] > 1 or count else ""
            if entry.get("find") == "curve_plots":
                need += _other_figures(found)
            if entry.get("find") == "curves" and entry["needs"]:
                need += _partial_logs(found, entry["needs"])
            missing.append(f"{entry['what']}{need}")
            lines.append(f"MISSING {entry['what']}: found {count}{where}, need {entry['min']}")
    if any(e.get("find") in ("plots", "curve_plots") for e in item.options["require"]):
        lines += [f"figure: {f.label}" for f in found.figures[:20]]
    total = len(item.options["require"])
    data = {"found": counts, "met": met, "required": total}
    data["figures"] = [
        {"cell": f.cell, "kind": f.kind, "why": f.why, "panels": f.panels} for f in found.figures[:50]
    ]
    score = round(item.points * met / total, 4)
    unread = outputs.first_unread(found.cells)
    if unread:
        lines.append(unread)
    if missing:
        return Outcome(
            False,
            f"{found.name} is missing {'; '.join(missing)} ({met}/{total} required outputs shown)"
            + (f"; {unread}" if unread else ""),
            "\n".join(lines),
            data,
            score=score,
        )
    return Outcome(
        True, f"{found.name} shows all {total} required outputs", "\n".join(lines), data, score=score
    )


# --- what the kinds contribute beyond their verdicts (registry hooks) -------------------
MAX_CURVE_ROWS = 20  # rows of a curve table in Markdown (sampled evenly)


@dataclass
class Curve:
    title: str
    epochs: list[int]
    series: dict[str, list[float | None]]
    declared: int | None = None

    def table(self) -> list[dict[str, Any]]:
        """At most MAX_CURVE_ROWS rows, evenly spaced, the last epoch always included."""
        n = len(self.epochs)
        picks = (
            sorted({round(k * (n - 1) / (MAX_CURVE_ROWS - 1)) for k in range(MAX_CURVE_ROWS)}) if n else []
        )
        picks = list(range(n)) if n <= MAX_CURVE_ROWS else picks
        return [{"epoch": self.epochs[k], **{s: v[k] for s, v in self.series.items()}} for k in picks]


def _curve(run: dict[str, Any], title: str) -> Curve | None:
    epochs = run.get("epochs") or []
    series = {k: run[k] for k in ("train_loss", "val_loss", "train_acc", "val_acc") if run.get(k)}
    if not epochs or not series:
        return None
    cells = run.get("cells") or [run.get("cell")]
    where = f"cell{'s' if len(cells) > 1 else ''} {', '.join(str(c) for c in cells)}"
    return Curve(f"{title} ({where})", list(epochs), series, declared=run.get("declared_epochs"))


@hook("notebook", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """Its verdict and the cells' errors in the Notebook section; the training curves the
    notebook logged, redrawn, each in the section of the task it belongs to."""
    parts = [Part("item_line", item, order=0, section=RUN_SECTION)]
    if item.data.get("errors"):
        parts.append(Part("notebook_errors", item.data["errors"], order=1, section=RUN_SECTION))
    for run in (item.data.get("claims") or {}).get("runs") or []:
        owner = run.get("owner")
        section = owner if owner in place.titles else "notebook"
        title = f"{place.titles[owner]} training log" if section == owner else "Training log"
        curve = _curve(run, title)
        if curve:
            figures = {"curves": ("curves", (curve.epochs, curve.series, curve.title))}
            parts.append(Part("curve", curve, order=40, section=section, figures=figures))
    return parts


@hook("notebook_outputs", "report")
def report_outputs(item: ItemResult, place: Place) -> list[Part]:
    return [Part("item_line", item, order=0, section=RUN_SECTION)]
