"""``generalisation``: does the model know the test images better than its training images?

CIFAR-10's and Fashion-MNIST's test splits are public, so a student can train or
fine-tune on them at home. A model fitted to the test images tends to know them
better than the images it was supposedly trained on; an honest model never does,
beyond noise. This check evaluates the accuracy item's checkpoint, with the same
preprocessing, on a fixed seeded sample of the training split (the grader's own
labels; the worker sees the images in a secret order, never a label) and compares:

- training-sample accuracy vs test accuracy, with the one-sided p-value of
  "test accuracy exceeds training accuracy" (two-proportion z-test);
- per-image cross-entropy losses on both sets, and the loss-based membership AUC
  (the chance that a training image has a lower loss than a test image: 0.5 or a little above
  for an honest model, near or below 0.5 for one fitted to the test split), with the
  one-sided Mann-Whitney p-value of "the test losses are the lower ones".

Either test beyond chance (each at ``alpha``/2) sets ``data["flag"]``: one sentence
for the TA, shown in the report and the batch summary. It is evidence, never a
penalty: the item is worth 0 points in the bundled rubrics. What it cannot see: a
model trained on the training and test images together knows both equally well.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..result import CheckFailed, ItemResult, Outcome
from ..rubric import Item
from .accuracy import evaluate, per_image
from .context import Context
from .registry import Part, Place, allowed, check, hook

HISTOGRAM_BINS = 30
DEFAULT_SAMPLE = 2000  # training images evaluated
DEFAULT_ALPHA = 0.01  # flag when p < alpha / 2 in either test; honest models measured p >= 0.5


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("generalisation", {"accuracy_item", "sample", "seed", "alpha"}, options)
    sample = options.setdefault("sample", DEFAULT_SAMPLE)
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 100:
        raise ValueError("generalisation: sample must be a whole number of training images, at least 100")
    if not isinstance(options.setdefault("seed", 0), int) or isinstance(options["seed"], bool):
        raise ValueError("generalisation: seed must be a whole number")
    alpha = options.setdefault("alpha", DEFAULT_ALPHA)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 0.5:
        raise ValueError("generalisation: alpha must be a probability between 0 and 0.5 (0.01 = 1 in 100)")
    if "accuracy_item" in options and not isinstance(options["accuracy_item"], str):
        raise ValueError("generalisation: accuracy_item must be an item id")
    return options


def _normal_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def accuracy_p_value(test_correct: int, n_test: int, train_correct: int, n_train: int) -> float:
    """One-sided two-proportion z-test (pooled): the chance of test accuracy this far
    above training accuracy if both came from the same accuracy."""
    pooled = (test_correct + train_correct) / (n_test + n_train)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_test + 1 / n_train))
    gap = test_correct / n_test - train_correct / n_train
    if spread == 0:
        return 0.5
    return _normal_tail(gap / spread)


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share the mean rank) and the sizes of the tied groups."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    mean_rank = starts + (sizes + 1) / 2  # ranks starts+1 .. starts+size
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, sizes)
    return ranks, sizes


def membership_auc(train_losses: np.ndarray, test_losses: np.ndarray) -> tuple[float, float]:
    """How well the loss tells training images from test images (Mann-Whitney U / n1 n2):
    the chance that a training image's loss is below a test image's, ties counted half.
    Returns the AUC and the one-sided p-value of an AUC this low (test losses the lower)
    if the two sets were alike (normal approximation, tie-corrected, continuity-corrected)."""
    n1, n2 = len(train_losses), len(test_losses)
    ranks, ties = _ranks(np.concatenate([train_losses, test_losses]))
    u = ranks[n1:].sum() - n2 * (n2 + 1) / 2  # pairs where the test loss is the higher one
    auc = float(u / (n1 * n2))
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1)))
    if variance <= 0:
        return auc, 0.5
    return auc, 1 - _normal_tail((u - n1 * n2 / 2 + 0.5) / math.sqrt(variance))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _histogram(train: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """Shared bins for both loss distributions (fractions of each set; infinite losses in the last bin)."""
    finite = np.concatenate([train[np.isfinite(train)], test[np.isfinite(test)]])
    top = float(np.quantile(finite, 0.99)) if len(finite) else 1.0
    edges = np.linspace(0.0, max(top, 1e-3), HISTOGRAM_BINS + 1)

    def share(losses: np.ndarray) -> list[float]:
        counts, _ = np.histogram(np.clip(losses, 0, edges[-1]), bins=edges)
        return [round(float(c) / max(len(losses), 1), 5) for c in counts]

    return {"edges": [round(float(e), 5) for e in edges], "train": share(train), "test": share(test)}


def compare(
    train_losses: np.ndarray,
    train_correct: np.ndarray,
    test_losses: np.ndarray,
    test_correct: np.ndarray,
    alpha: float,
) -> dict[str, Any]:
    """The whole comparison: accuracies, p-values, AUC, loss summaries, and the flag sentence."""
    n_train, n_test = len(train_correct), len(test_correct)
    train_acc, test_acc = float(train_correct.mean()), float(test_correct.mean())
    p_acc = accuracy_p_value(int(test_correct.sum()), n_test, int(train_correct.sum()), n_train)
    auc, p_auc = membership_auc(train_losses, test_losses)
    found: dict[str, Any] = {
        "train_accuracy": round(train_acc, 5),
        "test_accuracy": round(test_acc, 5),
        "train_images": n_train,
        "test_images": n_test,
        "accuracy_p_value": p_acc,
        "membership_auc": round(auc, 5),
        "auc_p_value": p_auc,
        "alpha": alpha,
        "train_loss_median": _finite(np.median(train_losses)),
        "test_loss_median": _finite(np.median(test_losses)),
        "histogram": _histogram(train_losses, test_losses),
    }
    images = f"the {n_test:,} test images ({test_acc:.1%}) than on {n_train:,} of its training images"
    if p_acc < alpha / 2 and test_acc > train_acc:
        found["flag"] = (
            f"the model is more accurate on {images} ({train_acc:.1%}), {_p(p_acc)}: "
            "was the test split used for training?"
        )
    elif p_auc < alpha / 2:
        found["flag"] = (
            f"the model's losses are lower on the {n_test:,} test images than on {n_train:,} of its "
            f"training images (membership AUC {auc:.3f}, {_p(p_auc)}; accuracy {test_acc:.1%} vs "
            f"{train_acc:.1%}): was the test split used for training?"
        )
    return found


def _prepare(item: Item, ctx: Context) -> None:
    """Stage the training sample before the worker starts: decoding the training split
    (a torch child on a cold cache) and holding it whole never overlap the worker's memory."""
    ctx.data.train_sample(item.options["sample"], item.options["seed"])


@check(
    "generalisation",
    timeout=600,
    validate=_validate,
    visibility="hidden",
    hidden=True,
    prepare=_prepare,
    measured=(
        "eval_seconds",
        "measured_by",
        "train_accuracy",
        "test_accuracy",
        "train_images",
        "test_images",
        "accuracy_p_value",
        "membership_auc",
        "auc_p_value",
        "alpha",
        "train_loss_median",
        "test_loss_median",
        "seed",
    ),
)
def run(item: Item, ctx: Context) -> Outcome:
    source_id = item.options.get("accuracy_item") or f"{item.task}.accuracy"
    evaluation = ctx.evaluations.get(source_id)
    if evaluation is None:
        earlier = ctx.results.get(source_id)
        why = f": {earlier.message}" if earlier is not None else " (no such item ran before this one)"
        raise CheckFailed(f"nothing to compare with: {source_id} measured no test accuracy{why}")
    task = evaluation.task
    sample = ctx.data.train_sample(item.options["sample"], item.options["seed"])
    logits, seconds = evaluate(
        ctx, evaluation.source, task, evaluation.norm, sample.path, len(sample.order),
        f"logits_{task.id}_train_sample.npy", evaluation.batch_size, item.timeout,
        f"evaluating {task.model} on {len(sample.order):,} training images", hidden_inputs=False,
    )  # fmt: skip
    train_losses, train_correct = per_image(logits, sample.labels[sample.order])
    found = compare(
        train_losses, train_correct, evaluation.losses, evaluation.correct, item.options["alpha"]
    )
    if "flag" in found:
        found["flag"] = f"{task.model}: {found['flag']}"
    found.update(
        measured_by=source_id,
        seed=item.options["seed"],
        train_split_images=sample.split_size,
        train_split_official=sample.provenance.get("official"),
        eval_seconds=seconds,
        test_eval_seconds=evaluation.seconds,
    )
    train_acc, test_acc, alpha = found["train_accuracy"], found["test_accuracy"], item.options["alpha"]
    lines = [
        f"the {task.model} weights scored by {source_id}, with its normalisation "
        f"(mean {list(evaluation.norm.mean)}, std {list(evaluation.norm.std)})",
        f"training sample: {found['train_images']:,} of {sample.split_size:,} training images "
        f"(seed {item.options['seed']}); accuracy {train_acc:.2%}",
        f"test split: {found['test_images']:,} images; accuracy {test_acc:.2%}",
        f"test accuracy above training accuracy: one-sided {_p(found['accuracy_p_value'])}",
        f"membership AUC (loss tells training from test images; honest models score about 0.5 or above): "
        f"{found['membership_auc']:.3f}, test losses lower: one-sided {_p(found['auc_p_value'])}",
        "median loss: " + ", ".join(
            f"{name} {'not finite' if v is None else f'{v:.3g}'}"
            for name, v in (("training", found["train_loss_median"]), ("test", found["test_loss_median"]))
        ),
        f"flagged when either p-value is below {alpha / 2:g} (alpha {alpha:g}, split between the two tests)",
        "a model trained on the training and test images together is not detectable this way",
    ]
    if seconds is not None and evaluation.seconds:
        lines.append(f"evaluation: {seconds:.1f} s here, {evaluation.seconds:.1f} s for the test split")
    auc = found["membership_auc"]
    summary = f"training sample {train_acc:.1%} vs test {test_acc:.1%}, membership AUC {auc:.2f}"
    if "flag" in found:
        return Outcome(
            False, f"flagged for the TA: {found['flag']}", "\n".join(lines), found, score=item.points
        )
    return Outcome(True, f"{summary}: the test split looks no more familiar than the training split",
                   "\n".join(lines), found, score=item.points)  # fmt: skip


@hook("generalisation", "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    """Both sets side by side, the two p-values and the loss histograms the check measured."""
    if "membership_auc" not in item.data:
        return []
    histogram = item.data.get("histogram") or {}
    figures = {}
    if all(isinstance(histogram.get(k), list) for k in ("edges", "train", "test")):
        shares = (histogram["edges"], histogram["train"], histogram["test"])
        figures["histogram"] = ("loss_histograms", shares)
    return [Part("generalisation", item, order=30, figures=figures)]
