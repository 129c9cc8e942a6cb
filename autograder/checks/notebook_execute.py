"""``notebook_execute``: does the notebook run top to bottom, in the sandbox?

Optional per rubric (it costs a kernel and a training run). In smoke mode the
epoch count is overridden (``notebook/smoke.py``) so a notebook written to
train for hours finishes in seconds. Each cell has its own time limit and the
whole run the item's ``timeout``; the first error, hang or kernel death fails
this item only. The executed notebook is saved beside the report for the TA.
"""

from __future__ import annotations

from typing import Any

import nbformat

from ..data.registry import DATASETS
from ..notebook import execute, history, outputs, smoke
from ..result import CheckFailed, ItemResult, Outcome
from ..rubric import Item
from .context import Context
from .limits import CELL_TIMEOUT
from .registry import RUN_SECTION, Part, Place, allowed, check, hook

OPTIONS = {"smoke", "epochs", "epoch_names", "parameters", "cell_timeout", "skip_lines", "data"}


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("notebook_execute", OPTIONS, options)
    if not isinstance(options.setdefault("smoke", True), bool):
        raise ValueError("notebook_execute: smoke must be true or false")
    if not isinstance(options.setdefault("data", True), bool):
        raise ValueError("notebook_execute: data must be true or false")
    epochs = options.setdefault("epochs", 1)
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError("notebook_execute: epochs (the smoke-mode epoch count) must be a positive integer")
    cell = options.setdefault("cell_timeout", CELL_TIMEOUT)
    if not isinstance(cell, (int, float)) or cell <= 0:
        raise ValueError("notebook_execute: cell_timeout must be a positive number of seconds")
    for key, default in (("epoch_names", list(smoke.EPOCH_NAMES)), ("skip_lines", list(smoke.SKIP_LINES))):
        value = options.setdefault(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"notebook_execute: {key} must be a list of strings")
    params = options.setdefault("parameters", {})
    if not isinstance(params, dict) or not all(
        k.isidentifier() and isinstance(v, (int, float, str, bool)) for k, v in params.items()
    ):
        raise ValueError(
            "notebook_execute: parameters must map variable names to numbers, strings or booleans"
        )
    return options


def _traceback(cells: list[outputs.Cell], number: int | None) -> str:
    """The failed cell's traceback, colours removed (its last 3000 characters)."""
    for cell in cells:
        if cell.number != number:
            continue
        for error in cell.errors():
            frames = error.get("traceback")
            text = "\n".join(f for f in frames if isinstance(f, str)) if isinstance(frames, list) else ""
            return "\n".join(line for line in outputs.terminal_lines(text) if line.strip())[-3000:]
    return ""


@check(
    "notebook_execute",
    needs_task=False,
    timeout=600,
    validate=_validate,
    slow=True,
    measured=("images", "status", "cells_run", "failed_cell"),
)
def run(item: Item, ctx: Context) -> Outcome:
    nb = ctx.notebooks.read()
    name = ctx.notebooks.path().as_posix()
    options = item.options
    prepared = smoke.prepare(
        nb,
        options["smoke"],
        options["epochs"],
        tuple(options["epoch_names"]),
        options["parameters"],
        tuple(options["skip_lines"]),
    )
    root = ctx.data_root
    data = None
    if options["data"] and root is not None and (root / DATASETS[ctx.rubric.dataset].folder).is_dir():
        data = (root, ctx.rubric.dataset)
    total = execute.budget(item.timeout)
    done = execute.run(ctx.sandbox, prepared, data, float(options["cell_timeout"]), item.timeout)
    answer = done.answer
    smoke_note = ""
    if options["smoke"]:
        smoke_note = (
            "smoke mode: " + "; ".join(c for c in prepared.changes if "skipped" not in c)
            if prepared.overridden
            else "smoke mode found no epoch setting to shorten (name it EPOCHS, or tag a cell `parameters`)"
        )
    details = [
        f"notebook: {name}, run in a separate sandbox"
        + (f" with {ctx.rubric.dataset} at ./data" if data else " without a dataset"),
        *(
            [f"test split at ./data: a stand-in of {done.stand_in} (the hidden labels stay with the grader)"]
            if done.stand_in
            else []
        ),
        f"limits: {options['cell_timeout']:g} s per cell, {total:g} s in all",
        *prepared.changes,
        f"status: {done.status or 'unknown'}; cells run: {answer.get('cells_run', 0)}; "
        f"seconds: {answer.get('seconds', '?')} (kernel start {answer.get('kernel_seconds', '?')})",
    ]
    data: dict[str, Any] = {
        "status": done.status,
        "cells_run": answer.get("cells_run", 0),
        "seconds": answer.get("seconds"),
        "changes": prepared.changes,
        "smoke": options["smoke"],
    }
    if done.notebook is not None:
        data["artifacts"] = {f"{ctx.notebooks.path().stem}.executed.ipynb": nbformat.writes(done.notebook)}
        cells = outputs.cells(done.notebook)
        data["images"] = sum(c.figure_count() for c in cells)
        data["runs"] = [r.as_dict() for r in history.runs([c for c in cells if c.kind == "code"])]
        trace = _traceback(cells, answer.get("failed_cell"))
        if trace:
            details += ["", "traceback:", trace]
    if done.status == "ok":
        message = (
            f"{name} ran top to bottom in the sandbox: {answer.get('cells_run', 0)} cells in "
            f"{answer.get('seconds', 0):g} s"
        )
        return Outcome(True, message + (f" ({smoke_note})" if smoke_note else ""), "\n".join(details), data)
    message = _failure(done, prepared, total)
    failed = answer.get("failed_cell")
    if isinstance(failed, int):
        data["failed_cell"] = prepared.original(failed)
    if done.status in ("timeout", "total_timeout") and options["smoke"] and not prepared.overridden:
        message += f" ({smoke_note})"
    raise CheckFailed(
        f"running {name}: {message}", "\n".join(details + ["", "sandbox log:", done.log[-3000:]]), **data
    )


def _failure(done: execute.Execution, prepared: smoke.Prepared, total: float) -> str:
    """One line, with the student's own cell numbers (an injected cell shifts the rest)."""
    answer = done.answer
    failed = answer.get("failed_cell")
    cell = f"cell {prepared.original(failed)}" if isinstance(failed, int) else "a cell"
    if done.status == "error":
        return f"{cell} raised {answer.get('ename', 'an error')}: {str(answer.get('evalue', ''))[:300]}"
    if done.status == "timeout":
        return f"{cell} did not finish within the {answer.get('limit', '?')} s per-cell limit"
    if done.status == "total_timeout":
        return f"the {total:g} s limit for the whole notebook ran out at {cell}"
    if done.status == "dead_kernel":
        return f"the kernel died while running {cell} (out of memory, or the process was killed)"
    return done.message or f"the run ended with status {done.status!r}"


@hook("notebook_execute", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """Its verdict in the Notebook section (the executed notebook is saved beside the report)."""
    return [Part("item_line", item, order=0, section=RUN_SECTION)]
