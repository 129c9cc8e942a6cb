"""Turning worker answers into check failures a student can act on."""

from __future__ import annotations

from typing import Any

from ..result import CheckFailed
from ..sandbox import SandboxError, WorkerFailure
from .context import Context, Source


def ask(
    ctx: Context, source: Source | None, what: str, op: str, timeout: float, **args: Any
) -> dict[str, Any]:
    """A worker request whose failures become one-line CheckFailed messages."""
    try:
        return ctx.sandbox.request(op, timeout, **args)
    except WorkerFailure as exc:
        line = exc.details.get("line")
        where = f" at {source.where(line)}" if source is not None and line else ""
        raise CheckFailed(f"{what} failed{where}: {exc.message}") from None
    except SandboxError as exc:
        if exc.kind == "timeout":
            raise CheckFailed(f"{what} did not finish within the {timeout:g} s time limit") from None
        if exc.kind == "budget":
            raise CheckFailed(f"{what} was stopped: {exc.message}") from None
        raise CheckFailed(f"{what} crashed the worker: {exc.message}") from None


def fmt_shape(shape: list[int] | None) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if shape else "?"
