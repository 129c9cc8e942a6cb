"""Checkpoint evaluation, side by side in one process and one run:

- the grader's path: ``grade()`` with the lab 2 rubric's accuracy item (the
  worker in its sandbox, the test split cached as uint8, normalised per batch);
  the item's time (weights load, writing the secretly ordered images, the
  worker's evaluation, reading and scoring the logits) and the worker's loop;
- the handouts' loop: torchvision's CIFAR10 dataset with per-image
  ``ToTensor``/``Normalize`` and a ``DataLoader`` (2 workers, as the PyTorch
  tutorial) at batch 5 and at batch 1000, under ``torch.no_grad``;
- the compute limit: the bare model on a ready normalised tensor in this
  process, NCHW and channels_last, at the grader's CPU batch and at 500.

    .venv/bin/python benchmarks/eval_speed.py [--images N] [--resnet-images N] [--models simple,resnet]
        [--repeat N] [--resnet-repeat N]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from common import (
    CIFAR_MEAN,
    CIFAR_STD,
    best_of,
    data_root,
    handout_loader,
    lab2_submission,
    load_images,
    machine,
    table,
    write_section,
)

MEAN, STD = CIFAR_MEAN, CIFAR_STD
HEADER = ["model", "images", "path", "batch", "seconds", "images/s", "× compute limit", "accuracy"]
TASKS = {"simple": ("task1", "SimpleCNN"), "resnet": ("task2", "ResNet-18")}


def build(name: str):
    import torch

    from reference.lab2.resnet18 import ResNet18
    from reference.lab2.simple_cnn import SimpleCNN

    torch.manual_seed(0)  # the same weights lab2_submission saved
    simple, resnet = SimpleCNN(), ResNet18()
    return (simple if name == "simple" else resnet).eval()


def grader_path(name: str, root: Path, submission: Path, threads: int) -> dict[str, float]:
    """The accuracy item through grade(); a forward item first absorbs the worker's start."""
    from helpers.grading import only

    from autograder.grade import grade
    from autograder.rubric import load

    task = TASKS[name][0]
    rubric = only(load("lab2-resnet18-cifar10"), f"{task}.forward", f"{task}.accuracy")
    rubric = dataclasses.replace(rubric, items=[dataclasses.replace(i, requires=[]) for i in rubric.items])
    start = time.perf_counter()
    result = grade(submission, rubric, root, device="cpu", threads=threads)
    total = time.perf_counter() - start
    item = result.item(f"{task}.accuracy")
    assert item is not None and "accuracy" in item.data, item.message if item else "no item"
    return {
        "check": item.seconds,
        "loop": item.data["eval_seconds"],
        "accuracy": item.data["accuracy"],
        "total": total,
    }


def handout_loop(model, root: Path, batch_size: int) -> float:
    """The handouts' evaluation, as written in them; returns the accuracy."""
    import torch

    testloader = handout_loader(root, batch_size)
    correct, total = 0, 0
    model.eval()
    with torch.no_grad():
        for images, labels in testloader:
            outputs = model(images)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return correct / total


def bare(model, x, batch: int, channels_last: bool) -> None:
    import torch

    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    with torch.inference_mode():
        for lo in range(0, len(x), batch):
            model(x[lo : lo + batch])


def measure(
    name: str, root: Path, submission: Path, repeat: int, threads: int
) -> tuple[list[list[object]], str]:
    import torch

    from autograder.sandbox.worker.evaluate import batch_size_for

    torch.set_num_threads(threads)  # the same as the grader's worker
    images, labels = load_images(root)
    n = len(labels)
    model = build(name)
    grader_batch = batch_size_for(500, torch.device("cpu"), 32, 32, threads)
    x = torch.from_numpy(images).float().div_(255)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    rows: dict[str, tuple[float, object, str]] = {}
    seconds, g = best_of(repeat, lambda: grader_path(name, root, submission, threads))
    rows["grader: accuracy check (sandbox, whole item)"] = (g["check"], g["accuracy"], grader_batch)
    rows["grader: worker's evaluation loop"] = (g["loop"], g["accuracy"], grader_batch)
    for batch, cl in ((grader_batch, False), (grader_batch, True), (500, True)):
        s, _ = best_of(repeat, lambda b=batch, c=cl: bare(model, x_cl if c else x, b, c))
        rows[f"bare model, {'channels_last' if cl else 'NCHW'}, batch {batch}"] = (s, "", batch)
    model = model.to(memory_format=torch.contiguous_format)
    for batch in (1000, 5):
        s, acc = best_of(repeat, lambda b=batch: handout_loop(model, root, b))
        rows[f"handout loop (DataLoader, batch {batch})"] = (s, acc, batch)
    limit = min(v[0] for k, v in rows.items() if k.startswith("bare"))
    check = rows["grader: accuracy check (sandbox, whole item)"][0]
    loop = rows["grader: worker's evaluation loop"][0]
    summary = (
        f"- {TASKS[name][1]}: the grader's accuracy check takes {check / limit:.2f}× the compute limit "
        f"(its loop alone {loop / limit:.2f}×) and is "
        f"{rows['handout loop (DataLoader, batch 5)'][0] / check:.2f}× faster than the batch-5 handout "
        f"loop, {rows['handout loop (DataLoader, batch 1000)'][0] / check:.2f}× faster than batch 1000."
    )
    out = []
    for label, (s, acc, batch) in rows.items():
        accuracy = f"{acc:.2%}" if isinstance(acc, float) else ""
        speed = [f"{s:.2f}", f"{n / s:,.0f}", f"{s / limit:.2f}×"]
        out.append([TASKS[name][1], f"{n:,}", label, batch, *speed, accuracy])
    return out, summary


def main() -> None:
    from autograder.sandbox.worker.main import steady_allocator

    steady_allocator()  # what the grader's worker does: the bare rows get the same allocator
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--resnet-images", type=int, default=None, help="for ResNet-18 (default: --images)")
    parser.add_argument("--models", default="simple,resnet")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for every path")
    parser.add_argument("--resnet-repeat", type=int, default=1, help="for ResNet-18 (minutes per pass)")
    parser.add_argument("--threads", type=int, default=None, help="default: the grader's choice")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from autograder.machine import usable_cpus

    threads = args.threads or min(usable_cpus(), 8)
    root, what = data_root(args.images)
    resnet_root = data_root(args.resnet_images)[0] if args.resnet_images else root
    described = machine()
    with tempfile.TemporaryDirectory() as tmp:
        submission = lab2_submission(Path(tmp) / "StudentID_lab2")
        rows: list[list[object]] = []
        summaries: list[str] = []
        for name in args.models.split(","):
            resnet = name == "resnet"
            repeat = args.resnet_repeat if resnet else args.repeat
            measured, summary = measure(name, resnet_root if resnet else root, submission, repeat, threads)
            rows += measured
            summaries.append(summary)
            print(table(HEADER, measured), summary, sep="\n", flush=True)
    header = HEADER
    command = f"--images {args.images} --repeat {args.repeat} --resnet-repeat {args.resnet_repeat}"
    command += f" --threads {threads}"
    command += f" --resnet-images {args.resnet_images}" if args.resnet_images else ""
    body = f"""## Checkpoint evaluation: grader vs handout loop vs compute limit (CPU)

`benchmarks/eval_speed.py {command}` on
{what}, {threads} thread(s) on every path, freshly initialised
lab 2 weights (speed does not depend on them; the same accuracy on every path shows they
compute the same thing).
Machine: {described}.

The compute limit is the fastest bare-model row (a ready normalised float tensor in this
process, with the worker's malloc settings: `steady_allocator` in
`autograder/sandbox/worker/main.py`). "Accuracy check" is the whole rubric item as
`autograder grade` runs it: loading the weights in the sandbox, writing the test images in a
secret order, the worker's loop, reading the logits back and scoring them; the worker's
start-up is not in it (an earlier item of the same submission pays it).

{chr(10).join(summaries)}

How much faster than a handout loop any fp32 path can be is bounded by that loop's own
"× compute limit": for a small model the per-image `ToTensor`/`Normalize` and the DataLoader
dominate, for ResNet-18 on a CPU the convolutions do.

{table(header, rows)}
"""
    print(body)
    if not args.no_write:
        print(write_section("eval-speed", body))


if __name__ == "__main__":
    main()
