"""Real CIFAR-10 for the benchmarks: JPEG copies of the CIFAR-10 images
(``cifar10-jpeg-train.tar.xz`` and ``cifar10-jpeg-test.tar.xz``, one folder per
class, from a public mirror), put in ``data/cifar10-jpeg/``, converted once into
torchvision's ``cifar-10-batches-py`` layout.

The copies are lossy (JPEG), so accuracies on them run slightly below the
official files; they are used for speed figures and for checking the retrain
recipe on a GPU, never by the tests. Without them the benchmarks fall back to
generated CIFAR-format data (``tests/helpers/data.py``) of the same size.

    .venv/bin/python benchmarks/cifar_jpeg.py [--archives DIR] [--out DATA_ROOT]
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from autograder.data.formats import write_cifar10  # noqa: E402
from autograder.data.registry import CIFAR10_CLASSES  # noqa: E402

ARCHIVES = (ROOT / "data" / "cifar10-jpeg",)
ARCHIVE = "cifar10-jpeg-{split}.tar.xz"


def find_archives(folder: Path | None = None) -> Path | None:
    """The folder holding both JPEG archives, or None."""
    for candidate in [folder] if folder else ARCHIVES:
        if candidate and all((candidate / ARCHIVE.format(split=s)).is_file() for s in ("train", "test")):
            return candidate
    return None


def read_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 3, 32, 32) images and int64 labels from ``<split>/<class>/<n>.jpg`` members."""
    from PIL import Image

    index = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    found: list[tuple[int, str, np.ndarray]] = []
    with tarfile.open(path, "r:xz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[1] not in index:
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            with Image.open(io.BytesIO(handle.read())) as img:
                pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
            found.append((index[parts[1]], parts[2], pixels.transpose(2, 0, 1)))
    found.sort(key=lambda f: (f[0], f[1]))
    order = np.random.default_rng(0).permutation(len(found))  # mixed classes, like the real batches
    images = np.stack([found[i][2] for i in order])
    labels = np.array([found[i][0] for i in order], dtype=np.int64)
    return images, labels


def convert(archives: Path, root: Path) -> Path:
    """Write ``root/cifar-10-batches-py`` from the archives (skipped when already there)."""
    folder = root / "cifar-10-batches-py"
    if (folder / "test_batch").is_file() and (folder / "data_batch_5").is_file():
        return root
    for split in ("train", "test"):
        images, labels = read_archive(archives / ARCHIVE.format(split=split))
        write_cifar10(root, images, labels, train=split == "train")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archives", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "cifar10-real")
    args = parser.parse_args()
    archives = find_archives(args.archives)
    if archives is None:
        sys.exit(f"no {ARCHIVE.format(split='{train,test}')} found in {args.archives or ARCHIVES}")
    print(convert(archives, args.out))


if __name__ == "__main__":
    main()
