"""Writing splits in torchvision's on-disk formats.

Used to convert an instructor's own held-out images (or the JPEG copies of
CIFAR-10) into a data root the grader reads, and by the tests to make small
learnable datasets without a network.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from .registry import dataset_spec


def write_cifar10(root: Path, images: np.ndarray, labels: np.ndarray, train: bool) -> Path:
    """``images`` uint8 (N, 3, 32, 32). Train splits go into five batches."""
    folder = Path(root) / dataset_spec("cifar10").folder
    folder.mkdir(parents=True, exist_ok=True)
    flat = np.ascontiguousarray(images.reshape(len(images), -1).astype(np.uint8))
    parts = np.array_split(np.arange(len(images)), 5) if train else [np.arange(len(images))]
    names = [f"data_batch_{i + 1}" for i in range(5)] if train else ["test_batch"]
    for name, index in zip(names, parts, strict=True):
        batch = {
            "batch_label": name,
            "labels": [int(v) for v in labels[index]],
            "data": flat[index],
            "filenames": [f"{i}.png" for i in index],
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {
        "label_names": list(dataset_spec("cifar10").classes),
        "num_cases_per_batch": 10000,
        "num_vis": 3072,
    }
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return folder


def write_idx(
    root: Path, name: str, images: np.ndarray, labels: np.ndarray, train: bool, compress: bool = False
) -> Path:
    """MNIST-style IDX files for ``mnist`` or ``fashion_mnist``; images (N, 28, 28)."""
    folder = Path(root) / dataset_spec(name).folder
    folder.mkdir(parents=True, exist_ok=True)
    stem = "train" if train else "t10k"
    images = images.reshape(len(images), 28, 28).astype(np.uint8)
    blobs = {
        f"{stem}-images-idx3-ubyte": struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes(),
        f"{stem}-labels-idx1-ubyte": struct.pack(">II", 2049, len(labels))
        + labels.astype(np.uint8).tobytes(),
    }
    for filename, blob in blobs.items():
        if compress:
            with gzip.open(folder / f"{filename}.gz", "wb") as handle:
                handle.write(blob)
        else:
            (folder / filename).write_bytes(blob)
    return folder
