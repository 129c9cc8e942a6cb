"""A copy of a dataset for student code that must never see the test labels.

A submitted notebook loads its data the way the handout did (``./data``,
torchvision's layout, often both splits), so running it needs a dataset.
The real test split cannot be handed over: a notebook could print the labels
into its executed copy, which goes back to the student, and the next
submission could look its test images up in a table. So the copy holds the
training split as it is, and in place of the test split a stand-in of the
same size and format made of *training* images with their own labels: the
notebook runs and prints plausible numbers, and nothing about the hidden
labels leaves the grader. Without a training split, the stand-in is the test
images with their labels shuffled (the class histogram is all it carries).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np

from .formats import write_cifar10, write_idx
from .registry import dataset_spec
from .splits import DataError, load_split


def _is_test_file(dataset: str, name: str) -> bool:
    if dataset == "cifar10":
        return name == "test_batch"
    return name.startswith("t10k-")


def _copy_training_files(source: Path, target: Path, dataset: str) -> None:
    """Everything under ``source`` but the test split, world-readable (the original is root-only)."""
    target.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(source):
        here = target / Path(dirpath).relative_to(source)
        for name in dirnames:
            (here / name).mkdir(exist_ok=True)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file() or _is_test_file(dataset, name):
                continue
            if dataset != "cifar10" and name.endswith(".gz"):
                # torchvision's MNIST readers look for the unpacked files: stage those
                with gzip.open(path, "rb") as packed, (here / name[:-3]).open("wb") as plain:
                    shutil.copyfileobj(packed, plain)
                continue
            shutil.copyfile(path, here / name)


def _stand_in(root: Path, dataset: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Images and labels for the stand-in test split, and one line saying what they are."""
    test = load_split(root, dataset, train=False)
    n = len(test.labels)
    try:
        train = load_split(root, dataset, train=True)
    except DataError:
        labels = np.random.default_rng().permutation(test.labels)
        return test.images, labels, f"the {n} test images with their labels shuffled (no training split)"
    index = np.arange(n) % len(train.labels)
    return train.images[index], train.labels[index], f"{n} training images with their labels"


def stage_without_test_labels(root: Path, dataset: str, target: Path) -> str:
    """Write under ``target`` a data root for ``dataset`` whose test split reveals nothing.

    Returns a line for the report saying what stands in for the test split."""
    spec = dataset_spec(dataset)
    _copy_training_files(Path(root) / spec.folder, target / spec.folder, dataset)
    images, labels, what = _stand_in(Path(root), dataset)
    if dataset == "cifar10":
        write_cifar10(target, images, labels, train=False)
    else:
        write_idx(target, dataset, images, labels, train=False)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return what
