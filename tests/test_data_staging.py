"""The dataset copy a notebook runs on: torchvision reads it as it reads the real one, and
its test split never carries the hidden labels (a CIFAR-10 notebook run is tested in
test_notebook_execute.py)."""

from __future__ import annotations

import numpy as np
import torchvision

from autograder.data import load_split
from autograder.data.formats import write_idx
from autograder.data.staging import stage_without_test_labels


def _fashion_root(root, train: bool = True):
    rng = np.random.default_rng(0)
    train_images, train_labels = rng.integers(0, 255, (300, 28, 28), dtype=np.uint8), rng.integers(0, 10, 300)
    test_images, test_labels = rng.integers(0, 255, (100, 28, 28), dtype=np.uint8), rng.integers(0, 10, 100)
    if train:
        write_idx(root, "fashion_mnist", train_images, train_labels, train=True, compress=True)
    write_idx(root, "fashion_mnist", test_images, test_labels, train=False, compress=True)
    return train_images, train_labels, test_images, test_labels


def test_gzipped_fashion_mnist_is_staged_unpacked_with_training_images_as_the_test_split(tmp_path):
    train_images, train_labels, _, test_labels = _fashion_root(tmp_path / "root")
    what = stage_without_test_labels(tmp_path / "root", "fashion_mnist", tmp_path / "staged")
    assert what == "100 training images with their labels"
    test = torchvision.datasets.FashionMNIST(str(tmp_path / "staged"), train=False, download=False)
    assert test.targets.tolist() == train_labels[:100].tolist() != test_labels.tolist()
    assert (test.data.numpy() == train_images[:100]).all()
    train = torchvision.datasets.FashionMNIST(str(tmp_path / "staged"), train=True, download=False)
    assert len(train) == 300 and train.targets.tolist() == train_labels.tolist()


def test_without_a_training_split_the_test_labels_are_shuffled(tmp_path):
    _, _, test_images, test_labels = _fashion_root(tmp_path / "root", train=False)
    what = stage_without_test_labels(tmp_path / "root", "fashion_mnist", tmp_path / "staged")
    assert what == "the 100 test images with their labels shuffled (no training split)"
    test = load_split(tmp_path / "staged", "fashion_mnist", train=False)  # torchvision wants both splits
    assert (test.images[:, 0] == test_images).all()
    assert sorted(test.labels.tolist()) == sorted(test_labels.tolist())  # the histogram only
    assert test.labels.tolist() != test_labels.tolist()
