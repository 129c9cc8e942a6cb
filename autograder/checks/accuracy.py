"""``accuracy``: the submitted checkpoint on the hidden test split.

The worker sees the test images in a secret order and never a label; it
returns logits. The grader undoes the order, scores with its own labels and
maps the accuracy to the rubric's tiers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import preprocess
from ..result import CheckFailed, ItemResult, Outcome
from ..rubric import Item, Task, parse_tiers, tier_points
from ..sandbox import Failure, SandboxError, WorkerFailure, failure_line
from .common import ask
from .context import Context, Evaluation
from .context.models import Source
from .limits import LOAD_TIMEOUT
from .registry import Distribution, Part, Place, Shown, allowed, check, hook


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("accuracy", {"tiers", "batch_size"}, options)
    options["tiers"] = parse_tiers(options.get("tiers"))
    return options


def score(
    logits: np.ndarray, order: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix from permuted logits."""
    predicted = np.full(len(labels), -1, dtype=np.int64)
    finite = np.isfinite(logits).all(axis=1)
    predicted[order[finite]] = logits[finite].argmax(axis=1)  # row i answered image order[i]
    correct = predicted == labels
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    valid = predicted >= 0
    np.add.at(confusion, (labels[valid], predicted[valid]), 1)
    per_class = {}
    for c, name in enumerate(classes):
        mask = labels == c
        per_class[name] = float(correct[mask].mean()) if mask.any() else None
    return {
        "accuracy": float(correct.mean()),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "non_finite_rows": int((~finite).sum()),
    }


BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # state, not parameters


def not_the_checked_network(
    layers: list[dict[str, Any]], unused: list[str], checkpoint: tuple[Path, dict[str, list[int]]]
) -> str | None:
    """How the checkpoint differs from the layer stack a structure item reported (None: it agrees).

    The stack comes from the worker, where the student's import-time code could have
    replaced the grader's introspection; the shapes come from a worker that never ran
    student code. Each layer with parameters must own exactly that many in the checkpoint
    under its module name, and every weight matrix or kernel there must belong to a layer
    that ran or was reported as never run (or repeat the shape of one that did)."""
    path, shapes = checkpoint
    claimed = {k for k in shapes if k.rsplit(".", 1)[0] in set(unused)}
    for layer in layers:
        params = layer.get("params")
        if not isinstance(params, int) or not params:
            continue
        name = str(layer.get("name"))
        keys = [k for k in shapes if k.rsplit(".", 1)[0] == name and k.rsplit(".", 1)[-1] not in BUFFERS]
        claimed.update(keys)
        held = sum(math.prod(shapes[k]) for k in keys)
        if held != params:
            return f"it holds {held:,} parameters for the layer {name}, not {params:,}"
    # A module registered under two names (an attribute and a Sequential entry) appears once in the
    # stack and twice in the checkpoint: a second copy of a claimed shape is no other network.
    known = {tuple(shapes[k]) for k in claimed}
    unclaimed = [
        k
        for k, shape in shapes.items()
        if len(shape) >= 2 and k.endswith("weight") and k not in claimed and tuple(shape) not in known
    ]
    if unclaimed:
        few = ", ".join(f"{k} {tuple(shapes[k])}" for k in unclaimed[:3])
        more = f" and {len(unclaimed) - 3} more" if len(unclaimed) > 3 else ""
        return f"it holds weights of layers the checked forward pass never ran: {few}{more}"
    return None


def _passed_stacks(item: Item, ctx: Context) -> list[ItemResult]:
    """This task's layer-stack items that passed (on what the worker reported)."""
    return [
        r
        for r in ctx.results.values()
        if r.kind == "spec"
        and r.passed
        and isinstance(r.data.get("layers"), list)
        and ctx.rubric.item(r.id).task == item.task
    ]


def _checked_elsewhere(
    stacks: list[ItemResult], checkpoint: tuple[Path, list[dict[str, list[int]]]] | None
) -> str | None:
    """The first passed layer-stack item that the scored checkpoint contradicts under every
    reading of its keys (as saved, or with a wrapper's prefix stripped)."""
    if checkpoint is None or not checkpoint[1]:
        return None
    path, options = checkpoint
    for result in stacks:
        layers = [g for g in result.data["layers"] if isinstance(g, dict)]
        unused = [str(u) for u in result.data.get("unused") or []]
        differences = [not_the_checked_network(layers, unused, (path, shapes)) for shapes in options]
        if all(differences):
            return f"{path.name} is not the network {result.id} checked: {differences[0]}"
    return None


def evaluate(
    ctx: Context,
    source: Source,
    task: Task,
    norm: preprocess.Normalization,
    images: str,
    count: int,
    out_name: str,
    batch_size: int,
    timeout: float,
    what: str,
    hidden_inputs: bool,
) -> tuple[np.ndarray, float | None]:
    """The loaded checkpoint's logits on staged images (one row per image, in the
    staged order) and the worker's seconds. ``hidden_inputs``: the images are the
    hidden test split (the student's exception text is then not shown)."""
    answer = ask(
        ctx,
        source,
        what,
        "evaluate",
        timeout,
        hidden_inputs=hidden_inputs,
        task=task.id,
        images=images,
        out_name=out_name,
        mean=list(norm.mean),
        std=list(norm.std),
        resize=task.resize,
        batch_size=batch_size,
        device=ctx.device,
    )
    try:
        logits = ctx.sandbox.read_array(str(answer.get("array")), "float32", (count, task.num_classes))
    except SandboxError as exc:
        raise CheckFailed(exc.message) from None
    return logits, answer.get("seconds")


def per_image(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy loss and correctness of each row against its label; a row
    with NaN/inf logits counts wrong, with an infinite loss."""
    finite = np.isfinite(logits).all(axis=1)
    z = np.where(finite[:, None], logits, 0).astype(np.float64)
    top = z.max(axis=1)
    log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    losses = np.where(finite, log_norm - z[np.arange(len(labels)), labels], np.inf)
    return losses, finite & (z.argmax(axis=1) == labels)


MEASURED = (
    "accuracy",
    "per_class",
    "tier",
    "images",
    "weights",
    "weights_sha256",
    "weights_chosen",
    "normalization",
    "best_class",
    "worst_class",
    "withheld_by",
    "eval_seconds",
)


@check("accuracy", timeout=900, validate=_validate, hidden=True, measured=MEASURED, points=tier_points)
def run(item: Item, ctx: Context) -> Outcome:
    # First, if a layer-stack item passed on what the worker reported: what the checkpoint
    # really holds, read by a fresh worker that never ran student code.
    stacks = _passed_stacks(item, ctx)
    checkpoint = ctx.weights.shapes(item.task) if stacks else None
    task = ctx.models.task(item.task)
    source = ctx.models.build(task.id)
    weights, how = ctx.weights.checkpoint(task.id)
    try:
        loaded = ctx.sandbox.setup(
            "load_weights", LOAD_TIMEOUT, task=task.id, path=ctx.in_sandbox("submission", weights)
        )
    except WorkerFailure as exc:
        flag = {"flag": f"{weights.name} cannot be loaded"} if exc.kind == Failure.WEIGHTS else {}
        raise CheckFailed(_weights_message(weights.name, task.model, exc), **flag) from None
    except SandboxError as exc:
        raise CheckFailed(failure_line(f"loading {weights.name}", exc)) from None
    norm = ctx.preprocessing.normalization(task, loaded.get("normalize"))
    split = ctx.data.split()
    batch_size = int(item.options.get("batch_size", ctx.rubric.eval_batch_size))
    with ctx.data.test_images() as (images_path, order):
        logits, seconds = evaluate(
            ctx, source, task, norm, images_path, len(order), f"logits_{task.id}.npy", batch_size,
            item.timeout, f"evaluating {task.model} on the test split", hidden_inputs=True,
        )  # fmt: skip
    losses, correct = per_image(logits, split.labels[order])
    ctx.evaluations[item.id] = Evaluation(task, source, norm, batch_size, losses, correct, order, seconds)
    measured = score(logits, order, split.labels, split.spec.classes)
    accuracy = measured["accuracy"]
    tier = next((t for t in item.options["tiers"] if t.reached(accuracy)), None)
    points = tier.points if tier else 0.0
    blocked = [r for r in item.requires if r in ctx.results and ctx.results[r].passed is False]
    forged = _checked_elsewhere(stacks, checkpoint)
    data = {
        **measured,
        "tier": tier.label() if tier else None,
        "images": len(order),
        "weights": weights.as_posix(),
        "weights_sha256": ctx.submission.sha256(weights),
        "weights_chosen": how,
        "normalization": norm.as_dict(),
        "eval_seconds": seconds,
        "notes": loaded.get("notes", []),
    }
    ranked = sorted(((v, k) for k, v in measured["per_class"].items() if v is not None))
    lines = [
        f"weights: {weights.as_posix()} ({how})",
        f"normalisation: mean {list(norm.mean)}, std {list(norm.std)} — {norm.source}",
        *([f"note: {norm.twice}"] if norm.twice else []),
        *[f"note: {n}" for n in loaded.get("notes", [])],
        f"test images: {len(order):,}; accuracy {accuracy:.2%}",
        "tiers: " + ", ".join(f"{t.label()} → {t.points:g}" for t in item.options["tiers"]),
        "per-class accuracy: " + ", ".join(f"{k} {v:.1%}" for v, k in reversed(ranked)),
    ]
    if ranked:
        data["best_class"], data["worst_class"] = ranked[-1][1], ranked[0][1]
    if measured["non_finite_rows"]:
        lines.append(f"{measured['non_finite_rows']} images got NaN/inf logits (counted wrong)")
    reached = (
        f"tier {tier.label()}" if tier else f"below the lowest tier ({item.options['tiers'][-1].label()})"
    )
    if forged:
        data["not_the_checked_network"] = forged
        return Outcome(
            False,
            f"{task.model} test accuracy {accuracy:.2%} ({reached}), but no points: {forged}",
            "\n".join(lines),
            data,
            score=0.0,
        )
    if blocked:
        data["withheld_by"] = blocked
        return Outcome(
            False,
            f"{task.model} test accuracy {accuracy:.2%} ({reached}), but no "
            f"points: {', '.join(blocked)} failed",
            "\n".join(lines),
            data,
            score=0.0,
        )
    short = f"; {norm.twice}" if norm.twice and points < item.points else ""
    return Outcome(
        tier is not None,
        f"{task.model} test accuracy {accuracy:.2%}: {reached}, {points:g}/{item.points:g} points{short}",
        "\n".join(lines),
        data,
        score=points,
    )


def _weights_message(name: str, model: str, exc: WorkerFailure) -> str:
    if exc.kind != Failure.FIT:
        return exc.message
    d = exc.details
    parts = []
    if d.get("missing"):
        parts.append(f"missing keys {_few(d['missing'])}")
    if d.get("unexpected"):
        parts.append(f"unexpected keys {_few(d['unexpected'])}")
    for m in (d.get("mismatched") or [])[:3]:
        parts.append(f"{m['key']} has shape {tuple(m['got'])}, the model expects {tuple(m['expected'])}")
    tried = f" (even after: {'; '.join(d['notes'])})" if d.get("notes") else ""
    return f"{name} does not fit {model}{tried}: {'; '.join(parts)}"


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:4])
    return f"{shown} (+{len(keys) - 4} more)" if len(keys) > 4 else shown


# --- what the kind contributes beyond its verdict (registry hooks) ----------------------


@dataclass
class ClassRow:
    name: str
    measured: float | None
    claimed: float | None


@dataclass
class AccuracyView:
    item: ItemResult
    rows: list[ClassRow]
    classes: list[str]
    confusion: list[list[int]]


@hook("accuracy", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """Per-class accuracy (beside what the section's ``claims`` item read in the notebook)
    and the confusion matrix."""
    per_class = item.data.get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return []
    claims = next((i for i in place.group if i.kind == "claims"), None)
    claimed = (claims.data.get("per_class") if claims else None) or {}
    claimed_values = {k: v.get("claimed") for k, v in claimed.items() if isinstance(v, dict)}
    rows = [ClassRow(name, value, claimed_values.get(name)) for name, value in per_class.items()]
    view = AccuracyView(item, rows, list(per_class), item.data.get("confusion") or [])
    bar = (per_class, {k: v for k, v in claimed_values.items() if v is not None} or None)
    figures = {"bar": ("per_class", bar)}
    if view.confusion and len(view.confusion) == len(view.classes):
        figures["confusion"] = ("confusion", (view.confusion, view.classes))
    return [Part("accuracy", view, order=20, figures=figures)]


@hook("accuracy", "leaderboard")
def leaderboard(item: ItemResult) -> list[dict[str, Any]]:
    if "accuracy" not in item.data:
        return []
    return [{"name": f"{item.name}", "value": round(item.data["accuracy"], 4)}]


@hook("accuracy", "selfcheck")
def selfcheck(item: ItemResult, validated: bool) -> Shown | None:
    """``autograder check`` measures the checkpoint on the validation split instead."""
    accuracy = item.data.get("accuracy")
    if validated and isinstance(accuracy, float):
        reached = f"tier {item.data['tier']}" if item.data.get("tier") else "below every tier"
        facts = {"accuracy": accuracy, "tier": item.data.get("tier"), "images": item.data.get("images")}
        why = f"validation accuracy {accuracy:.2%} ({reached} if the test split agrees)"
        return Shown("later", why, facts)
    if validated or not item.data.get("no_data_root"):
        # No number although the data was there: the model or the weights cannot be
        # evaluated at all, and the grader will say the same.
        return Shown("fail", item.message)
    return None


@hook("accuracy", "summary")
def summary(items: list[ItemResult]) -> Distribution | None:
    """The class's test accuracies, and per class."""
    values: list[float] = []
    per_class: dict[str, list[float]] = {}
    for item in items:
        if not isinstance(item.data.get("accuracy"), (int, float)):
            continue
        values.append(float(item.data["accuracy"]))
        for name, acc in (item.data.get("per_class") or {}).items():
            if isinstance(acc, (int, float)):
                per_class.setdefault(name, []).append(float(acc))
    return Distribution("accuracy", "test accuracy", values, per_class=per_class) if values else None
