"""The submission's notebooks, read (and parsed for their definitions) once each."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ...notebook.extract import (
    CELL_MARKS,
    HAND_IN,
    MAX_NOTEBOOK_BYTES,
    NotebookError,
    Parsed,
    not_a_notebook,
    parse,
    read_notebook,
)
from ...result import CheckFailed
from ...submission import Submission
from .memo import Memo

UNTITLED = re.compile(r"untitled\d*\.ipynb$", re.I)  # Jupyter's and Colab's name for a new notebook
MAX_CANDIDATES = 8  # notebooks looked at to choose the one graded


class Notebooks:
    """One ``*.ipynb`` of a submission is *the* notebook (``path``: the notebook checks
    read it); any notebook may define a task's model (``parsed``)."""

    def __init__(self, submission: Submission) -> None:
        self.submission = submission
        self._memo = Memo()

    def path(self) -> Path | None:
        """The notebook, relative to the submission (None: the submission has none).

        With several, the one a TA would open: one that shows outputs (not the handout's
        template handed in unrun beside it), not an editor's default name
        (``Untitled.ipynb``, Colab's ``Untitled0.ipynb``), the one with the most outputs
        (counted in its bytes, not parsed), then the shallowest, then by name.
        Only the first ``MAX_CANDIDATES`` in that name order are looked at."""

        def pick() -> Path | None:
            notebooks = sorted(
                self.submission.notebooks, key=lambda p: (bool(UNTITLED.match(p.name)), len(p.parts), p)
            )
            if len(notebooks) <= 1:
                return notebooks[0] if notebooks else None
            ran = {rel: self._outputs(rel) for rel in notebooks[:MAX_CANDIDATES]}
            return min(  # the first of equals
                ran, key=lambda rel: (ran[rel] <= 0, bool(UNTITLED.match(rel.name)), -ran[rel])
            )

        return self._memo("path", pick)

    def _outputs(self, rel: Path) -> int:
        """How many outputs a notebook holds, counted in its bytes without parsing it
        (-1: over the size cap): choosing costs no parse, whatever the candidates hold."""
        path = self.submission.root / rel
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return -1
        return path.read_bytes().count(b'"output_type"')

    def others(self) -> list[Path]:
        """The submission's other notebooks (not read by the notebook checks)."""
        return [p for p in self.submission.notebooks if p != self.path()]

    def read(self) -> nbformat.NotebookNode:
        """The notebook, read once (size and cell caps checked first); CheckFailed when
        there is none or it cannot be read."""

        def load() -> nbformat.NotebookNode:
            path = self.path()
            if path is None:
                raise CheckFailed(
                    f"no .ipynb notebook in the submission (found: {self.submission.listing()})"
                    + self._exports()
                )
            return self._read(path)

        return self._memo("notebook", load)

    def _exports(self) -> str:
        """'; lab2.html is an HTML page (an export), not a notebook: hand in ...' for the
        first export of a notebook handed in instead of it: an HTML page, or a script
        with a notebook's cell marks (jupytext's ``# %%``, nbconvert's ``# In[1]:``)."""
        for rel in self.submission.files:
            suffix = rel.suffix.lower()
            if suffix not in (".html", ".htm", ".py"):
                continue
            with (self.submission.root / rel).open("rb") as handle:
                head = handle.read(4096)
            what = not_a_notebook(head)
            if what and (suffix != ".py" or CELL_MARKS.search(head)):
                return f"; {rel.as_posix()} is {what}, not a notebook: {HAND_IN}"
        return ""

    def parsed(self, rel: Path) -> Parsed:
        """A notebook's definitions, parsed once per notebook (tasks assemble their code from it)."""

        def load() -> Parsed:
            return parse(self.read() if rel == self.path() else self._read(rel))

        return self._memo(("parsed", rel.as_posix()), load)

    def _read(self, rel: Path) -> nbformat.NotebookNode:
        try:
            return read_notebook(self.submission.root / rel)
        except NotebookError as exc:
            raise CheckFailed(str(exc)) from None
