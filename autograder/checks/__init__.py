"""One module per check kind; importing this package registers them all."""

from . import accuracy, counts, files, forward, make_layer, manual, retrain, spec  # noqa: F401
from .registry import KINDS

__all__ = ["KINDS"]
