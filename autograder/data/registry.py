"""The datasets a rubric can name, and what the grader knows about each."""

from __future__ import annotations

from dataclasses import dataclass

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # below the data root, as torchvision lays it out
    classes: tuple[str, ...]
    channels: int
    size: int
    mean: tuple[float, ...]  # the usual training-set statistics (rubric default)
    std: tuple[float, ...]
    mirror: bool = True  # a left-right mirror image keeps its label (a mirrored digit does not)

    @property
    def input_shape(self) -> list[int]:
        return [self.channels, self.size, self.size]


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10",
        "cifar-10-batches-py",
        CIFAR10_CLASSES,
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "FashionMNIST/raw", FASHION_CLASSES, 1, 28, (0.2860,), (0.3530,)
    ),
    "mnist": DatasetSpec("mnist", "MNIST/raw", MNIST_CLASSES, 1, 28, (0.1307,), (0.3081,), mirror=False),
}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
