"""One module per check kind; importing this package registers them all."""

from . import (  # noqa: F401
    accuracy,
    block,
    claims,
    counts,
    files,
    forward,
    generalisation,
    make_layer,
    manual,
    notebook,
    notebook_execute,
    residual,
    retrain,
    spec,
)
from .registry import KINDS

__all__ = ["KINDS"]
