"""``files``: are the files the handout asks for in the submission?"""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from .context import Context
from .registry import check


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    required = options.get("required")
    if not isinstance(required, list) or not all(
        isinstance(r, dict) and isinstance(r.get("pattern"), str) for r in required
    ):
        raise ValueError('files needs required = [{pattern = "*.ipynb", what = "notebook"}, ...]')
    if set(options) - {"required"}:
        raise ValueError(f"files has no option {', '.join(sorted(set(options) - {'required'}))}")
    return options


@check("files", needs_task=False, timeout=5, validate=_validate)
def run(item: Item, ctx: Context) -> Outcome:
    lines, missing = [], []
    for entry in item.options["required"]:
        hits = ctx.submission.find([entry["pattern"]])
        what = entry.get("what", entry["pattern"])
        if hits:
            lines.append(f"found {what}: {', '.join(h.as_posix() for h in hits)}")
        else:
            missing.append(f"{what} ({entry['pattern']})")
    details = "\n".join(
        lines + [f"MISSING {m}" for m in missing] + [f"note: {n}" for n in ctx.submission.notes]
    )
    if missing:
        return Outcome(
            False, f"missing: {'; '.join(missing)}. Submitted: {ctx.submission.listing()}", details
        )
    return Outcome(True, f"all {len(lines)} required files found", details)
