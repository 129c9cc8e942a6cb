"""Which normalisation the test images get: what the submission declares (the order
is ``preprocess``'s), else the grader's default (the rubric's ``[normalize]``, else
the dataset's usual statistics)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from ... import preprocess
from ...notebook.extract import defined_names
from ...result import CheckFailed
from ...rubric import Rubric, Task
from .data import Data
from .models import Models
from .notebooks import Notebooks


class Preprocessing:
    def __init__(self, rubric: Rubric, models: Models, notebooks: Notebooks, data: Data) -> None:
        self.rubric = rubric
        self.models = models
        self.notebooks = notebooks
        self.data = data

    def normalization(self, task: Task, from_checkpoint: dict[str, Any] | None) -> preprocess.Normalization:
        """The checkpoint's own ``normalize`` entry, else what the task's code declares
        (the model's file first), else [0, 1] for a model that normalises its own input,
        else what the notebook printed, else the default."""
        if from_checkpoint:
            return preprocess.Normalization(
                tuple(from_checkpoint["mean"]), tuple(from_checkpoint["std"]), "stored in the checkpoint"
            )
        try:
            sources = self.models.sources(task)
        except CheckFailed:
            sources = []
        model_source = next((s for s in sources if s.model), None) or next(
            (s for s in sources if task.model in defined_names(s.text)), None
        )
        ordered = ([model_source] if model_source else []) + [s for s in sources if s is not model_source]
        texts = (self.models.full_text(source) for source in ordered)  # read up to the first found
        itself = None
        if model_source:
            first = next(texts)
            itself = preprocess.normalizes_itself(*first, model_source.model or task.model)
            texts = itertools.chain([first], texts)
        for text, locate in texts:
            found = preprocess.from_code(text, locate)
            if found and itself and (found.mean, found.std) != (itself.mean, itself.std):
                said = itself.source.removesuffix(preprocess.UNIT_RANGE)
                twice = f"{said} after the test transform's Normalize: the images are normalised twice"
                return dataclasses.replace(found, twice=twice)
            if found:
                return found
        if itself:
            return itself
        try:
            nb = self.notebooks.read()
            texts = [
                o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                for c in nb.cells
                if c.get("cell_type") == "code"
                for o in c.get("outputs", [])
                if o.get("output_type") == "stream"
            ]
            found = preprocess.from_outputs(texts, self.notebooks.path().name)
            if found:
                return found
        except CheckFailed:
            pass
        return self.default()

    def default(self) -> preprocess.Normalization:
        """The grader's own statistics: the rubric's ``[normalize]``, else the dataset's
        usual ones (also what ``retrain`` trains and tests with)."""
        if self.rubric.normalize:
            return preprocess.Normalization(
                tuple(self.rubric.normalize["mean"]),
                tuple(self.rubric.normalize["std"]),
                "the rubric's default (nothing declared in the submission)",
            )
        spec = self.data.split().spec
        return preprocess.Normalization(
            spec.mean, spec.std, f"the usual {spec.name} statistics (nothing declared)"
        )
