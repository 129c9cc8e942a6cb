"""A new check kind is one module plus a rubric.

The first half of this file is such a module: the toy kind ``line_count`` registers
its check with ``@check`` (one validated option, one measured value) and its hooks
with ``@hook`` (a report section, a leaderboard entry), the way ``checks/<kind>.py``
does. A rubric written by the test uses it next to a real ``files`` item; graded
through ``grade()``, the kind's contribution reaches results.json, report.md,
report.html and the leaderboard, and no other module knows its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import grading

from autograder.checks.context import Context
from autograder.checks.registry import KINDS, Lines, Part, Place, allowed, check, hook
from autograder.result import ItemResult, Outcome
from autograder.rubric import Item, RubricError, load

# --- the toy kind: everything a new kind needs, in one module ------------------------------
KIND = "line_count"


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed(KIND, {"pattern"}, options)
    if not isinstance(options.get("pattern"), str) or not options["pattern"]:
        raise ValueError(f'{KIND}: pattern must be a file pattern, e.g. "*.py"')
    return options


@check(KIND, needs_task=False, timeout=5, validate=_validate, measured=("lines",))
def run(item: Item, ctx: Context) -> Outcome:
    files = ctx.submission.find([item.options["pattern"]])
    if not files:
        return Outcome(False, f"no file matches {item.options['pattern']}")
    lines = sum(len((ctx.submission.root / f).read_text(errors="replace").splitlines()) for f in files)
    names = ", ".join(f.as_posix() for f in files)
    return Outcome(True, f"{lines} lines in {names}", data={"lines": lines, "files_read": names})


@hook(KIND, "report")
def report(item: ItemResult, place: Place) -> list[Part]:
    if "lines" not in item.data:
        return []
    line = f"{item.data['lines']} lines counted in {item.data['files_read']}"
    return [Part("lines", Lines("Line count", [line], ["What", "Lines"], [["code", item.data["lines"]]]))]


@hook(KIND, "leaderboard")
def leaderboard(item: ItemResult) -> list[dict[str, Any]]:
    if "lines" not in item.data:
        return []
    return [{"name": f"{item.name} (lines)", "value": item.data["lines"], "order": "asc"}]


# --- the test ------------------------------------------------------------------------------
RUBRIC = """id = "toy"
title = "Toy lab"
dataset = "fashion_mnist"
leaderboard = true

[[items]]
id = "files"
kind = "files"
name = "Files: the model"
points = 1
required = [{ pattern = "model.py", what = "the model" }]

[[items]]
id = "code.lines"
kind = "line_count"
name = "Code: lines of Python"
points = 2
pattern = "*.py"
"""


@pytest.fixture(scope="module", autouse=True)
def registered():
    """The toy kind is registered while this module's tests run, and not after."""
    assert KIND in KINDS
    yield
    del KINDS[KIND]


def test_a_kind_module_and_a_rubric_reach_every_output(tmp_path: Path) -> None:
    (tmp_path / "toy.toml").write_text(RUBRIC)
    rubric = load(str(tmp_path / "toy.toml"))
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "model.py").write_text("import torch\n\n\nclass Net:\n    pass\n")
    (folder / "train.py").write_text("print('training')\n")

    g = grading.run(folder, rubric, None, tmp_path / "out")

    assert g.test("files")["status"] == "passed"
    entry = g.test("code.lines")
    assert entry["status"] == "passed" and entry["score"] == 2
    assert entry["extra_data"]["lines"] == 6  # measured: in results.json
    assert "files_read" not in entry["extra_data"]  # not measured: the report's alone
    assert "6 lines counted in model.py, train.py" in g.markdown
    assert "### Line count" in g.markdown and "| code | 6 |" in g.markdown
    page = (g.out / "report.html").read_text()
    assert '<section id="section-code">' in page and "<h3>Line count</h3>" in page
    assert "<p>6 lines counted in model.py, train.py</p>" in page
    assert {"name": "Code: lines of Python (lines)", "value": 6, "order": "asc"} in g.json["leaderboard"]


def test_its_option_is_validated_by_its_own_module(tmp_path: Path) -> None:
    (tmp_path / "toy.toml").write_text(RUBRIC.replace('pattern = "*.py"', "pattern = 3"))
    with pytest.raises(RubricError, match=r"item code.lines: line_count: pattern must be a file pattern"):
        load(str(tmp_path / "toy.toml"))
    (tmp_path / "toy.toml").write_text(RUBRIC.replace('pattern = "*.py"', 'pattern = "*.py"\nskip = 1'))
    with pytest.raises(RubricError, match=r"kind line_count has no option skip"):
        load(str(tmp_path / "toy.toml"))
