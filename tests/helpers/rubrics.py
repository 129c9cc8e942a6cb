"""The test-only rubrics in tests/rubrics, as files a test (or a benchmark) grades with,
and rubric items written as TOML text for the tests that build their own rubrics."""

from __future__ import annotations

import json
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


def toml(value: object) -> str:
    """``value`` (a string, number, bool, list or dict) as a TOML value; a dict is an inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml(v)}" for key, v in value.items()) + " }"
    raise TypeError(f"no TOML value for {value!r}")


def item(**fields: object) -> str:
    """One ``[[items]]`` table of a rubric as TOML text, a blank line before it and its fields
    one a line in the order given: ``item(id="acc", kind="accuracy", points=10)``."""
    return "\n[[items]]\n" + "".join(f"{key} = {toml(value)}\n" for key, value in fields.items())


def above(*tiers: tuple[float, int]) -> list[dict]:
    """An item's ``tiers`` from (threshold, points) pairs: ``above((0.8, 10), (0.6, 6))``."""
    return [{"above": threshold, "points": points} for threshold, points in tiers]
