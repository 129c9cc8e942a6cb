"""``residual``: the model still has skip connections (UW Lab 7 lets students
change channels, kernel sizes, strides and padding, but not that), and, with
``orders``, each block computes its steps in an accepted order (``ORDERS``:
the handout's basic block, pre-activation, bottleneck; ``block`` uses the
same names for a single block).

Found structurally in the forward pass of a probe input (see
``sandbox/worker/structure.py``): an addition whose operands come from one
tensor, one through the block's convolutions, the other directly (identity
shortcut) or through a single convolution (projection shortcut).
"""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from .common import ask_model
from .context import Context
from .registry import allowed, check

# The orders of operations a residual block may have, by name: the steps on the path
# the input takes to the addition, then the steps applied to the sum. "conv" is any
# kernel size, "conv1x1" only a 1x1 convolution.
ORDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "basic": (("conv", "BN", "ReLU", "conv", "BN"), ("ReLU",)),
    "pre-activation": (("BN", "ReLU", "conv", "BN", "ReLU", "conv"), ()),
    "bottleneck": (("conv1x1", "BN", "ReLU", "conv", "BN", "ReLU", "conv1x1", "BN"), ("ReLU",)),
}


def _fits(pattern: tuple[str, ...], steps: list[str]) -> bool:
    if len(pattern) != len(steps):
        return False
    pairs = zip(pattern, steps, strict=True)
    return all(step == want or (want == "conv" and step.startswith("conv")) for want, step in pairs)


def describe_order(main: list[str], after: list[str]) -> str:
    """'conv3x3-BN-ReLU-conv3x3-BN, add the input, ReLU'."""
    return "-".join(main or ["nothing"]) + ", add the input" + (", " + "-".join(after) if after else "")


def order_name(main: list[str], after: list[str], accepted: list[str]) -> str | None:
    """Which accepted order a skip's main path and what follows the sum match (None: none)."""
    return next((n for n in accepted if _fits(ORDERS[n][0], main) and _fits(ORDERS[n][1], after)), None)


def order_problem(main: list[str], after: list[str], accepted: list[str]) -> str:
    """What differs from the first accepted order (the handout's), in a student's words."""
    want_main, want_after = ORDERS[accepted[0]]
    hint = ""
    if main[-1:] == ["ReLU"] and _fits(want_main, main[:-1]) and not after:
        hint = " (the ReLU belongs after the addition, not before it)"
    elif _fits(want_main, main) and not after and want_after:
        hint = " (no ReLU after the addition)"
    shown = {n: describe_order(list(ORDERS[n][0]), list(ORDERS[n][1])) for n in accepted}
    also = "; also accepted: " + "; ".join(f"{n}: {shown[n]}" for n in accepted[1:]) if accepted[1:] else ""
    return (
        f"computes {describe_order(main, after)}{hint}; the {accepted[0]} block is {shown[accepted[0]]}{also}"
    )


def validate_orders(kind: str, options: dict[str, Any]) -> None:
    orders = options.get("orders")
    if orders is None:
        return
    if not isinstance(orders, list) or not orders or not all(o in ORDERS for o in orders):
        raise ValueError(f"{kind}: orders must list some of {', '.join(ORDERS)} (the handout's first)")


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("residual", {"min_skips", "projections", "orders"}, options)
    validate_orders("residual", options)
    options.setdefault("min_skips", 1)
    for key in ("min_skips", "projections"):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"residual: {key} must be a whole number >= 0")
    return options


@check("residual", timeout=60, validate=_validate, self_reported=True)
def run(item: Item, ctx: Context) -> Outcome:
    task, source, facts = ask_model(item, ctx, "residual", "tracing {model}'s forward pass")
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
    orders = item.options.get("orders")
    if orders:
        names = [order_name(s.get("order") or [], s.get("after") or [], orders) for s in found]
        data["orders"] = names
        wrong = [(k, s) for k, (s, n) in enumerate(zip(found, names, strict=True)) if n is None]
        lines += [f"skip {k + 1}: {describe_order(s['order'], s['after'])}" for k, s in enumerate(found)]
        if wrong:
            k, skip = wrong[0]
            more = f" (and {len(wrong) - 1} more blocks)" if len(wrong) > 1 else ""
            problem = order_problem(skip["order"], skip["after"], orders)
            return Outcome(
                False,
                f"{task.model}: the block of skip {k + 1} {problem}{more}",
                "\n".join(lines),
                data,
            )
        summary += f", blocks in the {' / '.join(sorted(set(names)))} order"
    return Outcome(True, f"{task.model} is residual: {summary}", "\n".join(lines), data)
