"""``autograder data``: put a dataset into a data root in torchvision's layout.

Two ways: download the official files with torchvision's own dataset classes
(where a network exists; without one, say so plainly and touch nothing), or
convert a folder of images with one sub-folder per class (the CIFAR-10 JPEG
copies, an instructor's private held-out photos) into the same format, which
the grader then reads and reports as custom files with their hashes.

torchvision and PIL are imported inside functions: the grader itself never loads
torch (tests/test_grader_light.py).
"""

from __future__ import annotations

import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..errors import UsageError
from .formats import write_cifar10, write_idx
from .registry import DATASETS, dataset_spec
from .splits import DataError, load_split

SHUFFLE_SEED = 0  # --from-images training split: the same folder always gives the same order


class FetchError(UsageError):
    """A dataset could not be put in place; the message says what to do."""


@dataclass(frozen=True)
class Origin:
    torchvision_class: str
    url: str  # the first place torchvision downloads from (checked for reachability)


ORIGINS = {
    "cifar10": Origin("CIFAR10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "fashion_mnist": Origin("FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    "mnist": Origin("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
}


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Can this machine open a connection to the download host at all?"""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def present(root: Path, name: str) -> bool:
    try:
        load_split(root, name, train=False)
        load_split(root, name, train=True)
    except DataError:
        return False
    return True


def download(name: str, root: Path) -> str:
    """Both splits of ``name`` under ``root`` via torchvision; a line saying what happened."""
    import torchvision.datasets

    origin = ORIGINS[name]
    folder = root / dataset_spec(name).folder
    if present(root, name):
        return f"{name}: already in {folder}"
    if not reachable(origin.url):
        raise FetchError(
            f"{name}: no network (cannot reach {urlparse(origin.url).hostname}); nothing was downloaded. "
            f"Run this where there is network, or copy torchvision's files into {folder}"
        )
    cls = getattr(torchvision.datasets, origin.torchvision_class)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise FetchError(f"{name}: the download from {origin.url} failed: {exc}") from None
    official = load_split(root, name, train=False).official
    return (
        f"{name}: downloaded into {folder} ({'official files, md5 verified' if official else 'custom files'})"
    )


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def convert_folder(source: Path, root: Path, name: str, train: bool) -> str:
    """Images in ``source/<class>/...`` (class names or indices as folder names)
    written as the train or test split of ``name`` under ``root``."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder

    spec = dataset_spec(name)
    if not source.is_dir():
        raise FetchError(f"{source} is not a folder of class sub-folders")
    try:
        folder = ImageFolder(str(source), loader=lambda path: path)
    except (FileNotFoundError, RuntimeError) as exc:
        raise FetchError(f"{source}: {exc}") from None
    wanted = {_key(c): k for k, c in enumerate(spec.classes)} | {str(k): k for k in range(len(spec.classes))}
    unknown = [c for c in folder.classes if _key(c) not in wanted]
    if unknown:
        raise FetchError(
            f"{source}: sub-folders {', '.join(unknown)} are not {name} classes "
            f"(expected folder names like {', '.join(spec.classes[:3])}, ... or 0-{len(spec.classes) - 1})"
        )
    mode = "RGB" if spec.channels == 3 else "L"
    images = np.empty((len(folder.samples), spec.channels, spec.size, spec.size), dtype=np.uint8)
    labels = np.empty(len(folder.samples), dtype=np.int64)
    for i, (path, index) in enumerate(folder.samples):
        try:
            with Image.open(path) as opened:
                image = np.asarray(opened.convert(mode))
        except (OSError, UnidentifiedImageError) as exc:
            raise FetchError(f"{path} is not an image Pillow can read: {exc}") from None
        if image.shape[:2] != (spec.size, spec.size):
            raise FetchError(
                f"{path} is {image.shape[1]}x{image.shape[0]}; {name} images are {spec.size}x{spec.size} "
                "(resize them the way your test transform would, then convert)"
            )
        images[i] = image.transpose(2, 0, 1) if image.ndim == 3 else image[None]
        labels[i] = wanted[_key(folder.classes[index])]
    if train:  # the folders come class by class: the templates hold out the LAST images as validation
        order = np.random.default_rng(SHUFFLE_SEED).permutation(len(labels))
        images, labels = images[order], labels[order]
    if name == "cifar10":
        target = write_cifar10(root, images, labels, train)
    else:
        target = write_idx(root, name, images[:, 0], labels, train)
    counts = np.bincount(labels, minlength=len(spec.classes))
    return (
        f"{name}: {len(labels):,} images from {source} written as the {'train' if train else 'test'} split "
        f"in {target} (per class {counts.min()}-{counts.max()}"
        + (f"; shuffled with seed {SHUFFLE_SEED})" if train else ")")
    )


def add_arguments(parser) -> None:
    parser.add_argument("datasets", nargs="+", metavar="DATASET", help=f"{', '.join(DATASETS)} or all")
    parser.add_argument(
        "--data-root", type=Path, default=Path("data"), help="where to put it (default ./data)"
    )
    parser.add_argument(
        "--from-images",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="convert FOLDER/<class>/<image> instead of downloading (e.g. the CIFAR-10 JPEG copies)",
    )
    parser.add_argument(
        "--split",
        choices=("train", "test"),
        default="test",
        help="with --from-images: which split the images become (default test)",
    )


def command(args) -> int:
    names = list(DATASETS) if args.datasets == ["all"] else args.datasets
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise FetchError(f"unknown dataset {', '.join(unknown)}; known: {', '.join(DATASETS)} (or all)")
    if args.from_images is not None:
        if len(names) != 1:
            raise FetchError("--from-images converts one dataset at a time")
        print(convert_folder(args.from_images, args.data_root, names[0], args.split == "train"))
        return 0
    failed = 0
    for name in names:
        try:
            print(download(name, args.data_root))
        except FetchError as exc:
            print(f"autograder data: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
