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

With a ``reference`` file (``autograder calibrate``: models the grader trained on the
training split minus the sample, so they never saw either set), the accuracy test is
calibrated: each image's reference accuracy is subtracted first, so the test compares
how much better than the references the model does on each set. That removes the part
of the gap that is only which images happened to be drawn (one set a little easier than
the other), which the plain test must treat as noise (docs/benchmarks.md measures it).

Either test beyond chance (each at ``alpha``/2) sets ``data["flag"]``: one sentence
for the TA, shown in the report and the batch summary. It is evidence, never a
penalty: the item is worth 0 points in the bundled rubrics. What it cannot see: a
model trained on the training and test images together knows both equally well.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path, PurePosixPath
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
    allowed("generalisation", {"accuracy_item", "sample", "seed", "alpha", "reference"}, options)
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
    reference = options.get("reference")
    if reference is not None and not (
        isinstance(reference, str)
        and reference.endswith(".npz")
        and not PurePosixPath(reference).is_absolute()
        and ".." not in PurePosixPath(reference).parts
    ):
        raise ValueError(
            "generalisation: reference must be the path of the .npz `autograder calibrate` wrote, "
            "relative to the rubric's folder (no '..')"
        )
    return options


# --- the reference file (``autograder calibrate`` writes it) ------------------------------------
REFERENCE_KEYS = ("sample", "train_rate", "test_rate", "test_labels_sha256", "models", "recipe")


def labels_digest(labels: np.ndarray) -> str:
    """What ties a reference file to one test split: the SHA-256 of its labels as int64."""
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()


def load_reference(
    path: Path, sample: np.ndarray, test_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The references' per-image accuracy on the training sample (in ``sample``'s order) and on
    the test split, after checking the file was made for this sample and this test split."""
    staff = "this is not your fault: tell the course staff"
    try:
        with np.load(path, allow_pickle=False) as found:
            missing = [k for k in REFERENCE_KEYS if k not in found.files]
            if missing:
                raise CheckFailed(
                    f"the rubric's reference file {path.name} lacks {', '.join(missing)}; {staff}"
                )
            arrays = {k: found[k] for k in REFERENCE_KEYS}
        train_rate, test_rate = arrays["train_rate"].astype(float), arrays["test_rate"].astype(float)
        about = {"models": int(arrays["models"]), "recipe": str(arrays["recipe"])}
    except (OSError, ValueError, TypeError) as exc:
        raise CheckFailed(
            f"the rubric's reference file {path.name} cannot be read ({exc}); {staff}"
        ) from None
    if not np.array_equal(arrays["sample"], sample):
        raise CheckFailed(
            f"the rubric's reference file {path.name} was made for another training sample (sample size, "
            f"seed or training split differ: rerun `autograder calibrate`); {staff}"
        )
    if str(arrays["test_labels_sha256"]) != labels_digest(test_labels) or len(test_rate) != len(test_labels):
        raise CheckFailed(
            f"the rubric's reference file {path.name} was made for another test split "
            f"(rerun `autograder calibrate` on this data root); {staff}"
        )
    rates = np.concatenate([train_rate, test_rate])
    if len(train_rate) != len(sample) or not np.all((rates >= 0) & (rates <= 1)):
        raise CheckFailed(f"the rubric's reference file {path.name} holds no accuracies in 0..1; {staff}")
    return train_rate, test_rate, about


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


def calibrated_gain(
    train_correct: np.ndarray, train_rate: np.ndarray, test_correct: np.ndarray, test_rate: np.ndarray
) -> tuple[float, float]:
    """How much more the model beats the references on the test images than on the training
    sample (accuracy minus the references' accuracy on the same images, test minus training),
    and the one-sided p-value of a gain this high if the model treated both sets alike
    (per-image differences, normal approximation with each set's own variance)."""
    test, train = test_correct - test_rate, train_correct - train_rate
    gain = float(test.mean() - train.mean())
    spread = math.sqrt(test.var(ddof=1) / len(test) + train.var(ddof=1) / len(train))
    if spread == 0:
        return gain, 0.5
    return gain, _normal_tail(gain / spread)


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
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The whole comparison: accuracies, p-values, AUC, loss summaries, and the flag sentence.
    ``reference``: the references' per-image accuracy on the two sets (training sample, test
    split); the accuracy test is then the calibrated one (``calibrated_gain``)."""
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
    if reference is not None:
        train_rate, test_rate = reference
        gain, p_gain = calibrated_gain(train_correct, train_rate, test_correct, test_rate)
        found.update(
            reference_train_accuracy=round(float(train_rate.mean()), 5),
            reference_test_accuracy=round(float(test_rate.mean()), 5),
            calibrated_gain=round(gain, 5),
            calibrated_p_value=p_gain,
        )
        if p_gain < alpha / 2:
            found["flag"] = (
                f"against reference models that never saw either set ({train_rate.mean():.1%} on these "
                f"training images, {test_rate.mean():.1%} on the test images), the model gains "
                f"{100 * gain:.1f} points more on {images} ({train_acc:.1%}), {_p(p_gain)}: "
                "was the test split used for training?"
            )
    elif p_acc < alpha / 2 and test_acc > train_acc:
        found["flag"] = (
            f"the model is more accurate on {images} ({train_acc:.1%}), {_p(p_acc)}: "
            "was the test split used for training?"
        )
    if "flag" not in found and p_auc < alpha / 2:
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
        "reference_train_accuracy",
        "reference_test_accuracy",
        "calibrated_gain",
        "calibrated_p_value",
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
    reference, about = None, None
    if item.options.get("reference"):
        train_rate, test_rate, about = load_reference(
            ctx.rubric.path.parent / item.options["reference"], sample.indices, ctx.data.split().labels
        )
        reference = (train_rate[sample.order], test_rate[evaluation.order])
    found = compare(
        train_losses, train_correct, evaluation.losses, evaluation.correct, item.options["alpha"], reference
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
        f"test accuracy above training accuracy: one-sided {_p(found['accuracy_p_value'])}"
        + (" (reported; the calibrated test below decides)" if about else ""),
        f"membership AUC (loss tells training from test images; honest models score about 0.5 or above): "
        f"{found['membership_auc']:.3f}, test losses lower: one-sided {_p(found['auc_p_value'])}",
        "median loss: "
        + ", ".join(
            f"{name} {'not finite' if v is None else f'{v:.3g}'}"
            for name, v in (("training", found["train_loss_median"]), ("test", found["test_loss_median"]))
        ),
        f"flagged when either p-value is below {alpha / 2:g} (alpha {alpha:g}, split between the two tests)",
        "a model trained on the training and test images together is not detectable this way",
    ]
    if about:
        lines[4:4] = [
            f"reference models ({about['models']} × {about['recipe']}; trained without these images): "
            f"{found['reference_train_accuracy']:.2%} on the training sample, "
            f"{found['reference_test_accuracy']:.2%} on the test split",
            f"gain over the references, test minus training: {100 * found['calibrated_gain']:+.2f} points; "
            f"gain this high: one-sided {_p(found['calibrated_p_value'])}",
        ]
    if seconds is not None and evaluation.seconds:
        lines.append(f"evaluation: {seconds:.1f} s here, {evaluation.seconds:.1f} s for the test split")
    auc = found["membership_auc"]
    summary = f"training sample {train_acc:.1%} vs test {test_acc:.1%}, membership AUC {auc:.2f}"
    if about:
        summary += f", {100 * found['calibrated_gain']:+.1f} points against the references"
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
