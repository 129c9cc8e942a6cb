"""Check kinds register here, the way pytest plugins hook in: a rubric item's
``kind`` names one, and the rubric loader asks it to validate its options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..result import Outcome
    from ..rubric import Item
    from .context import Context


@dataclass(frozen=True)
class CheckKind:
    name: str
    run: Callable[[Item, Context], Outcome]
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    needs_task: bool
    timeout: float
    visibility: str = "visible"  # default Gradescope visibility of its items (a rubric may override)
    hidden: bool = False  # its verdict depends on the hidden test labels: the grader's alone
    slow: bool = False  # takes minutes (training, running a notebook): not part of a quick self-check
    # Its verdict rests on what the student's worker process reports about its own model, which
    # import-time code can forge (docs/security.md); the rubric loader warns when one gates points.
    self_reported: bool = False
    prepare: Callable[[Item, Context], None] | None = None  # grader-side work before the worker starts


KINDS: dict[str, CheckKind] = {}


def check(
    name: str,
    *,
    needs_task: bool = True,
    timeout: float = 60.0,
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    visibility: str = "visible",
    hidden: bool = False,
    slow: bool = False,
    self_reported: bool = False,
    prepare: Callable[[Item, Context], None] | None = None,
):
    def register(fn: Callable[[Item, Context], Outcome]):
        KINDS[name] = CheckKind(
            name,
            fn,
            validate or _no_options(name),
            needs_task,
            timeout,
            visibility=visibility,
            hidden=hidden,
            slow=slow,
            self_reported=self_reported,
            prepare=prepare,
        )
        return fn

    return register


def _no_options(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def validate(options: dict[str, Any]) -> dict[str, Any]:
        if options:
            raise ValueError(f"kind {name} takes no option {', '.join(sorted(options))}")
        return options

    return validate


def allowed(name: str, known: set[str], options: dict[str, Any]) -> None:
    unknown = set(options) - known
    if unknown:
        raise ValueError(
            f"kind {name} has no option {', '.join(sorted(unknown))} "
            f"(options: {', '.join(sorted(known)) or 'none'})"
        )
