"""The grader's data: the hidden test split (decoded grader-side; its labels never
leave the grader), and the images staged for the worker: the test images in a secret
order for one block of requests, a seeded training sample, the training split with
its labels for ``retrain``."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...data import DataError, Split, load_split
from ...result import CheckFailed, NoDataRoot
from ...sandbox import Sandbox
from .memo import Memo, in_sandbox

TEST_IMAGES = "test_images.npy"  # in the job's inputs/ only while a request needs it


@dataclass
class TrainSample:
    """A fixed, seeded sample of the training split, staged for the worker like the test images."""

    path: str  # in the sandbox
    order: np.ndarray  # row i of the worker's answer is sample image order[i]
    labels: np.ndarray  # the sample's labels, in sample order (the grader's only)
    split_size: int
    indices: np.ndarray  # the sample's images in the training split (sorted; sample order)
    provenance: dict[str, Any]


@dataclass
class TrainingSet:
    """The whole training split, images and labels, staged for the worker (``retrain``)."""

    images: str  # in the sandbox
    labels: str
    size: int


class Data:
    def __init__(self, root: Path | None, dataset: str, sandbox: Sandbox) -> None:
        self.root = root
        self.dataset = dataset
        self.sandbox = sandbox
        self._memo = Memo()

    def split(self) -> Split:
        """The test split, decoded once per submission."""

        def load() -> Split:
            if self.root is None:
                raise NoDataRoot()
            try:
                return load_split(self.root, self.dataset, train=False)
            except DataError as exc:
                raise CheckFailed(
                    f"the grader's test data is unusable ({exc}); "
                    "this is not your fault: tell the course staff"
                ) from None

        return self._memo("split", load)

    def provenance(self) -> dict[str, Any] | None:
        """Files and hashes of the test split, if a check loaded it."""
        split = self._memo.found("split")
        return split.provenance() if split is not None else None

    @contextlib.contextmanager
    def test_images(self) -> Iterator[tuple[str, np.ndarray]]:
        """The test images in a secret random order, for the requests made inside this block.

        Yields the sandbox path and the permutation (kept by the grader). Afterwards the
        file is deleted and the worker that saw the images is stopped with whatever it
        wrote (``Sandbox.forget``): no later item's code can read them or show them back."""
        path, order = self._stage(TEST_IMAGES, self.split().images)
        try:
            yield path, order
        finally:
            (self.sandbox.job.inputs / TEST_IMAGES).unlink(missing_ok=True)
            self.sandbox.forget()

    def train_sample(self, size: int, seed: int) -> TrainSample:
        """``size`` training images drawn with ``seed`` (the same ones for every
        submission; never more than the test split has), staged without labels in
        a secret order."""

        def write() -> TrainSample:
            split = self._train_split(
                "the grader's data root has no usable training split ({}); "
                "this is not your fault: tell the course staff"
            )
            picked = training_sample(len(split.labels), min(size, len(self.split().labels)), seed)
            path, order = self._stage("train_sample.npy", split.images[picked])
            labels, provenance = split.labels[picked], split.provenance()
            return TrainSample(path, order, labels, len(split.labels), picked, provenance)

        return self._memo(("train_sample", size, seed), write)

    def training_set(self) -> TrainingSet:
        """The training split (images and labels) written for the worker, once per submission."""

        def write() -> TrainingSet:
            split = self._train_split("retraining needs the training split: {}")
            for name, array in (("train_images.npy", split.images), ("train_labels.npy", split.labels)):
                target = self.sandbox.job.inputs / name
                np.save(target, array, allow_pickle=False)
                target.chmod(0o644)
            return TrainingSet(
                in_sandbox(self.sandbox, "inputs", "train_images.npy"),
                in_sandbox(self.sandbox, "inputs", "train_labels.npy"),
                len(split.labels),
            )

        return self._memo("training_set", write)

    def _train_split(self, unusable: str) -> Split:
        """The training split (not kept: it is large); ``unusable``: the failure message,
        ``{}`` standing for what is wrong with it."""
        if self.root is None:
            raise NoDataRoot()
        try:
            return load_split(self.root, self.dataset, train=True)
        except DataError as exc:
            raise CheckFailed(unusable.format(exc)) from None

    def _stage(self, name: str, images: np.ndarray) -> tuple[str, np.ndarray]:
        """Images written for the worker in a secret random order; the sandbox path and the order."""
        order = np.random.default_rng(secrets.randbits(64)).permutation(len(images))
        target = self.sandbox.job.inputs / name
        np.save(target, images[order], allow_pickle=False)
        target.chmod(0o644)
        return in_sandbox(self.sandbox, "inputs", name), order


def training_sample(split_size: int, size: int, seed: int) -> np.ndarray:
    """Indices of the seeded training sample (sorted; the whole split when it is smaller)."""
    return np.sort(np.random.default_rng(seed).choice(split_size, min(size, split_size), replace=False))
