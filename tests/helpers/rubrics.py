"""The test-only rubrics in tests/rubrics, as files a test (or a benchmark) grades with."""

from __future__ import annotations

from pathlib import Path

from autograder.rubric import Rubric, load

RUBRICS = Path(__file__).resolve().parent.parent / "rubrics"
NOTEBOOK_ONLY = RUBRICS / "notebook-only.toml"
OUTPUTS_MARKER = "# what it requires:\n"


def notebook_only(folder: Path, outputs: str | None = None) -> Path:
    """notebook-only.toml written into ``folder``; ``outputs``: TOML lines (points, require)
    in place of its notebook.outputs item's own, the item's last lines."""
    text = NOTEBOOK_ONLY.read_text()
    if outputs is not None:
        head, marker, _ = text.partition(OUTPUTS_MARKER)
        assert marker, f"{NOTEBOOK_ONLY.name} has lost its line {OUTPUTS_MARKER!r}"
        text = head + marker + outputs.strip() + "\n"
    path = folder / "notebook-only.toml"
    path.write_text(text)
    return path


def load_notebook_only(folder: Path, outputs: str | None = None) -> Rubric:
    return load(str(notebook_only(folder, outputs)))
