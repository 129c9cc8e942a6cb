"""``retrain``: train the student's architecture from scratch with the
grader's fixed recipe (``sandbox/worker/training.py``) and score it like a
checkpoint.

The worker gets the training split with its labels and the test images in a
secret order without labels; it returns test logits, and the grader scores
them with its own labels and the item's tiers, exactly as ``accuracy`` does.
The worker first times a few probe steps; a model that would not finish inside
the rubric's ``budget`` on this device is refused up front with the estimate.
When the grader itself fails (its training did not converge even after one
restart at a lower rate, or a busy machine ran it out of its budget), the item
scores 0 with a ``flag`` that the report, results.json and the batch summary's
"needs a human" list show the TA: never a half-trained model's accuracy.

rich's progress bar is imported only when a terminal shows it.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..result import CheckFailed, Outcome
from ..rubric import Item, Task, parse_tiers, tier_points
from ..sandbox import Failure, SandboxError, WorkerFailure
from ..sandbox.worker.training import DEFAULTS, Attempt, describe, fmt_seconds
from .accuracy import score
from .common import ask
from .context import Context
from .limits import RETRAIN_SLACK
from .registry import allowed, check

LIMITS = {"epochs": (1, 500), "batch_size": (1, 8192), "lr": (1e-6, 10.0), "budget": (1.0, 86400.0)}


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("retrain", {"tiers", *DEFAULTS}, options)
    options["tiers"] = parse_tiers(options.get("tiers"))
    for key, default in DEFAULTS.items():
        value = options.get(key, default)
        kind = int if isinstance(default, int) else float
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (kind is int and value != int(value))
        ):
            raise ValueError(f"{key} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
        low, high = LIMITS.get(key, (0, 2**31))
        if not low <= value <= high:
            raise ValueError(f"{key} = {value!r} is outside {low:g}..{high:g}")
        options[key] = kind(value)
    return options


MEASURED = ("accuracy", "per_class", "tier", "images", "normalization", "eval_seconds", "train_images")


@check(
    "retrain",
    timeout=900,
    validate=_validate,
    hidden=True,
    slow=True,
    measured=MEASURED,
    points=tier_points,
    least_timeout=lambda options: options["budget"] * 1.1 + RETRAIN_SLACK,  # training, then the rest
)
def run(item: Item, ctx: Context) -> Outcome:
    task = ctx.models.task(item.task)
    source = ctx.models.build(task.id)
    training = ctx.data.training_set()
    split = ctx.data.split()
    norm = ctx.preprocessing.default()  # training from scratch: the grader's own statistics
    mean, std = list(norm.mean), list(norm.std)
    recipe = {**{k: item.options[k] for k in DEFAULTS}, "flip": split.spec.mirror}
    timeout = item.timeout  # at least budget × 1.1 + RETRAIN_SLACK (least_timeout)
    with ctx.data.test_images() as (images_path, order):
        args = dict(
            task=task.id,
            module=source.module,
            cls=source.model or task.model,
            num_classes=task.num_classes,
            train_images=training.images,
            train_labels=training.labels,
            test_images=images_path,
            out_name=f"retrain_{task.id}.npy",
            mean=mean,
            std=std,
            resize=task.resize,
            recipe=recipe,
            device=ctx.device,
        )
        answer = _retrain(ctx, source, task, recipe, timeout, order, args)
        logits = answer.pop("logits")
    measured = score(logits, order, split.labels, split.spec.classes)
    accuracy = measured["accuracy"]
    tiers = item.options["tiers"]
    tier = next((t for t in tiers if t.reached(accuracy)), None)
    points = tier.points if tier else 0.0
    history = answer.get("history") or []
    data = {
        **measured,
        "tier": tier.label() if tier else None,
        "images": len(order),
        "train_images": training.size,
        "train_seconds": answer.get("train_seconds"),
        "estimate_seconds": answer.get("estimate_seconds"),
        "eval_seconds": answer.get("eval_seconds"),
        "device": answer.get("device"),
        "recipe": recipe,
        "history": history,
        "attempts": answer.get("attempts") or [],
        "normalization": {"mean": mean, "std": std, "source": "the grader's (training from scratch)"},
    }
    ranked = sorted((v, k) for k, v in measured["per_class"].items() if v is not None)
    lines = [
        _plan_lines(answer, recipe),
        f"test images: {len(order):,}; accuracy {accuracy:.2%}",
        "tiers: " + ", ".join(f"{t.label()} → {t.points:g}" for t in tiers),
        "per-class accuracy: " + ", ".join(f"{k} {v:.1%}" for v, k in reversed(ranked)),
    ]
    if measured["non_finite_rows"]:
        lines.append(f"{measured['non_finite_rows']} images got NaN/inf logits (counted wrong)")
    reached = f"tier {tier.label()}" if tier else f"below the lowest tier ({tiers[-1].label()})"
    restarted = ""
    if data["attempts"]:
        switched = answer.get("optimizer") == "AdamW" and data["attempts"][0].get("optimizer") == "SGD"
        restarted = (
            ", restarted once with AdamW after the SGD run stayed at chance"
            if switched
            else ", restarted once at a lower rate after the first attempt failed"
        )
    return Outcome(
        tier is not None,
        f"{task.model} retrained in {answer.get('train_seconds', 0):.0f} s ({recipe['epochs']} epochs "
        f"on {answer.get('device')}{restarted}): test accuracy {accuracy:.2%}: {reached}, "
        f"{points:g}/{item.points:g} points",
        "\n".join(lines),
        data,
        score=points,
    )


def _retrain(
    ctx: Context,
    source: Any,
    task: Task,
    recipe: dict[str, Any],
    timeout: float,
    order: np.ndarray,
    args: dict[str, Any],
) -> dict[str, Any]:
    """The training request and its logits, while the worker holds the test images."""
    try:
        answer = _with_progress(ctx, task, recipe["epochs"], lambda: _train(ctx, source, task, timeout, args))
    except WorkerFailure as exc:  # the grader's own failures: over the budget, or no convergence
        raise _not_retrained(exc, task, recipe) from None
    try:
        shape = (len(order), task.num_classes)
        return {**answer, "logits": ctx.sandbox.read_array(str(answer.get("array")), "float32", shape)}
    except SandboxError as exc:
        raise CheckFailed(exc.message) from None


DEVICE = re.compile(r"cpu|cuda(:\d{1,2})?|mps")


def _refusal(details: dict[str, Any], recipe: dict[str, Any]) -> str:
    """The refusal in the grader's words, from its numbers: the worker held the hidden test
    images, so its own text could carry them."""
    budget = fmt_seconds(recipe["budget"])
    estimate, rate = details.get("estimate_seconds"), details.get("probe_images_per_second")
    images = details.get("images")
    if not _number(estimate):
        done = len(details.get("history") or [])
        return f"stopped after epoch {done} of {recipe['epochs']}: over the {budget} budget"
    device = details.get("device")
    device = device if isinstance(device, str) and DEVICE.fullmatch(device) else "this device"
    how = (
        f" ({rate:,.0f} images/s × {recipe['epochs']} epochs of {images:,} images)"
        if _number(rate) and isinstance(images, int)
        else ""
    )
    took = f"retraining would take about {fmt_seconds(estimate)} on {device}{how}"
    return f"{took}, more than the {budget} budget"


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e12


def _not_retrained(exc: WorkerFailure, task: Task, recipe: dict[str, Any]) -> CheckFailed:
    """The grader could not produce a trained model. Refused up front: the rubric asks too
    much of this device. Stopped or not converged: the grader failed, not the student, so
    the item is flagged for a TA instead of scoring a half-trained model."""
    evidence = {
        k: v for k, v in exc.details.items() if k in ("estimate_seconds", "device", "history", "attempts")
    }
    details = _plan_lines(exc.details, recipe)
    if exc.kind == Failure.DIVERGED:
        flag = "the grader's training did not converge: grade this item by hand"
        return CheckFailed(
            f"{task.model}: the grader's training did not converge ({_divergence(exc.details)}); "
            "this says nothing about the student's model, and the item is flagged for a TA",
            details=details,
            flag=flag,
            **evidence,
        )
    if exc.details.get("stopped"):
        flag = "the grader ran out of its training budget: regrade this item (a larger budget or a GPU)"
        return CheckFailed(
            f"{task.model} was not retrained: {_refusal(exc.details, recipe)}; the item is flagged for a TA",
            details=details,
            flag=flag,
            **evidence,
        )
    return CheckFailed(
        f"{task.model} was not retrained: {_refusal(exc.details, recipe)}. On a CPU only small models fit; "
        "grade this item with --device cuda",
        details=details,
        refused=True,
        **evidence,
    )


def _divergence(details: dict[str, Any]) -> str:
    """The failed attempts in the grader's words, from their numbers (the worker held the
    hidden test images, so its own text is not shown)."""
    words = []
    for attempt in details.get("attempts") or []:
        history = attempt.get("history") or []
        last = history[-1] if history else {}
        loss = last.get("loss")
        how = _how(attempt)
        if how and isinstance(loss, (int, float)):
            words.append(f"{how}: loss {loss:.4f} after epoch {len(history)}")
        elif how:
            words.append(f"{how}: no finite loss")
    return "; ".join(words) or "no attempt trained"


def _how(attempt: dict[str, Any]) -> str:
    """How an attempt trained, from its numbers ("" when the worker sent none)."""
    lr = attempt.get("lr")
    if not isinstance(lr, (int, float)):
        return ""
    return str(Attempt(lr, adam=attempt.get("optimizer") == "AdamW"))


def _train(ctx: Context, source: Any, task: Task, timeout: float, args: dict[str, Any]) -> dict[str, Any]:
    """The worker request; the grader's own failures (budget, divergence) pass through,
    the model's failures become one line with where they happened."""
    return ask(
        ctx, source, f"retraining {task.model}", "train", timeout,
        hidden_inputs=True, passing=(Failure.BUDGET, Failure.DIVERGED), **args,
    )  # fmt: skip


def _plan_lines(plan: dict[str, Any], recipe: dict[str, Any]) -> str:
    lines = [f"recipe: {describe(recipe, plan.get('batch_size'))}"]
    if "estimate_seconds" in plan:
        lines.append(
            f"estimate before training: {plan['estimate_seconds']:.1f} s, from {plan.get('probe')}; "
            f"budget {recipe['budget']:g} s"
        )
    for attempt in plan.get("attempts") or []:
        lines.append(f"attempt {_how(attempt)} failed: {attempt['failed']}")
        lines += [_epoch_line(h) for h in attempt.get("history") or []]
    if plan.get("attempts") and plan.get("lr"):
        lines.append(f"restarted {_how(plan)}")
    lines += [_epoch_line(h) for h in plan.get("history") or []]
    return "\n".join(lines)


def _epoch_line(h: dict[str, Any]) -> str:
    return (
        f"epoch {h['epoch']:>3}: loss {h['loss']:.4f}, train accuracy {h['train_accuracy']:.1%}, "
        f"{h['seconds']:.1f} s"
    )


def _with_progress(ctx: Context, task: Task, epochs: int, work: Any) -> dict[str, Any]:
    """Run ``work`` while showing the worker's progress file as a bar (on a terminal only)."""
    if not sys.stderr.isatty():
        return work()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    path = ctx.sandbox.job.out / f"progress_{task.id}.json"
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"))
    with (
        Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        shown = bar.add_task(f"retraining {task.model}", total=epochs, note="probing speed")
        future = pool.submit(work)
        while True:
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                state = read_progress(path)
                if state:
                    done = state["epoch"] - 1 + state["step"] / max(1, state["steps"])
                    note = f"epoch {state['epoch']}/{state['epochs']}, {state['seconds']:.0f} s"
                    bar.update(shown, completed=min(done, epochs), note=note)


def read_progress(path: Path) -> dict[str, Any] | None:
    """The worker's progress file, if it is a small regular file holding the expected numbers."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
            return None
        try:
            state = json.loads(handle.read(4096))
        except ValueError:
            return None
    keys = ("epoch", "epochs", "step", "steps", "seconds")
    if not isinstance(state, dict) or not all(isinstance(state.get(k), (int, float)) for k in keys):
        return None
    return state
