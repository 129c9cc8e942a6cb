"""``spec``: the required layers, in the order the forward pass runs them.

Execution order (recorded with hooks, functional calls such as ``F.relu``
included) is what matters, not the order of ``__init__``. Layer types listed
in ``between`` (pooling, dropout, flatten) may sit between required layers.
"""

from __future__ import annotations

from typing import Any

from ..result import CheckFailed, Outcome
from ..rubric import Item
from .common import ask
from .context import Context
from .registry import allowed, check

DEFAULT_BETWEEN = [
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "Identity",
]


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("spec", {"layers", "between", "final"}, options)
    layers = options.get("layers")
    if (
        not isinstance(layers, list)
        or not layers
        or not all(isinstance(x, dict) and isinstance(x.get("type"), str) for x in layers)
    ):
        raise ValueError('spec needs layers = [{type = "Conv2d", ...}, ...]')
    options.setdefault("between", DEFAULT_BETWEEN)
    return options


def describe(layer: dict[str, Any]) -> str:
    attrs = {k: v for k, v in layer.items() if k not in ("type", "name", "functional")}
    inner = ", ".join(f"{k}={_short(v)}" for k, v in attrs.items())
    return f"{layer['type']}({inner})"


def _short(value: Any) -> Any:
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def matches(want: dict[str, Any], got: dict[str, Any]) -> bool:
    if want["type"] != got["type"]:
        return False
    attrs = got.get("attrs", {})
    return all(_short(attrs.get(k)) == _short(v) for k, v in want.items() if k != "type")


def shown(got: dict[str, Any]) -> str:
    keys = (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "num_features",
        "in_features",
        "out_features",
        "p",
    )
    attrs = {k: got["attrs"][k] for k in keys if k in got.get("attrs", {})}
    return describe({"type": got["type"], **attrs}) + (" [functional]" if got.get("functional") else "")


def compare(
    executed: list[dict[str, Any]],
    layers: list[dict[str, Any]],
    between: list[str],
    final: dict[str, Any] | None,
) -> tuple[bool, str, list[str]]:
    """(passed, one-line reason, diff lines)."""
    significant = [k for k, g in enumerate(executed) if g["type"] not in between]
    best_start, best_len = None, -1
    for start_pos, _k in enumerate(significant):
        n = 0
        while (
            n < len(layers)
            and start_pos + n < len(significant)
            and matches(layers[n], executed[significant[start_pos + n]])
        ):
            n += 1
        if n > best_len:
            best_start, best_len = start_pos, n
        if n == len(layers):
            break
    diff = []
    ok = best_len == len(layers)
    for n, want in enumerate(layers):
        pos = (best_start or 0) + n
        got = executed[significant[pos]] if pos < len(significant) else None
        mark = "  " if got and matches(want, got) else "✗ "
        diff.append(f"{mark}expected {describe(want):<60} got {shown(got) if got else '(nothing)'}")
    reason = ""
    if not ok:
        bad = best_len if best_len >= 0 else 0
        pos = (best_start or 0) + bad
        got = executed[significant[pos]] if pos < len(significant) else None
        reason = (
            f"layer {bad + 1} of the required stack should be {describe(layers[bad])} "
            f"but the forward pass runs {shown(got) if got else 'nothing'} there"
        )
    if ok and final:
        last = next((g for g in reversed(executed) if g.get("params") or g["type"] == final["type"]), None)
        good = last is not None and matches(final, last)
        diff.append(
            f"{'  ' if good else '✗ '}final layer: expected {describe(final):<47} got "
            f"{shown(last) if last else '(nothing)'}"
        )
        if not good:
            ok = False
            reason = f"the last layer should be {describe(final)} but is {shown(last) if last else 'missing'}"
    return ok, reason, diff


@check("spec", timeout=60, validate=_validate, self_reported=True)
def run(item: Item, ctx: Context) -> Outcome:
    task = ctx.task(item.task)
    source = ctx.model(task.id)
    facts = ask(
        ctx,
        source,
        f"running {task.model} on a probe input",
        "layers",
        item.timeout,
        task=task.id,
        input_shape=task.input_shape,
    )
    executed = facts.get("executed")
    if not isinstance(executed, list):
        raise CheckFailed("the worker returned no layer list")
    ok, reason, diff = compare(
        executed, item.options["layers"], item.options["between"], item.options.get("final")
    )
    listing = [f"{k + 1:>3}. {shown(g):<70} -> {g.get('output_shape')}" for k, g in enumerate(executed)]
    details = "\n".join(
        [
            "Comparison with the required stack:",
            *diff,
            "",
            f"Layers of {task.model} in execution order:",
            *listing,
        ]
    )
    unused = facts.get("unused") or []
    if unused:
        details += "\nDefined but never run: " + ", ".join(u["name"] for u in unused)
    data = {
        "layers": [
            {
                "type": g["type"],
                "name": g.get("name"),
                "attrs": g.get("attrs", {}),
                "params": g.get("params", 0),
                "output_shape": g.get("output_shape"),
            }
            for g in executed
        ],
        "expected": item.options["layers"],
        "defined_in": source.label,
        "unused": [str(u.get("name")) for u in unused if isinstance(u, dict)],
    }
    if ok:
        return Outcome(
            True,
            f"{task.model} ({source.label}) has the required "
            f"{len(item.options['layers'])}-layer stack in order",
            details,
            data,
        )
    return Outcome(False, f"{task.model} ({source.label}): {reason}", details, data)
