"""``autograder calibrate``: reference models for a ``generalisation`` item.

A ``generalisation`` item compares a student's model on a seeded sample of the
training split with the test split. Which images happened to be drawn makes one
set a little easier than the other, and the plain accuracy test must treat that
as noise. This command trains ``--models`` reference networks with the grader's
``retrain`` recipe on the training split *minus* that sample, so they never see
either set, and records for every sample and test image the share of them that
got it right. With the file named in the item's ``reference`` option the check
subtracts those shares first (``generalisation.calibrated_gain``): what is left is
how much better than the references the model does on each set.

The staff run it once per rubric item and data root (the default SimpleCNN took
about 3 minutes per model on 10,000 CIFAR-10 images on two CPU cores, so about
14 on the whole split; docs/benchmarks.md) and ship the file beside the rubric;
``build-gradescope`` bundles it. The reference code is the course's own
(trusted): it runs in this process, not in the sandbox.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path, PurePosixPath

import numpy as np

from .checks.context.data import training_sample
from .checks.generalisation import labels_digest
from .data import dataset_spec, load_split
from .errors import UsageError
from .rubric import Rubric, load
from .sandbox.worker import evaluate, training
from .sandbox.worker.errors import WorkerError

# A small network per input shape, from the bundled reference solutions.
DEFAULT_MODELS = {3: "reference.lab2.simple_cnn:SimpleCNN", 1: "reference.lab4.fashion_cnn:FashionCNN"}
DEFAULT_COUNT = 3
DEFAULT_EPOCHS = 10
BATCH, LR = training.DEFAULTS["batch_size"], training.DEFAULTS["lr"]  # the retrain recipe's defaults


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rubric", required=True, help="rubric id or path to a .toml file")
    parser.add_argument("--item", help="the generalisation item (default: the rubric's first)")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="the data root the grader uses (default $AUTOGRADER_DATA or ./data)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write (beside the rubric)")
    parser.add_argument(
        "--models", type=int, default=DEFAULT_COUNT, help=f"reference networks (default {DEFAULT_COUNT})"
    )
    parser.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs each (default {DEFAULT_EPOCHS})"
    )
    parser.add_argument(
        "--model", help="module:factory of the reference network, called with num_classes= (default: "
        "SimpleCNN for colour images, FashionCNN for grey ones, from the bundled reference solutions)",
    )  # fmt: skip
    parser.add_argument(
        "--device", default="cpu", choices=("cpu", "cuda"), help="where to train (default cpu)"
    )


def _item(rubric: Rubric, item_id: str | None):
    items = [i for i in rubric.items if i.kind == "generalisation"]
    for item in items:
        if item_id in (None, item.id):
            return item
    have = ", ".join(i.id for i in items) or "none"
    asked = f" {item_id}" if item_id else ""
    raise UsageError(f"{rubric.id}: no generalisation item{asked} (generalisation items: {have})")


def reference_recipes(models: int, epochs: int, mirror: bool) -> list[training.Recipe]:
    """The retrain recipe at its default batch and rate, no time budget, one seed per model."""
    return [training.Recipe(epochs, BATCH, LR, float("inf"), seed, flip=mirror) for seed in range(models)]


def factory(spec: str):
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"--model {spec}: {exc} (give module:factory, e.g. {DEFAULT_MODELS[3]})") from None


def share_right(
    make, classes: int, train: tuple[np.ndarray, np.ndarray], scored: list[tuple[np.ndarray, np.ndarray]],
    mean: list[float], std: list[float], recipes: list[training.Recipe], device: str, say=print,
) -> list[np.ndarray]:  # fmt: skip
    """Train one network ``make(num_classes=classes)`` per recipe on ``train`` (uint8 images,
    labels) and return, for each (images, labels) pair in ``scored``, the share of the networks
    that got each image right."""
    import torch

    hits = [np.zeros(len(labels)) for _, labels in scored]
    for n, recipe in enumerate(recipes, 1):
        torch.manual_seed(recipe.seed)
        trainer = training.Trainer(
            make(num_classes=classes), *train, classes, mean, std, None, recipe, device, lambda f, *a: f(*a)
        )
        start = time.perf_counter()
        try:
            history, _, _ = trainer.run(lambda *a: None)
        except WorkerError as exc:  # diverged twice: the recipe does not suit this network
            raise UsageError(f"reference {n} did not train: {exc.message} (try another --model)") from None
        say(
            f"reference {n}/{len(recipes)}: {recipe.epochs} epochs in {time.perf_counter() - start:.0f} s, "
            f"training accuracy {history[-1]['train_accuracy']:.1%}"
        )
        trainer.model.eval()
        normalize = evaluate.normalizer(mean, std, train[0].shape[1], trainer.dev)
        with torch.inference_mode():
            for total, (images, labels) in zip(hits, scored, strict=True):
                for lo in range(0, len(labels), 1000):
                    x = normalize(
                        torch.from_numpy(np.ascontiguousarray(images[lo : lo + 1000])).to(trainer.dev)
                    )
                    guess = trainer.model(x.contiguous(memory_format=trainer.layout)).argmax(1).cpu().numpy()
                    total[lo : lo + 1000] += guess == labels[lo : lo + 1000]
    return [total / len(recipes) for total in hits]


def calibrate(args: argparse.Namespace, rubric: Rubric | None = None, say=print) -> Path:
    """Write the reference file for ``args.item`` of ``args.rubric`` (already loaded: ``rubric``)."""
    rubric = rubric or load(args.rubric)
    item = _item(rubric, args.item)
    spec = dataset_spec(rubric.dataset)
    if args.models < 1 or args.epochs < 1:
        raise UsageError("--models and --epochs must be at least 1")
    make = factory(args.model or DEFAULT_MODELS[1 if spec.channels == 1 else 3])
    train, test = (
        load_split(args.data_root, rubric.dataset, train=True),
        load_split(args.data_root, rubric.dataset),
    )
    sample = training_sample(
        len(train.labels), min(item.options["sample"], len(test.labels)), item.options["seed"]
    )
    rest = np.setdiff1d(np.arange(len(train.labels)), sample)
    norm = rubric.normalize or {"mean": list(spec.mean), "std": list(spec.std)}
    recipes = reference_recipes(args.models, args.epochs, spec.mirror)
    say(
        f"{rubric.id} {item.id}: {args.models} × {make.__name__} on {len(rest):,} training images (the split "
        f"minus the item's {len(sample):,}-image sample, seed {item.options['seed']}); "
        f"{training.describe(recipes[0])}"
    )
    train_rate, test_rate = share_right(
        make, len(spec.classes), (train.images[rest], train.labels[rest]),
        [(train.images[sample], train.labels[sample]), (test.images, test.labels)],
        list(norm["mean"]), list(norm["std"]), recipes, args.device, say,
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    recipe = f"{make.__name__}, {args.epochs} epochs of the retrain recipe"
    with args.out.open("wb") as f:
        np.savez_compressed(
            f, sample=sample, train_rate=train_rate, test_rate=test_rate,
            test_labels_sha256=np.array(labels_digest(test.labels)), models=np.array(args.models),
            recipe=np.array(recipe),
        )  # fmt: skip
    say(
        f"references: {train_rate.mean():.1%} on the training sample, {test_rate.mean():.1%} on the test "
        f"split; wrote {args.out}"
    )
    try:
        relative = PurePosixPath(args.out.resolve().relative_to(rubric.path.resolve().parent).as_posix())
        say(f'add to item {item.id} in {rubric.path}: reference = "{relative}"')
    except ValueError:
        say(f"move it into {rubric.path.parent} and name it in item {item.id}'s reference option")
    return args.out


def command(args: argparse.Namespace, rubric: Rubric | None = None) -> int:
    calibrate(args, rubric)
    return 0
