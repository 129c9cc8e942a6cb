"""One module per check kind; importing this package registers them all."""

from . import (  # noqa: F401
    accuracy,
    claims,
    counts,
    execute,
    files,
    forward,
    make_layer,
    manual,
    notebook,
    retrain,
    spec,
)
from .registry import KINDS

__all__ = ["KINDS"]
