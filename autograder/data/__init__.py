"""Datasets the grader reads from a data root in torchvision's on-disk layouts."""

from .registry import DATASETS, DatasetSpec, dataset_spec
from .splits import DataError, Split, load_split

__all__ = ["DATASETS", "DataError", "DatasetSpec", "Split", "dataset_spec", "load_split"]
