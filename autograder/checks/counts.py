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
    rows, wrong = [], []
    for key in ("params", "macs", "flops"):
        value, accepted = got.get(key), item.options[key]
        expected = " or ".join(f"{v:,}" for v in accepted) if accepted else "—"
        good = not accepted or value in accepted
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
    if got.get("macs_error"):
        rows.append(f"thop could not profile the model: {got['macs_error']}")
    data = {k: got.get(k) for k in ("params", "trainable_params", "macs", "flops")}
    data["reference"] = {k: item.options[k] for k in ("params", "macs", "flops")}
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
    return Outcome(True, f"{task.model}: {summary}{suffix}", details, data)


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
    reference = data.get("reference") or {}
    rows = []
    for key, label in (("params", "parameters"), ("macs", "MACs (thop)"), ("flops", "FLOPs")):
        value, accepted = data.get(key), reference.get(key) or []
        rows.append(
            CountRow(
                label,
                value,
                " or ".join(f"{v:,}" for v in accepted) if accepted else "—",
                value in accepted if accepted else None,
            )
        )
    return [Part("counts", rows, order=50)]


@hook("counts", "leaderboard")
def leaderboard(item: ItemResult) -> list[dict[str, Any]]:
    if not item.data.get("params"):
        return []
    return [{"name": f"{item.name} params", "value": item.data["params"], "order": "asc"}]
