"""``counts``: parameters, thop MACs and FLOPs against the reference.

MACs come from ultralytics-thop (pinned), so they equal what students print
with ``thop.profile``; FLOPs from ``torch.utils.flop_counter.FlopCounterMode``
(2 x multiply-adds, functional ops included). With ``must_match = false`` the
numbers are reported and compared but never fail (labs that allow variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..result import ItemResult, Outcome
from ..rubric import Item
from .common import ask_model
from .context import Context
from .registry import Part, Place, allowed, check, hook


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("counts", {"params", "macs", "flops", "must_match", "reference", "labels"}, options)
    for key in ("params", "macs", "flops"):
        value = options.get(key, [])
        if isinstance(value, int):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise ValueError(f"counts: {key} must be an integer or a list of accepted integers")
        options[key] = value
    options.setdefault("must_match", True)
    return options


@check(
    "counts",
    timeout=120,
    validate=_validate,
    self_reported=True,
    measured=("params", "trainable_params", "macs", "flops", "reference"),
)
def run(item: Item, ctx: Context) -> Outcome:
    task, source, got = ask_model(item, ctx, "counts", "counting {model}")
    labels = item.options.get("labels", {})
    rows, wrong, matches = [], [], {}
    bias_note = _bias_before_norm(got, item.options["params"])
    for key in ("params", "macs", "flops"):
        value, accepted = got.get(key), item.options[key]
        expected = " or ".join(f"{v:,}" for v in accepted) if accepted else "—"
        good = not accepted or value in accepted or (key == "params" and bias_note is not None)
        matches[key] = good if accepted else None
        name = labels.get(str(value), "") if value is not None else ""
        rows.append(
            f"{'  ' if good else '✗ '}{key:<7} {value if value is None else f'{value:,}':>15}"
            f"   reference {expected}{'  (' + name + ')' if name else ''}"
        )
        if not good:
            wrong.append(
                f"{key} {value:,} (reference {expected})"
                if value is not None
                else f"{key} could not be counted"
            )
    if bias_note:
        rows.append(bias_note)
    if got.get("macs_error"):
        rows.append(f"thop could not profile the model: {got['macs_error']}")
    data = {k: got.get(k) for k in ("params", "trainable_params", "macs", "flops")}
    data["reference"] = {k: item.options[k] for k in ("params", "macs", "flops")}
    data["matches"] = matches
    if bias_note:
        data["note"] = bias_note
    details = "\n".join(rows)
    summary = (
        f"params {got.get('params', 0):,}, thop MACs {got['macs']:,}"
        if got.get("macs") is not None
        else f"params {got.get('params', 0):,}"
    )
    if wrong and item.options["must_match"]:
        return Outcome(False, f"{task.model}: {'; '.join(wrong)}", details, data)
    has_reference = any(item.options[k] for k in ("params", "macs", "flops"))
    suffix = (
        "; differs from the reference (reported only)"
        if wrong
        else (", as the reference" if has_reference else " (reported)")
    )
    if bias_note and not wrong:
        suffix += f" ({bias_note})"
    return Outcome(True, f"{task.model}: {summary}{suffix}", details, data)


def _bias_before_norm(got: dict[str, Any], accepted: list[int]) -> str | None:
    """Why a parameter count off the reference is still the reference's network: the only
    difference is the bias of layers that feed a BatchNorm (redundant there, so
    ``nn.Conv2d(..., bias=True)`` before ``nn.BatchNorm2d`` is the same model as the
    reference's ``bias=False``, and the other way round). None when that does not explain it."""
    params, found = got.get("params"), got.get("bias_before_norm") or {}
    if not accepted or params is None or params in accepted or not found.get("layers"):
        return None
    present, absent = found.get("present", 0), found.get("absent", 0)
    if present and params - present in accepted:
        return (
            f"{params - present:,} without the {present:,} bias values of layers that feed a "
            "BatchNorm (redundant there: the reference uses bias=False)"
        )
    if absent and params + absent in accepted:
        return (
            f"{params + absent:,} with a bias on the layers that feed a BatchNorm, as the "
            "reference has (redundant there: bias=False is the same network)"
        )
    return None


# --- what the kind contributes beyond its verdict (registry hooks) ----------------------


@dataclass
class CountRow:
    what: str
    value: int | None
    reference: str
    ok: bool | None  # None: no reference to compare with


@hook("counts", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """The counts against the reference, as the check compared them."""
    data = item.data
    if data.get("params") is None:
        return []
    reference, matches = data.get("reference") or {}, data.get("matches") or {}
    rows = []
    for key, label in (("params", "parameters"), ("macs", "MACs (thop)"), ("flops", "FLOPs")):
        accepted = reference.get(key) or []
        rows.append(
            CountRow(
                label,
                data.get(key),
                " or ".join(f"{v:,}" for v in accepted) if accepted else "—",
                matches.get(key),
            )
        )
    return [Part("counts", rows, order=50)]


@hook("counts", "leaderboard")
def leaderboard(item: ItemResult) -> list[dict[str, Any]]:
    if not item.data.get("params"):
        return []
    return [{"name": f"{item.name} params", "value": item.data["params"], "order": "asc"}]
