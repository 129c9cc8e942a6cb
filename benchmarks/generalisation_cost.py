"""What the ``generalisation`` item costs next to the ``accuracy`` item it compares
with: lab 2's ResNet-18 (freshly initialised weights; the time does not depend on
them) graded on CPU with only ``task2.accuracy`` and ``task2.generalisation``, on
a CIFAR-10 data root with the full training split (decoded-split cache warm, as
after the first submission). Reports each item's wall time and the worker's
evaluation time; writes the "generalisation-cost" section of docs/benchmarks.md.

    nice -n 10 .venv/bin/python benchmarks/generalisation_cost.py --data-root DIR [--threads 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from common import lab2_submission, machine, table, write_section

from autograder.checks.context.data import training_sample
from autograder.data import load_split
from autograder.grade import grade
from autograder.rubric import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="CIFAR-10 with both splits")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    full = load("lab2-resnet18-cifar10")
    keep = ("task2.accuracy", "task2.generalisation")
    items = [dataclasses.replace(i, requires=[]) for i in full.items if i.id in keep]
    rubric = dataclasses.replace(full, items=items)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        submission = lab2_submission(Path(tmp) / "submission")
        for train in (False, True):  # the decoded-split cache, warm as after the first submission
            load_split(args.data_root, "cifar10", train=train)
        started = time.perf_counter()  # what the item's prepare step does before the worker starts
        split = load_split(args.data_root, "cifar10", train=True)
        picked = split.images[training_sample(len(split.labels), 2000, 0)]
        np.save(Path(tmp) / "train_sample.npy", picked[np.random.default_rng().permutation(len(picked))])
        staging = time.perf_counter() - started
        del split
        for run in range(1, args.repeat + 1):
            result = grade(submission, rubric, args.data_root, device="cpu", threads=args.threads)
            accuracy, extra = result.item("task2.accuracy"), result.item("task2.generalisation")
            assert extra.data.get("train_images"), extra.message
            a, x = accuracy.data, extra.data
            rows.append([
                run,
                f"{a['images']:,}", f"{accuracy.seconds:.1f}", f"{a['eval_seconds']:.1f}",
                f"{x['train_images']:,}", f"{extra.seconds:.1f}", f"{x['eval_seconds']:.1f}",
                f"{extra.seconds / accuracy.seconds:.0%}",
            ])  # fmt: skip
            print(rows[-1], flush=True)
    header = [
        "run", "test images", "accuracy item (s)", "its evaluation (s)",
        "training images", "generalisation item (s)", "its evaluation (s)", "extra time",
    ]  # fmt: skip
    text = (
        "## The generalisation item's cost: ResNet-18 on CPU\n\n"
        f"`benchmarks/generalisation_cost.py --threads {args.threads}`, {machine()}. Lab 2's ResNet-18 "
        "graded with `task2.accuracy` and `task2.generalisation` only, on the CIFAR-10 images as JPEG copies "
        "(50,000 training, 10,000 test), decoded-split cache warm. Item time is wall time in the grader; "
        "evaluation time is the worker's. Reading the training split from the cache and staging the sample "
        f"happen before the worker starts, outside both items ({staging:.1f} s here, measured apart).\n\n"
        + table(header, rows)
    )
    print(text)
    print(write_section("generalisation-cost", text))


if __name__ == "__main__":
    main()
