"""On a GPU: ResNet-18 evaluation of the 10,000 test images and retraining
time to the lab thresholds, side by side in one run.

Evaluation: the worker's function (``evaluate.logits``, the split resident on
the GPU, TF32, channels_last) cold and warm, against the bare model on a
ready normalised tensor (TF32 and bf16) and the handouts' DataLoader loop.
Retraining: the ``retrain`` recipe (``training.Trainer``) for a few epoch
counts, test accuracy after each; then the real grader with a ``retrain``
item on ``--device cuda`` in its sandbox (tier A where bubblewrap works),
which also shows CUDA working inside the sandbox.

Needs real CIFAR-10 for meaningful accuracies: the JPEG archives in
``data/cifar10-jpeg/`` (carry that folder to a GPU machine;
``benchmarks/cifar_jpeg.py`` converts them there).

    python benchmarks/gpu_speed.py [--epochs 6,8,10] [--grader-epochs 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CIFAR_MEAN, CIFAR_STD, ROOT, data_root, handout_loader, machine, table, write_section

MEAN, STD = CIFAR_MEAN, CIFAR_STD


def call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def build(name: str):
    from reference.lab2.resnet18 import ResNet18
    from reference.lab2.simple_cnn import SimpleCNN

    return ResNet18() if name == "resnet" else SimpleCNN()


def evaluation_rows(
    root: Path, device: str, weights: dict | None, name: str, limit: int
) -> list[list[object]]:
    import torch

    from autograder.data import load_split
    from autograder.sandbox.worker import evaluate

    split = load_split(root, "cifar10", train=False)
    split.images, split.labels = split.images[:limit], split.labels[:limit]
    n = len(split.labels)
    model = build(name).eval()
    if weights:
        model.load_state_dict(weights)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "test_images.npy"
        np.save(images, split.images)
        out = str(Path(tmp) / "logits.npy")
        for label in ("worker's evaluate (first call: copy, cuDNN autotune)", "worker's evaluate (warm)"):
            seconds = timed(
                device, lambda: evaluate.logits(model, str(images), out, MEAN, STD, None, 1000, device, call)
            )
            accuracy = float((np.load(out).argmax(1) == split.labels).mean())
            rows.append([label, f"{seconds:.3f}", f"{n / seconds:,.0f}", f"{accuracy:.2%}"])
    x = torch.from_numpy(split.images).to(device).float().div_(255)
    x = (x - torch.tensor(MEAN, device=device).view(1, 3, 1, 1)) / torch.tensor(STD, device=device).view(
        1, 3, 1, 1
    )
    x = x.contiguous(memory_format=torch.channels_last)
    model = model.to(device).to(memory_format=torch.channels_last)
    for precision in ("tf32", "bf16"):

        def bare(p: str = precision) -> None:
            with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=p == "bf16"):
                for lo in range(0, n, 1000):
                    model(x[lo : lo + 1000])

        bare()
        seconds = min(timed(device, bare) for _ in range(5))
        rows.append(
            [
                f"bare model, {precision}, batch 1000 (compute limit)",
                f"{seconds:.3f}",
                f"{n / seconds:,.0f}",
                "",
            ]
        )
    model = model.to(memory_format=torch.contiguous_format)
    for batch in (1000, 5):
        seconds = timed(device, lambda b=batch: handout_loop(model, root, b, device, n))
        rows.append(
            [f"handout loop (DataLoader, batch {batch})", f"{seconds:.2f}", f"{n / seconds:,.0f}", ""]
        )
    return rows


def handout_loop(model, root: Path, batch_size: int, device: str, limit: int) -> None:
    import torch

    loader = handout_loader(root, batch_size, limit)
    model.eval()
    with torch.no_grad():
        for images, _labels in loader:
            model(images.to(device))


def training_rows(
    root: Path, device: str, epochs: list[int], batch: int, lr: float, name: str, limits: tuple[int, int]
) -> tuple[list, dict]:
    """Time and test accuracy of the recipe for each epoch count; the best weights for evaluation."""
    import torch

    from autograder.data import load_split
    from autograder.sandbox.worker import evaluate, training

    train = load_split(root, "cifar10", train=True)
    test = load_split(root, "cifar10", train=False)
    train.images, train.labels = train.images[: limits[0]], train.labels[: limits[0]]
    test.images, test.labels = test.images[: limits[1]], test.labels[: limits[1]]
    rows, best = [], ({}, -1.0)
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "test_images.npy"
        np.save(images, test.images)
        for count in epochs:
            recipe = training.Recipe(epochs=count, batch_size=batch, lr=lr, budget=1e9, seed=0)
            torch.manual_seed(0)
            trainer = training.Trainer(
                build(name), train.images, train.labels, 10, MEAN, STD, None, recipe, device, call
            )
            per_image = trainer.probe()["per_image"]
            estimate = per_image * trainer.steps_per_epoch * trainer.batch * count
            start = time.perf_counter()
            history = trainer.fit(training.Attempt(trainer.peak), lambda *a, **k: None)
            sync(device)
            seconds = time.perf_counter() - start
            out = str(Path(tmp) / "logits.npy")
            evaluate.logits(trainer.model, str(images), out, MEAN, STD, None, 1000, device, call)
            accuracy = float((np.load(out).argmax(1) == test.labels).mean())
            rows.append(
                [count, batch, f"{estimate:.1f}", f"{seconds:.1f}", f"{seconds / count:.2f}",
                 f"{history[-1]['train_accuracy']:.1%}", f"{accuracy:.2%}"]
            )  # fmt: skip
            print(table(TRAIN_HEADER, rows[-1:]), flush=True)
            if accuracy > best[1]:
                best = ({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}, accuracy)
    return rows, best[0]


def grader_retrain(root: Path, device: str, epochs: int, batch: int, lr: float, budget: float) -> list[str]:
    """The real grader, a retrain item on the reference ResNet-18, in its sandbox."""
    from helpers import submissions

    from autograder.grade import grade
    from autograder.rubric import load

    rubric_text = f"""
id = "bench-retrain"
title = "Retrain ResNet-18"
dataset = "cifar10"
[tasks.task2]
model = "ResNet18"
sources = ["resnet18.py"]
[[items]]
id = "task2.retrain"
kind = "retrain"
task = "task2"
name = "ResNet-18 retrained by the grader"
points = 20
epochs = {epochs}
batch_size = {batch}
lr = {lr}
budget = {budget}
tiers = [{{ above = 0.85, points = 20 }}, {{ above = 0.80, points = 16 }}, {{ above = 0.70, points = 12 }}]
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rubric.toml"
        path.write_text(rubric_text)
        folder = submissions.write_lab2(Path(tmp) / "sub", None, None)
        start = time.perf_counter()
        result = grade(folder, load(str(path)), root, device=device)
        wall = time.perf_counter() - start
    item = result.items[0]
    tier = result.provenance.get("sandbox", {}) or {}
    return [
        str(tier.get("tier", "?")),
        item.message,
        f"{item.data.get('train_seconds', 0) or 0:.1f}",
        f"{wall:.1f}",
        f"{item.data.get('accuracy', 0):.2%}" if "accuracy" in item.data else "–",
    ]


TRAIN_HEADER = ["epochs", "batch", "estimate s", "train s", "s/epoch", "train acc (last epoch)", "test acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", default="6,8,10")
    parser.add_argument("--grader-epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--model", choices=("resnet", "simple"), default="resnet")
    parser.add_argument("--images", type=int, default=10_000, help="test images (in-process parts)")
    parser.add_argument("--train-images", type=int, default=50_000, help="training images (in-process)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    root, what = data_root(10_000, train=True)
    described = machine()
    epochs = [int(e) for e in args.epochs.split(",") if e]
    limits = (args.train_images, args.images)
    train_rows, weights = training_rows(root, args.device, epochs, args.batch, args.lr, args.model, limits)
    eval_rows = evaluation_rows(root, args.device, weights, args.model, args.images)
    print(table(["path", "seconds", "images/s", "accuracy"], eval_rows), flush=True)
    grader = grader_retrain(root, args.device, args.grader_epochs, args.batch, args.lr, args.budget)
    body = f"""## GPU: ResNet-18 evaluation and retraining to the lab thresholds

`python benchmarks/gpu_speed.py --epochs {args.epochs} --grader-epochs {args.grader_epochs}` on
{what} (10,000 test and 50,000 training images). Machine: {described}.

Evaluation of the 10,000 test images by the reference ResNet-18 (weights: the best run below):

{table(["path", "seconds", "images/s", "accuracy"], eval_rows)}

Retraining the reference CIFAR ResNet-18 with the `retrain` recipe (in-process; the
estimate is the recipe's up-front probe; accuracy on the 10,000 test images):

{table(TRAIN_HEADER, train_rows)}

The real grader, a `retrain` item ({args.grader_epochs} epochs, budget {args.budget:g} s) on
`--device {args.device}`:

{table(["sandbox tier", "message", "train s", "grade wall s", "test acc"], [grader])}
"""
    print(body)
    if not args.no_write:
        print(write_section("gpu", body))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    main()
