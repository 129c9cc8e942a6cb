"""``spec``: the required layers, in the order the forward pass runs them.

Execution order (recorded with hooks, functional calls such as ``F.relu``
included) is what matters, not the order of ``__init__``. Layer types listed
in ``between`` (pooling, dropout, flatten) may sit between required layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..result import CheckFailed, ItemResult, Outcome
from ..rubric import Item, Task
from ..sandbox import SandboxError, WorkerFailure
from .common import ask
from .context import Context
from .limits import MODULES_TIMEOUT
from .registry import Part, Place, allowed, check, hook

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
ALWAYS_SKIPPED = {"Identity"}  # does nothing, whatever the rubric's ``between`` says
# what may follow the final layer: the logits stay logits (LogSoftmax goes with nn.NLLLoss)
AFTER_FINAL = {"LogSoftmax", "Identity", "Flatten", "Dropout"}
GLOBAL_POOLS = {"AdaptiveAvgPool2d": "AvgPool2d", "AdaptiveMaxPool2d": "MaxPool2d"}


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
        return _same_global_pool(want, got)
    attrs = got.get("attrs", {})
    return all(_short(attrs.get(k)) == _short(v) for k, v in want.items() if k != "type")


def _same_global_pool(want: dict[str, Any], got: dict[str, Any]) -> bool:
    """``AdaptiveAvgPool2d(1)`` and ``AvgPool2d(8)`` on an 8x8 map are one layer: both average
    each channel to one value. Judged on the shapes the probe saw."""
    pair = {want["type"], got["type"]}
    if not any(pair == {a, b} for a, b in GLOBAL_POOLS.items()):
        return False
    shape_in, shape_out = got.get("input_shape") or [], got.get("output_shape") or []
    if len(shape_in) != 4 or shape_out[2:] != [1, 1]:
        return False
    if want["type"] in GLOBAL_POOLS:
        return set(want) <= {"type", "output_size"} and _short(want.get("output_size", 1)) in (1, [1, 1])
    return set(want) <= {"type", "kernel_size"} and _short(want.get("kernel_size")) in (
        _short(shape_in[2:]),
        None,
    )


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
) -> tuple[bool, str, list[str], list[dict[str, Any]]]:
    """(passed, one-line reason, diff lines, alignment). The alignment is the decision
    itself, one row per required layer (and the final layer): what was required, the
    executed layer it was paired with (its index, or None) and whether it matches.
    The report shows these rows; it never pairs layers again."""
    significant = [k for k, g in enumerate(executed) if g["type"] not in {*between, *ALWAYS_SKIPPED}]
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
    diff, alignment = [], []
    ok = best_len == len(layers)
    for n, want in enumerate(layers):
        pos = (best_start or 0) + n
        index = significant[pos] if pos < len(significant) else None
        got = executed[index] if index is not None else None
        good = got is not None and matches(want, got)
        mark = "  " if good else "✗ "
        diff.append(f"{mark}expected {describe(want):<60} got {shown(got) if got else '(nothing)'}")
        alignment.append(_row(describe(want), got, index, good))
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
        index = next((k for k in range(len(executed) - 1, -1, -1) if executed[k] is last), None)
        alignment.append(_row(f"final layer: {describe(final)}", last, index, good))
        diff.append(
            f"{'  ' if good else '✗ '}final layer: expected {describe(final):<47} got "
            f"{shown(last) if last else '(nothing)'}"
        )
        if not good:
            ok = False
            reason = f"the last layer should be {describe(final)} but is {shown(last) if last else 'missing'}"
        after = [g for g in executed[(index if index is not None else len(executed)) + 1 :]]
        extra = next((g for g in after if g["type"] not in AFTER_FINAL), None)
        if ok and extra:
            ok = False
            reason = (
                f"forward applies {extra['type']} after the last layer {shown(last)}: return the raw "
                "logits (nn.CrossEntropyLoss applies softmax itself; LogSoftmax is only for nn.NLLLoss)"
            )
    mistake = _layer_mistake(executed)
    if mistake:
        ok, reason = False, mistake
    return ok, reason, diff, alignment


def _layer_mistake(executed: list[dict[str, Any]]) -> str:
    """Layers that run but are written wrong whatever the stack: a layer whose weights the
    model does not hold (built in forward: new random weights on every call, never trained or
    saved) and ``F.dropout`` left on in eval mode (its ``training`` defaults to True)."""
    for g in executed:
        if g.get("created_in_forward"):
            return (
                f"{shown(g).removesuffix(' [functional]')} is not a layer of the model (built inside "
                "forward or kept in a plain list): its weights are new on every call and never "
                "trained or saved; create it in __init__ as self.<name> (nn.ModuleList for a list)"
            )
        if g.get("functional") and g["type"].startswith("Dropout") and g.get("attrs", {}).get("training"):
            return (
                f"F.{g['type'].lower()} still drops values in eval mode, so predictions are random: "
                "pass training=self.training (or use nn.Dropout)"
            )
    return ""


def _row(required: str, got: dict[str, Any] | None, index: int | None, ok: bool) -> dict[str, Any]:
    return {"required": required, "found": shown(got) if got else None, "layer": index, "ok": ok}


def _probe(item: Item, ctx: Context, task: Task) -> dict[str, Any]:
    return ask(
        ctx,
        ctx.models.build(task.id),
        f"running {task.model} on a probe input",
        "layers",
        item.timeout,
        task=task.id,
        input_shape=task.input_shape,
    )


@check("spec", timeout=60, validate=_validate, self_reported=True, measured=("output_shape", "defined_in"))
def run(item: Item, ctx: Context) -> Outcome:
    """The stack is judged apart from the input size: a model written for another
    size (AlexNet for 227x227) is probed at that size, and the message says so."""
    source = ctx.models.build(item.task)
    try:
        task = ctx.models.task(item.task)
        facts = _probe(item, ctx, task)
    except CheckFailed as failure:
        if failure.data.get("stopped"):  # a hang or a crash is not about the input size
            raise
        cnn = _not_a_cnn(item, ctx)
        if cnn:
            return cnn
        task = ctx.models.other_size(item.task, failure)
        facts = _probe(item, ctx, task)
    executed = facts.get("executed")
    if not isinstance(executed, list):
        raise CheckFailed("the worker returned no layer list")
    declared = [g["type"] for g in executed] + [u.get("type") for u in facts.get("unused") or []]
    if _wants_conv(item) and "Conv2d" not in declared:
        return _mlp(task, source, declared, facts.get("output_shape"))
    ok, reason, diff, alignment = compare(
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
                "shown": shown(g),
                "name": g.get("name"),
                "attrs": g.get("attrs", {}),
                "params": g.get("params", 0),
                "output_shape": g.get("output_shape"),
            }
            for g in executed
        ],
        "expected": item.options["layers"],
        "alignment": alignment,
        "defined_in": source.label,
        "unused": [str(u.get("name")) for u in unused if isinstance(u, dict)],
    }
    size = f" ({task.size_note})" if task.size_note else ""
    if task.size_note:
        data["judged_at"] = task.input_shape
    if ok:
        layers = item.options["layers"]
        what = (
            f"runs {describe(layers[0])}"
            if len(layers) == 1
            else f"has the required {len(layers)}-layer stack in order"
        )
        final = item.options.get("final")
        ends = f" and ends in {describe(final)}" if final else ""
        return Outcome(True, f"{task.model} ({source.label}) {what}{ends}{size}", details, data)
    return Outcome(False, f"{task.model} ({source.label}): {reason}{size}", details, data)


def _wants_conv(item: Item) -> bool:
    return any(layer["type"] == "Conv2d" for layer in item.options["layers"])


def _mlp(task: Task, source: Any, declared: list[str], output: Any) -> Outcome:
    kinds = ", ".join(dict.fromkeys(t for t in declared if t))
    return Outcome(
        False,
        f"{task.model} ({source.label}) is not a CNN (no convolution layer): "
        f"it has only {kinds or 'no layers'}",
        f"layer types: {kinds}",
        {"layer_types": list(dict.fromkeys(declared)), "output_shape": output},
    )


def _not_a_cnn(item: Item, ctx: Context) -> Outcome | None:
    """When the probe crashes: a model with no convolution at all is told that,
    not the shape error an MLP gives on image input."""
    if not _wants_conv(item):
        return None
    try:
        declared = ctx.sandbox.request("modules", MODULES_TIMEOUT, task=item.task)["types"]
    except (WorkerFailure, SandboxError, KeyError, TypeError):
        return None
    if "Conv2d" in declared:
        return None
    return _mlp(ctx.models.task(item.task, sized=False), ctx.models.build(item.task), declared, None)


# --- what the kind contributes beyond its verdict (registry hooks) ----------------------


@dataclass
class LayerRow:
    number: int
    layer: str
    name: str
    output_shape: str
    params: int
    required: str  # the required layer this one matched, or ""
    ok: bool | None  # None: not part of the required stack


@dataclass
class Layers:
    rows: list[LayerRow]
    expected: list[tuple[str, str, bool]]  # (required, found, matches)
    total_params: int


@hook("spec", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """The check's own decisions (``data["alignment"]``), shown as they were made."""
    executed, alignment = item.data.get("layers"), item.data.get("alignment")
    if not isinstance(executed, list):
        return []
    pairs, required = [], {}
    for row in alignment if isinstance(alignment, list) else []:
        pairs.append((str(row.get("required")), row.get("found") or "(nothing)", bool(row.get("ok"))))
        if isinstance(row.get("layer"), int) and not str(row.get("required")).startswith("final layer"):
            required[row["layer"]] = (str(row.get("required")), bool(row.get("ok")))
    rows = [
        LayerRow(
            k + 1,
            str(g.get("shown") or g.get("type")),
            str(g.get("name") or ""),
            "×".join(str(d) for d in g.get("output_shape") or []) or "—",
            int(g.get("params") or 0),
            required.get(k, ("", None))[0],
            required.get(k, ("", None))[1],
        )
        for k, g in enumerate(executed)
    ]
    return [Part("layers", Layers(rows, pairs, sum(r.params for r in rows)), order=60)]
