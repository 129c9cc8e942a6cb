"""What every check can reach, one part per responsibility.

``Context`` is a thin façade: it holds the rubric, the submission, the sandbox (and
with it the deadline, ``sandbox.deadline``), the device, and the results so far, and
hands out the parts that do the shared work, each memoised per submission:

- ``ctx.models`` (``models.py``): a task's model: the files that may define it, the
  one that does, importing and building it in the worker, and ``ctx.models.task(id)``,
  the one way to get a task (its input size resolved for this submission);
- ``ctx.weights`` (``weights.py``): which checkpoint belongs to which task, and its
  tensors' shapes read by a pristine worker;
- ``ctx.preprocessing`` (``preprocessing.py``): the normalisation of the test images;
- ``ctx.data`` (``data.py``): the test split, the test images staged in a secret
  order, the training sample and the training split staged for the worker;
- ``ctx.notebooks`` (``notebooks.py``): the submission's notebook, read once.

What one check leaves for another is explicit: ``ctx.results`` (every item's
verdict) and ``ctx.evaluations`` (what an accuracy item measured per test image).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from ... import preprocess
from ...result import ItemResult
from ...rubric import Rubric, Task
from ...sandbox import Sandbox
from ...submission import Submission
from .data import Data
from .memo import Memo, in_sandbox
from .models import Models, Source
from .notebooks import Notebooks
from .preprocessing import Preprocessing
from .weights import Weights

T = TypeVar("T")


@dataclass
class Evaluation:
    """What an accuracy item measured per test image, for the checks that compare
    other images with it (``generalisation``)."""

    task: Task  # as evaluated (input size, resize)
    source: Source
    norm: preprocess.Normalization
    batch_size: int
    losses: np.ndarray  # cross-entropy per test image; inf where the logits were not finite
    correct: np.ndarray  # bool per test image
    order: np.ndarray  # row i of losses and correct is test image order[i] (the staged order)
    seconds: float | None


@dataclass
class Context:
    rubric: Rubric
    submission: Submission
    sandbox: Sandbox
    data_root: Path | None
    device: str
    results: dict[str, ItemResult] = field(default_factory=dict)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # accuracy item id -> per image
    notebooks: Notebooks = field(init=False)
    models: Models = field(init=False)
    weights: Weights = field(init=False)
    data: Data = field(init=False)
    preprocessing: Preprocessing = field(init=False)
    _memo: Memo = field(init=False, default_factory=Memo)

    def __post_init__(self) -> None:
        self.notebooks = Notebooks(self.submission)
        self.models = Models(self.rubric, self.submission, self.sandbox, self.notebooks)
        self.weights = Weights(self.rubric, self.submission, self.sandbox, self.models)
        self.data = Data(self.data_root, self.rubric.dataset, self.sandbox)
        self.preprocessing = Preprocessing(self.rubric, self.models, self.notebooks, self.data)

    def in_sandbox(self, area: str, relative: Path | str) -> str:
        """The path the worker sees for a file of the job folder (tier A mounts them elsewhere)."""
        return in_sandbox(self.sandbox, area, relative)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A check's own per-submission work (the notebook's facts), computed once; a
        CheckFailed is remembered and raised again."""
        return self._memo(key, compute)
