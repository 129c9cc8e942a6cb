"""``autograder data``: an image folder becomes a data root the grader (and
torchvision) read; without a network it says so and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import data
from PIL import Image
from torchvision.datasets import CIFAR10, FashionMNIST

from autograder.cli import main
from autograder.data import fetch, load_split
from autograder.data.registry import CIFAR10_CLASSES, FASHION_CLASSES


def image_folder(folder, classes, images, labels, mode):
    """Class sub-folders of PNG files, the layout of the CIFAR-10 JPEG copies."""
    for k, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        target = folder / classes[label] / f"{k:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        array = pixels.transpose(1, 2, 0) if mode == "RGB" else pixels[0]
        Image.fromarray(array, mode=mode).save(target)


def test_cifar_image_folder_becomes_the_test_split(tmp_path, capsys):
    rng = np.random.default_rng(1)
    labels = data.labels(40, rng)
    images = data.images(labels, 32, 3, rng)[0]
    image_folder(tmp_path / "test", CIFAR10_CLASSES, images, labels, "RGB")
    root = tmp_path / "root"
    args = [
        "data",
        "cifar10",
        "--from-images",
        str(tmp_path / "test"),
        "--split",
        "test",
        "--data-root",
        str(root),
    ]
    assert main(args) == 0
    assert "40 images" in capsys.readouterr().out
    split = load_split(root, "cifar10", train=False)
    pairs = sorted(zip(split.labels.tolist(), map(bytes, split.images), strict=True))
    assert pairs == sorted(zip(labels.tolist(), map(bytes, images), strict=True))  # PNG is lossless
    assert split.official is False
    with pytest.raises(RuntimeError, match="corrupted"):  # torchvision's md5 gate: why the grader reads them
        CIFAR10(str(root), train=False)


def test_fashion_folders_with_index_names_read_by_torchvision(tmp_path):
    rng = np.random.default_rng(2)
    for split, n in (("train", 30), ("test", 20)):
        labels = data.labels(n, rng)
        image_folder(
            tmp_path / split, [str(k) for k in range(10)], data.images(labels, 28, 1, rng)[0], labels, "L"
        )
        args = ["data", "fashion_mnist", "--from-images", str(tmp_path / split), "--split", split]
        assert main([*args, "--data-root", str(tmp_path / "root")]) == 0
    ours = FashionMNIST(str(tmp_path / "root"), train=False)  # torchvision's own reader and layout
    assert len(ours) == 20 and ours.classes[0] == FASHION_CLASSES[0]
    assert np.bincount(ours.targets.numpy(), minlength=10).tolist() == [2] * 10


def test_the_training_split_from_images_is_shuffled_so_its_tail_has_every_class(tmp_path, capsys):
    """The templates validate on the last training images: class-sorted folders would make
    that tail one or two classes."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 30)  # 300 images, 30 per class
    image_folder(
        tmp_path / "train", [str(k) for k in range(10)], data.images(labels, 28, 1, rng)[0], labels, "L"
    )
    args = ["data", "mnist", "--from-images", str(tmp_path / "train"), "--split", "train"]
    assert main([*args, "--data-root", str(tmp_path / "root")]) == 0
    assert "shuffled with seed 0" in capsys.readouterr().out
    first = load_split(tmp_path / "root", "mnist", train=True).labels
    assert len(set(first[-30:].tolist())) >= 8  # the last 10%: (nearly) every class, not one
    assert main([*args, "--data-root", str(tmp_path / "again")]) == 0
    assert (load_split(tmp_path / "again", "mnist", train=True).labels == first).all()  # the same order


def test_wrong_sizes_and_unknown_classes_are_named(tmp_path, capsys):
    Image.new("RGB", (64, 64)).save((tmp_path / "cat").mkdir() or tmp_path / "cat" / "big.png")
    assert main(["data", "cifar10", "--from-images", str(tmp_path), "--data-root", str(tmp_path / "r")]) == 2
    assert "big.png is 64x64; cifar10 images are 32x32" in capsys.readouterr().err
    (tmp_path / "cat" / "big.png").unlink()
    Image.new("RGB", (32, 32)).save((tmp_path / "kitten").mkdir() or tmp_path / "kitten" / "a.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "cat" / "b.png")
    assert main(["data", "cifar10", "--from-images", str(tmp_path), "--data-root", str(tmp_path / "r")]) == 2
    assert "sub-folders kitten are not cifar10 classes" in capsys.readouterr().err


def test_no_network_is_said_plainly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(fetch, "reachable", lambda url, timeout=5.0: False)
    assert main(["data", "all", "--data-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    for name, host in (("cifar10", "www.cs.toronto.edu"), ("mnist", "ossci-datasets.s3.amazonaws.com")):
        assert f"{name}: no network (cannot reach {host}); nothing was downloaded" in err
    assert list(tmp_path.iterdir()) == []


def test_data_already_in_place_is_not_downloaded(fashion_root, capsys, monkeypatch):
    monkeypatch.setattr(fetch, "reachable", lambda url, timeout=5.0: pytest.fail("no download expected"))
    assert main(["data", "fashion_mnist", "--data-root", str(fashion_root)]) == 0
    assert f"fashion_mnist: already in {fashion_root / 'FashionMNIST' / 'raw'}" in capsys.readouterr().out
