"""``manual``: a part a TA grades by hand (the report). Recorded with its
points but no automatic score."""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from .context import Context
from .registry import allowed, check


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("manual", {"files"}, options)
    return options


@check("manual", needs_task=False, timeout=5, validate=_validate, measured=("files",))
def run(item: Item, ctx: Context) -> Outcome:
    patterns = item.options.get("files", [])
    hits = ctx.submission.find(patterns) if patterns else []
    if patterns and not hits:
        found = f"no file matching {', '.join(patterns)} was submitted"
    elif hits:
        found = f"submitted: {', '.join(h.as_posix() for h in hits)}"
    else:
        found = ""
    return Outcome(
        bool(hits) or not patterns,
        f"graded by a TA ({item.points:g} points){'; ' + found if found else ''}",
        data={"manual": True, "files": [h.as_posix() for h in hits]},
    )
