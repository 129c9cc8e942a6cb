"""Small learnable datasets in torchvision's real on-disk formats.

Each class is a coloured grating with its own orientation and frequency plus
noise, so a small CNN really learns it in seconds on a CPU. A fraction of
"impossible" test images (pure noise, random labels) caps the reachable
accuracy, which is how tests land a trained model in a chosen tier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autograder.data.formats import write_cifar10, write_idx

ANGLES = np.linspace(0, np.pi, 10, endpoint=False)
FREQS = np.array([2, 3, 4, 5, 6, 2.5, 3.5, 4.5, 5.5, 6.5])
COLOURS = np.array(
    [
        [1, 0.2, 0.2],
        [0.2, 1, 0.2],
        [0.2, 0.2, 1],
        [1, 1, 0.2],
        [1, 0.2, 1],
        [0.2, 1, 1],
        [1, 0.6, 0.2],
        [0.6, 0.2, 1],
        [0.5, 0.5, 0.5],
        [1, 1, 1],
    ]
)


def images(
    labels: np.ndarray, size: int, channels: int, rng: np.random.Generator, impossible: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Images for ``labels`` and the mask of impossible (pure-noise) ones."""
    n = len(labels)
    noise = rng.random(n) < impossible
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, channels, size, size), dtype=np.uint8)
    for i, c in enumerate(labels):
        if noise[i]:
            out[i] = rng.integers(0, 256, (channels, size, size), dtype=np.uint8)
            continue
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * FREQS[c] * (np.cos(ANGLES[c]) * xx + np.sin(ANGLES[c]) * yy) + phase)
        base = 0.5 + 0.35 * wave
        colour = COLOURS[c] if channels == 3 else np.array([0.6 + 0.04 * c])
        img = base[None] * colour[:, None, None] + rng.normal(0, 0.08, (channels, size, size))
        out[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out, noise


def labels(n: int, rng: np.random.Generator) -> np.ndarray:
    return (np.arange(n) % 10)[rng.permutation(n)].astype(np.int64)


def make_cifar(
    root: Path, train: int = 2000, test: int = 500, impossible: float = 0.0, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    y_train, y_test = labels(train, rng), labels(test, rng)
    write_cifar10(root, images(y_train, 32, 3, rng)[0], y_train, train=True)
    test_images, noise = images(y_test, 32, 3, rng, impossible=impossible)
    y_test = np.where(noise, rng.integers(0, 10, len(y_test)), y_test)
    write_cifar10(root, test_images, y_test, train=False)
    return root


def make_idx(
    root: Path, name: str, train: int = 2000, test: int = 500, seed: int = 0, compress: bool = False
) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        y = labels(n, rng)
        x = images(y, 28, 1, rng)[0][:, 0]
        write_idx(root, name, x, y, train=split == "train", compress=compress)
    return root
