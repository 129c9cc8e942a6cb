"""``residual``: the model still has skip connections (UW Lab 7 lets students
change channels, kernel sizes, strides and padding, but not that).

Found structurally in the forward pass of a probe input (see
``sandbox/worker/structure.py``): an addition whose operands come from one
tensor, one through the block's convolutions, the other directly (identity
shortcut) or through a single convolution (projection shortcut).
"""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from .common import ask
from .context import Context
from .registry import allowed, check


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("residual", {"min_skips", "projections"}, options)
    options.setdefault("min_skips", 1)
    for key in ("min_skips", "projections"):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"residual: {key} must be a whole number >= 0")
    return options


@check("residual", timeout=60, validate=_validate, self_reported=True)
def run(item: Item, ctx: Context) -> Outcome:
    task = ctx.task(item.task)
    source = ctx.model(task.id)
    facts = ask(
        ctx,
        source,
        f"tracing {task.model}'s forward pass",
        "residual",
        item.timeout,
        task=task.id,
        input_shape=task.input_shape,
    )
    found = facts.get("skips") or []
    identity = sum(1 for s in found if s.get("shortcut") == "identity")
    projection = len(found) - identity
    lines = [
        f"skip {k + 1}: {s.get('shortcut')} shortcut around {s.get('main_path')} weighted layer(s), "
        f"output {tuple(s.get('shape') or ())}"
        for k, s in enumerate(found)
    ]
    lines.append(
        f"{facts.get('additions', 0)} tensor additions and {facts.get('weighted_ops', 0)} "
        "convolution/linear calls in the forward pass"
    )
    data = {"skips": len(found), "identity_skips": identity, "projection_skips": projection}
    summary = f"{len(found)} skip connections ({identity} identity, {projection} projection)"
    want, want_proj = item.options["min_skips"], item.options.get("projections")
    if len(found) < want:
        hint = "; add the block's input back to its output (out = out + shortcut(x))" if not found else ""
        return Outcome(
            False,
            f"{task.model} ({source.label}) has {summary}; at least {want} required{hint}",
            "\n".join(lines),
            data,
        )
    if want_proj is not None and projection != want_proj:
        return Outcome(
            False,
            f"{task.model} has {summary}; expected {want_proj} projection shortcuts "
            "(one wherever a block changes the shape)",
            "\n".join(lines),
            data,
        )
    return Outcome(True, f"{task.model} is residual: {summary}", "\n".join(lines), data)
