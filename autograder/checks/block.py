"""``block``: a building block the lecture names (``vgg_block``, ``Inception``,
``Residual``) as the student wrote it: its signature, what it builds for
probe arguments, and how that behaves on a probe input.

Each probe calls the block with the rubric's arguments and may pin the
output shape (per sample), the parameter count (the reference's, pinned by
tests), leaf-layer counts, the shortcuts of its skip connections and the
number of branches concatenated at its output.
"""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from . import residual
from .common import ask, fmt_shape
from .context import Context
from .registry import allowed, check

PROBE_KEYS = {"args", "kwargs", "input", "output", "params", "layers", "skips", "branches"}
PINNED_BY_REFERENCE = ("params", "layers")  # the handout's block: not compared for another order
SHORTCUTS = ("identity", "projection")


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("block", {"block", "signature", "probes", "orders"}, options)
    residual.validate_orders("block", options)
    if not isinstance(options.get("block"), str):
        raise ValueError('block needs block = "name of the function or class"')
    signature = options.setdefault("signature", [])
    if not isinstance(signature, list) or not all(isinstance(s, str) for s in signature):
        raise ValueError('block: signature must be a list of parameter names, e.g. ["num_convs", ...]')
    probes = options.get("probes")
    if not isinstance(probes, list) or not probes:
        raise ValueError("block needs probes = [{args = [...], input = [C, H, W], output = [...]}, ...]")
    for n, probe in enumerate(probes, start=1):
        if not isinstance(probe, dict):
            raise ValueError(f"block: probe {n} must be a table")
        unknown = set(probe) - PROBE_KEYS
        if unknown:
            raise ValueError(f"block: probe {n} has no key {', '.join(sorted(unknown))}")
        probe.setdefault("args", [])
        probe.setdefault("kwargs", {})
        if not isinstance(probe["args"], list) or not isinstance(probe["kwargs"], dict):
            raise ValueError(f"block: probe {n}: args must be a list and kwargs a table")
        for key in ("input", "output"):
            shape = probe.get(key)
            if (key == "input" or shape is not None) and not (
                isinstance(shape, list) and shape and all(isinstance(v, int) and v > 0 for v in shape)
            ):
                raise ValueError(f"block: probe {n}: {key} must be a shape like [3, 32, 32] (no batch)")
        if "params" in probe and not isinstance(probe["params"], int):
            raise ValueError(f"block: probe {n}: params must be an integer")
        if "layers" in probe and not (
            isinstance(probe["layers"], dict) and all(isinstance(v, int) for v in probe["layers"].values())
        ):
            raise ValueError(f"block: probe {n}: layers must be a table like {{Conv2d = 2, ReLU = 2}}")
        if "skips" in probe and not (
            isinstance(probe["skips"], list) and all(s in SHORTCUTS for s in probe["skips"])
        ):
            raise ValueError(f'block: probe {n}: skips must list "identity" / "projection" shortcuts')
        if "branches" in probe and not isinstance(probe["branches"], int):
            raise ValueError(f"block: probe {n}: branches must be an integer")
    return options


def _signature_problem(got: list[str] | None, required: int | None, want: list[str]) -> str | None:
    if not want or got is None:
        return None
    shown = f"({', '.join(got)})"
    if len(got) < len(want) or (required is not None and required > len(want)):
        return f"takes {shown}; expected ({', '.join(want)})"
    return None


def _left_out(got: list[str] | None, want: list[str]) -> list[str]:
    """The lecture's parameters a block leaves out while taking the others, by name and in
    order (the d2l book's lazy-layer blocks take no input channels: ``vgg_block(num_convs,
    out_channels)``, ``Residual(num_channels, use_1x1conv, strides)``); [] otherwise."""
    if got is None or len(got) >= len(want):
        return []
    rest = iter(want)
    if not all(name in rest for name in got):  # ``in`` consumes ``rest``: a subsequence test
        return []
    return [name for name in want if name not in got]


def _without(probes: list[dict[str, Any]], positions: list[int]) -> list[dict[str, Any]]:
    """The probe calls with the arguments at ``positions`` left out."""
    return [{**p, "args": [a for k, a in enumerate(p["args"]) if k not in positions]} for p in probes]


def _order(orders: list[str] | None, got: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The residual order the probe's block has (by name), or what differs from the handout's."""
    if not orders or "error" in got:
        return None, []
    names, wrong = [], []
    for skip in got.get("orders") or []:
        name = residual.order_name(skip["main"], skip["after"], orders)
        if name is None:
            wrong.append(residual.order_problem(skip["main"], skip["after"], orders))
        names.append(name)
    found = next((n for n in names if n), None)
    return found, wrong


def _compare(probe: dict[str, Any], got: dict[str, Any], variant: str | None = None) -> list[str]:
    """What differs between the probe's expectations and the worker's facts.

    ``variant``: an accepted residual order other than the handout's; the reference's
    parameter and layer counts are then not compared."""
    if "error" in got:
        return [got["error"]]
    if variant:
        probe = {k: v for k, v in probe.items() if k not in PINNED_BY_REFERENCE}
    wrong = []
    if probe.get("output") and got.get("output_shape") != probe["output"]:
        wrong.append(
            f"maps {fmt_shape(probe['input'])} to {fmt_shape(got.get('output_shape'))}; "
            f"expected {fmt_shape(probe['output'])}"
        )
    layers = got.get("layers") or {}
    for kind, count in (probe.get("layers") or {}).items():
        if layers.get(kind, 0) != count:
            wrong.append(f"builds {layers.get(kind, 0)} {kind}; expected {count}")
    if "skips" in probe and sorted(got.get("skips") or []) != sorted(probe["skips"]):
        have = ", ".join(got.get("skips") or []) or "none"
        want = ", ".join(probe["skips"]) or "none"
        wrong.append(f"its skip connections: {have}; expected {want}")
    if "branches" in probe and got.get("concat_inputs") != probe["branches"]:
        wrong.append(
            f"its output concatenates {got.get('concat_inputs') or 'no'} branches; "
            f"expected {probe['branches']}"
        )
    if "params" in probe and got.get("params") != probe["params"]:  # last: the other facts explain it
        wrong.append(f"has {got.get('params', 0):,} parameters; the reference has {probe['params']:,}")
    return wrong


@check("block", timeout=60, validate=_validate, self_reported=True, measured=("defined_in",))
def run(item: Item, ctx: Context) -> Outcome:
    name = item.options["block"]
    source = ctx.models.defining(item.task, name)
    probes = [{"args": p["args"], "kwargs": p["kwargs"], "input": p["input"]} for p in item.options["probes"]]

    def probed(calls: list[dict[str, Any]]) -> dict[str, Any]:
        return ask(
            ctx,
            source,
            f"probing {name}",
            "block",
            item.timeout,
            module=source.module,
            name=name,
            probes=calls,
        )

    facts = probed(probes)
    problems: list[str] = []
    lines: list[str] = []
    signature, want = facts.get("signature"), item.options["signature"]
    left_out = _left_out(signature, want)
    if left_out:  # probed again without them: what it builds decides
        positions = [want.index(n) for n in left_out]
        facts = probed(_without(probes, positions))
        lines.append(
            f"note: {name} takes ({', '.join(signature or [])}), without {', '.join(left_out)} "
            "(the d2l book's lazy-layer style): probed without "
            f"{'it' if len(left_out) == 1 else 'them'}"
        )
    sig_problem = None if left_out else _signature_problem(signature, facts.get("required"), want)
    if sig_problem:
        problems.append(f"{name} {sig_problem}")
    elif (
        signature is not None
        and not left_out
        and item.options["signature"]
        and signature[: len(item.options["signature"])] != item.options["signature"]
    ):
        lines.append(
            f"note: {name} names its parameters ({', '.join(signature)}); the lecture uses "
            f"({', '.join(item.options['signature'])})"
        )
    data: dict[str, Any] = {"defined_in": source.label, "signature": signature, "probes": []}
    orders = item.options.get("orders")
    variants: list[str] = []
    for probe, got in zip(item.options["probes"], facts.get("probes") or [], strict=False):
        variant, wrong = _order(orders, got)
        if variant:
            variants.append(variant)
        wrong += _compare(probe, got, variant if orders and variant != orders[0] else None)
        where = f" ({source.where(got['line'])})" if got.get("line") else ""
        facts_line = (
            f"-> {fmt_shape(got.get('output_shape'))}, {got.get('params', 0):,} parameters"
            + (f", skips: {', '.join(got['skips'])}" if got.get("skips") else "")
            + (f", {got['concat_inputs']} branches concatenated" if got.get("concat_inputs") else "")
            if "error" not in got
            else "failed"
        )
        lines.append(
            f"{'  ' if not wrong else '✗ '}{got.get('call')} on {fmt_shape(probe['input'])} {facts_line}"
        )
        lines += [f"    ✗ {w}" for w in wrong]
        problems += [f"{got.get('call')} {w}{where}" for w in wrong]
        data["probes"].append(
            {k: got.get(k) for k in ("call", "output_shape", "params", "skips", "error")} | {"order": variant}
        )
    if len(facts.get("probes") or []) < len(item.options["probes"]):
        problems.append("the worker answered fewer probes than asked")
    named = sorted(set(variants))
    if orders and named:
        data["order"] = named[0] if len(named) == 1 else named
        lines.append(f"order of operations: {', '.join(named)} ({residual.describe_order(*_first(facts))})")
        if named != [orders[0]]:
            lines.append(
                f"note: parameter and layer counts are the {orders[0]} reference's; not compared "
                f"for the {', '.join(n for n in named if n != orders[0])} order"
            )
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Outcome(False, f"{problems[0]}{more}", "\n".join(lines), data)
    order = f", in the {' / '.join(named)} order" if orders and named else ""
    return Outcome(
        True,
        f"{name} ({source.label}) builds what the lecture describes for all "
        f"{len(item.options['probes'])} probe calls{order}",
        "\n".join(lines),
        data,
    )


def _first(facts: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The first skip's steps, for the details line."""
    for got in facts.get("probes") or []:
        for skip in got.get("orders") or []:
            return skip["main"], skip["after"]
    return [], []
