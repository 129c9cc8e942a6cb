"""``claims``: does the notebook's printed test accuracy match what the grader measured?

The accuracy item (run earlier) scores the submitted checkpoint on the
hidden split; this check compares the notebook's own claim with that number
(and the claimed best/worst class with the measured ones). A gap within the
rubric's ``tolerance`` passes; a gap above ``flag`` also sets
``data["flag"]``, which the report and batch summaries show the TA: claimed
numbers that the weights cannot reproduce are worth a look.
"""

from __future__ import annotations

from typing import Any

from ..notebook.claims import Claim
from ..result import CheckFailed, ItemResult, Outcome
from ..rubric import Item
from .context import Context
from .notebook import cell_list, facts
from .registry import Part, Place, allowed, check, hook


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("claims", {"accuracy_item", "tolerance", "flag", "classes", "cell", "required"}, options)
    for key, default in (("tolerance", 0.02), ("flag", 0.05)):
        value = options.setdefault(key, default)
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"claims: {key} must be a fraction between 0 and 1 (0.02 = 2 points)")
    if options["flag"] < options["tolerance"]:
        raise ValueError("claims: flag must be at least tolerance")
    for key in ("classes", "required"):
        if not isinstance(options.setdefault(key, True), bool):
            raise ValueError(f"claims: {key} must be true or false")
    if "cell" in options and (not isinstance(options["cell"], int) or options["cell"] < 1):
        raise ValueError("claims: cell must be a cell number (1 = the first cell)")
    if "accuracy_item" in options and not isinstance(options["accuracy_item"], str):
        raise ValueError("claims: accuracy_item must be an item id")
    return options


def _pick(item: Item, ctx: Context, claims: list[Claim]) -> tuple[Claim | None, str]:
    """The claim for this item's task and how it was chosen."""
    task = item.task
    if "cell" in item.options:
        here = [c for c in claims if c.cell == item.options["cell"]]
        return (here[-1], f"cell {item.options['cell']}, as the rubric says") if here else (None, "")
    mine = [c for c in claims if c.owner == task]
    if mine:
        model = ctx.models.task(task, sized=False).model
        return mine[-1], f"the last test-accuracy print after code using {model}"
    loose = [c for c in claims if c.owner is None or len(ctx.rubric.tasks) == 1]
    if len(loose) == 1 or (loose and len(ctx.rubric.tasks) == 1):
        return loose[-1], "the only test-accuracy print not tied to another model"
    return None, ""


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _class_verdicts(
    mine: dict[str, Any], measured: dict[str, Any], tolerance: float
) -> tuple[list[str], dict[str, Any]]:
    """Mismatches of the claimed best/worst class, and the comparison for the report."""
    per_class = {k: v for k, v in (measured.get("per_class") or {}).items() if v is not None}
    problems, data = [], {}
    if not per_class:
        return problems, data
    for kind, pick in (("best_class", max), ("worst_class", min)):
        claim: Claim | None = mine[kind]
        if claim is None:
            continue
        truth = pick(per_class, key=per_class.get)
        value = per_class.get(claim.value)
        ok = claim.value == truth or (value is not None and abs(value - per_class[truth]) <= tolerance)
        data[kind] = {"claimed": claim.value, "measured": truth, "cell": claim.cell, "agrees": ok}
        if not ok:
            word = "best" if kind == "best_class" else "worst"
            shown = f"{_pct(value)}" if value is not None else "not measured"
            problems.append(
                f"cell {claim.cell} names {claim.value} as the {word} class, but the measured {word} is "
                f"{truth} ({_pct(per_class[truth])}; {claim.value}: {shown})"
            )
    table = mine["per_class"]
    if table:
        data["per_class"] = {
            name: {"claimed": c.value, "measured": per_class.get(name)} for name, c in table.items()
        }
        gaps = [abs(c.value - per_class[n]) for n, c in table.items() if n in per_class]
        data["per_class_max_gap"] = round(max(gaps), 4) if gaps else None
    return problems, data


@check(
    "claims",
    timeout=30,
    validate=_validate,
    visibility="after_due_date",
    hidden=True,
    measured=(
        "per_class",
        "best_class",
        "worst_class",
        "claimed",
        "claimed_cell",
        "measured",
        "gap",
        "measured_by",
    ),
)
def run(item: Item, ctx: Context) -> Outcome:
    task = ctx.models.task(item.task, sized=False)  # its names: nothing is built
    found = facts(ctx)
    claim, how = _pick(item, ctx, found.claims.test_accuracy)
    mine = found.claims.for_task(task.id)
    source = item.options.get("accuracy_item") or f"{task.id}.accuracy"
    measured_item = ctx.results.get(source)
    if claim is None:
        seen = found.claims.test_accuracy
        listing = (
            f" (found prints in {cell_list(sorted({c.cell for c in seen}))}, none after code using "
            f"{task.model})"
            if seen
            else ""
        )
        if not item.options["required"]:
            return Outcome(True, f"{found.name} claims no test accuracy for {task.model}{listing}")
        raise CheckFailed(
            f"no test-accuracy print for {task.model} in {found.name}{listing}; print it after "
            f"evaluating, e.g. print(f'Test Accuracy: {{acc:.2%}}')"
        )
    data: dict[str, Any] = {
        "claimed": claim.value,
        "claimed_cell": claim.cell,
        "claimed_line": claim.line[:200],
    }
    if measured_item is None or not isinstance(measured_item.data.get("accuracy"), (int, float)):
        why = (
            f": {measured_item.message}"
            if measured_item is not None
            else " (no such item ran before this one)"
        )
        raise CheckFailed(
            f"{found.name} claims {_pct(claim.value)} (cell {claim.cell}), but {source} measured nothing to "
            f"compare with{why}",
            **data,
        )
    measured = float(measured_item.data["accuracy"])
    gap = claim.value - measured
    tolerance, flag_at = item.options["tolerance"], item.options["flag"]
    data.update(measured=measured, gap=round(gap, 4), tolerance=tolerance, measured_by=source)
    problems, class_data = (
        _class_verdicts(mine, measured_item.data, tolerance) if item.options["classes"] else ([], {})
    )
    data.update(class_data)
    line = (
        f"{found.name} cell {claim.cell} claims {_pct(claim.value)}; the submitted weights score "
        f"{_pct(measured)} on the hidden test split"
    )
    details = [
        f"claim: {claim.line[:200]!r} ({how})",
        f"measured by {source}: {_pct(measured)}",
        f"gap: {gap * 100:+.2f} points (tolerance ±{tolerance * 100:g}, flagged above {flag_at * 100:g})",
        *problems,
    ]
    if abs(gap) > flag_at:
        direction = "above" if gap > 0 else "below"
        data["flag"] = (
            f"{task.model}: the notebook claims {_pct(claim.value)}, {abs(gap) * 100:.1f} points {direction} "
            f"the measured {_pct(measured)}"
        )
    if abs(gap) > tolerance:
        return Outcome(
            False,
            f"{line}: {abs(gap) * 100:.1f} points apart, more than the ±{tolerance * 100:g} allowed"
            + ("; flagged for the TA" if "flag" in data else ""),
            "\n".join(details),
            data,
        )
    if problems:
        return Outcome(False, f"{line}, but {problems[0]}", "\n".join(details), data)
    return Outcome(True, f"{line}: within ±{tolerance * 100:g} points", "\n".join(details), data)


@hook("claims", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """Claimed against measured, row by row as the check compared them (or why it could not)."""
    return [Part("claims", item, order=10)]
