"""Turning worker answers into check failures a student can act on."""

from __future__ import annotations

import re
from typing import Any

from ..result import CheckFailed
from ..rubric import Item, Task
from ..sandbox import SandboxError, WorkerFailure, failure_line
from .context import Context
from .context.models import Source


def ask(
    ctx: Context,
    source: Source | None,
    what: str,
    op: str,
    timeout: float,
    hidden_inputs: bool = False,
    passing: tuple[str, ...] = (),
    **args: Any,
) -> dict[str, Any]:
    """A worker request whose failures become one-line CheckFailed messages
    (``sandbox.failure_line``); a request that got no answer sets ``stopped`` (its
    ``NoAnswer`` kind) in the failure's data.

    ``hidden_inputs``: the request hands the student's code the hidden test images, so
    the text of an exception it raises is not shown (it could carry the images); its
    type and place are. ``passing``: failure kinds (``sandbox.Failure``) the caller words
    itself, raised as they came."""
    try:
        return ctx.sandbox.request(op, timeout, **args)
    except WorkerFailure as exc:
        if exc.kind in passing:
            raise
        line = exc.details.get("line")
        where = source.where(line) if source is not None and line else ""
        raise CheckFailed(failure_line(what, exc, where=where, text=shown(exc, hidden_inputs))) from None
    except SandboxError as exc:
        raise CheckFailed(failure_line(what, exc), stopped=exc.kind) from None


def ask_model(
    item: Item, ctx: Context, op: str, what: str, **args: Any
) -> tuple[Task, Source, dict[str, Any]]:
    """Build the item's task model in the worker and ask it ``op`` at the task's input
    size: the one shape of the checks that inspect a built model. ``what`` names the
    request in a failure message, with ``{model}`` for the model's name. Returns the
    task, where its model was found, and the answer."""
    task = ctx.models.task(item.task)
    source = ctx.models.build(task.id)
    what = what.format(model=task.model)
    answer = ask(ctx, source, what, op, item.timeout, task=task.id, input_shape=task.input_shape, **args)
    return task, source, answer


# Worker messages about the grader's own inputs, safe to show word for word (they carry two numbers).
PLAIN = re.compile(r"normalisation has \d{1,3} values for \d{1,3}-channel images")


def shown(exc: WorkerFailure, hidden_inputs: bool) -> str:
    """The worker's message, unless student code could have put the hidden images in it:
    the worker runs student code, so its kinds and texts are the student's to choose."""
    if not hidden_inputs or PLAIN.fullmatch(exc.message):
        return exc.message
    name = re.match(r"[A-Za-z_][\w.]{0,40}(?=:|$)", exc.message)
    return (
        f"{name.group() if name else 'an exception'} (its message is not shown: your code raised "
        "it while holding the hidden test images)"
    )


def fmt_shape(shape: list[int] | None) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if shape else "?"
